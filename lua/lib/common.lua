-- Shared by every script: argument checks, exact integer helpers, time.
-- Lua numbers are doubles: integers are exact below 2^53, and every number
-- sent to Redis goes through fmt (Lua's own conversion keeps 14 digits).

local WRONGTYPE = 'WRONGTYPE Operation against a key holding the wrong kind of value'
local MAX_ID = 9007199254740991

-- An integer written as Redis writes them (an optional '-', no '+', no
-- leading zeros, no exponent), within [min, max] and below 2^53, beyond
-- which Lua numbers are not exact.
local function int(value, name, min, max)
  local n
  if type(value) == 'string' and (value == '0' or string.match(value, '^%-?[1-9]%d*$')) then
    n = tonumber(value)
  end
  if n == nil or n < min or (max and n > max) then
    local range = string.format('%d', min) .. (max and (' to ' .. string.format('%d', max)) or '')
    error({err = 'ERR ' .. name .. ' must be an integer from ' .. range})
  end
  if n > 9007199254740991 then
    error({err = 'ERR ' .. name .. ' is above 2^53 - 1, where the Lua scripts stop being exact'})
  end
  return n
end

local function fmt(n) return string.format('%d', n) end

-- floor(a / b) and ceil(a / b) for b > 0, exact while a < 2^53.
local function floor_div(a, b)
  local q = math.floor(a / b)
  if q * b > a then q = q - 1 elseif (q + 1) * b <= a then q = q + 1 end
  return q
end

local function ceil_div(a, b)
  local q = floor_div(a, b)
  if q * b < a then q = q + 1 end
  return q
end

-- The call's time: now_ms, or the server's clock when left out or empty.
local function now_from(value)
  if value == nil or value == '' then
    local time = redis.call('TIME')
    return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
  end
  return int(value, 'now_ms', 0)
end

-- Ids: above the key's last id and at least at_ms * 1024 + 1.
local function next_id(last_id, at)
  local id = math.max(at * 1024 + 1, last_id + 1)
  if id > MAX_ID then error({err = 'ERR AT is too far in the future to issue an id'}) end
  return id
end

-- Sets a key's TTL to ttl ms, at least 10: Redis's PEXPIRE deletes the key
-- at once when its TTL has passed between its two reads of the clock,
-- which a TTL of 1 ms met about once in 20,000 writes, and one of 2 ms on
-- a loaded machine (the commands set an absolute expiry, which Redis does
-- not check that way). A key kept longer decides as an expired one would.
local function set_ttl(key, ttl)
  redis.call('PEXPIRE', key, fmt(math.max(ttl, 10)))
end

-- Lengthens a key's TTL to ttl ms, never shortens it; a key without a TTL
-- keeps none (ttl nil: the key must never expire).
local function extend_ttl(key, ttl)
  local current = redis.call('PTTL', key)
  if current < 0 then return end
  if ttl == nil then
    redis.call('PERSIST', key)
  elseif ttl > current then
    set_ttl(key, ttl)
  end
end
