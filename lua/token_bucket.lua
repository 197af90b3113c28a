-- Reference token bucket: the same contract as RL.TOKENBUCKET and RL.COST.
-- KEYS[1]: the bucket (a hash). ARGV: capacity, refill_amount,
-- refill_period_ms, cost, [now_ms] (left out or empty: the server's TIME).
-- Returns {allowed, limit, remaining, retry_after_ms, reset_after_ms}.
--
-- The hash holds the parameters of the last write (cap, amount, period), the
-- level in units of 1/period of a token (level) and the last write's time
-- (ts). Lua numbers are doubles: every result is exact while capacity *
-- refill_period_ms, cost * refill_period_ms, refill_amount * elapsed ms and
-- level * refill_period_ms stay below 2^53 (about 9.007e15).

local function int(value, name, min)
  local n = tonumber(value)
  if n == nil or n ~= math.floor(n) or n < min then
    return redis.error_reply('ERR ' .. name .. ' must be an integer from ' .. min)
  end
  return n
end

local function ceil_div(a, b) return math.floor((a + b - 1) / b) end

local capacity = int(ARGV[1], 'capacity', 1)
if type(capacity) == 'table' then return capacity end
local amount = int(ARGV[2], 'refill_amount', 0)
if type(amount) == 'table' then return amount end
local period = int(ARGV[3], 'refill_period_ms', 1)
if type(period) == 'table' then return period end
local cost = int(ARGV[4], 'cost', 0)
if type(cost) == 'table' then return cost end
local now
if ARGV[5] == nil or ARGV[5] == '' then
  local time = redis.call('TIME')
  now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
else
  now = int(ARGV[5], 'now_ms', 0)
  if type(now) == 'table' then return now end
end

local full = capacity * period
local stored = redis.call('HMGET', KEYS[1], 'level', 'ts', 'period')
local level
if stored[1] then
  local ts = tonumber(stored[2])
  if now < ts then now = ts end
  level = tonumber(stored[1])
  local stored_period = tonumber(stored[3])
  if stored_period ~= period then
    level = math.floor(level * period / stored_period)
  end
  if level < full then
    level = math.min(level + amount * (now - ts), full)
  else
    level = full
  end
else
  level = full
end

local cost_units = cost * period
local allowed = cost_units <= level
if allowed then level = level - cost_units end

local retry = 0
if not allowed then
  if cost > capacity or amount == 0 then
    retry = -1
  else
    retry = ceil_div(cost_units - level, amount)
  end
end
local reset = 0
if level < full then
  if amount == 0 then reset = -1 else reset = ceil_div(full - level, amount) end
end

if allowed and cost > 0 then
  redis.call('HSET', KEYS[1], 'level', level, 'ts', now, 'cap', capacity,
    'amount', amount, 'period', period)
  if reset > 0 then
    redis.call('PEXPIRE', KEYS[1], reset)
  else
    redis.call('PERSIST', KEYS[1])
  end
end

local remaining = math.max(0, math.floor(level / period))
return {allowed and 1 or 0, capacity, remaining, retry, reset}
