-- Token buckets: a hash with level (tokens in units of 1/period of a token),
-- ts (unix ms of the last write) and the last write's cap, amount, period;
-- a bucket that reserved also has last_id and one field r:<id> holding
-- "<estimate>:<ends_ms>" per open reservation.

local MAX_OPEN = 10000

local function load_bucket(key)
  local f = redis.call('HMGET', key, 'level', 'ts', 'cap', 'amount', 'period', 'last_id')
  if not f[1] then
    if redis.call('EXISTS', key) == 1 then error({err = WRONGTYPE}) end
    return nil
  end
  return {level = tonumber(f[1]), ts = tonumber(f[2]), cap = tonumber(f[3]),
    amount = tonumber(f[4]), period = tonumber(f[5]), last_id = tonumber(f[6] or 0)}
end

-- The level at `at` under new parameters: converted to the new period
-- (rounded toward minus infinity), refilled, clamped to capacity.
local function level_at(b, capacity, amount, period, at)
  local full = capacity * period
  local level = b.level
  if b.period ~= period then level = floor_div(level * period, b.period) end
  if level >= full then return full end
  return math.min(level + amount * (at - b.ts), full)
end

local function reset_after(capacity, amount, period, level)
  if level >= capacity * period then return 0 end
  if amount == 0 then return -1 end
  return ceil_div(capacity * period - level, amount)
end

-- Open reservations as {id, estimate, ends}.
local function reservations(key)
  local all, list = redis.call('HGETALL', key), {}
  for i = 1, #all, 2 do
    local id = string.match(all[i], '^r:(%d+)$')
    if id then
      local estimate, ends = string.match(all[i + 1], '^(%d+):(%d+)$')
      list[#list + 1] = {id = tonumber(id), estimate = tonumber(estimate), ends = tonumber(ends)}
    end
  end
  return list
end

-- Stores a bucket written at `at`: drops ended reservations, then sets the
-- TTL to cover the refill and the last open reservation (mode 'set'), or
-- only lengthens it (mode 'extend').
local function store_bucket(key, level, at, capacity, amount, period, mode)
  redis.call('HSET', key, 'level', fmt(level), 'ts', fmt(at), 'cap', fmt(capacity),
    'amount', fmt(amount), 'period', fmt(period))
  local ttl = reset_after(capacity, amount, period, level)
  for _, r in ipairs(reservations(key)) do
    if r.ends <= at then
      redis.call('HDEL', key, 'r:' .. fmt(r.id))
    elseif ttl >= 0 then
      ttl = math.max(ttl, r.ends - at)
    end
  end
  if ttl < 0 then ttl = nil end
  if mode == 'set' then
    if ttl then set_ttl(key, ttl) else redis.call('PERSIST', key) end
  else
    extend_ttl(key, ttl)
  end
end

-- A call taking `cost`: the bucket's view, and write() to apply it.
local function check_bucket(key, capacity, amount, period, cost, now)
  local b = load_bucket(key)
  local at, full = now, capacity * period
  local level = full
  if b then
    if at < b.ts then at = b.ts end
    level = level_at(b, capacity, amount, period, at)
  end
  local cost_units = cost * period
  local v = {allowed = cost_units <= level, limit = capacity, retry = 0, at = at,
    last_id = b and b.last_id or 0,
    remaining = math.max(0, floor_div(level, period)),
    reset = reset_after(capacity, amount, period, level)}
  if not v.allowed then
    if cost > capacity or amount == 0 then
      v.retry = -1
    else
      v.retry = ceil_div(cost_units - level, amount)
    end
  end
  local after = v.allowed and (level - cost_units) or level
  v.remaining_after = math.max(0, floor_div(after, period))
  v.reset_after = reset_after(capacity, amount, period, after)
  v.writes = v.allowed and cost > 0
  v.write = function()
    if v.writes then store_bucket(key, after, at, capacity, amount, period, 'set') end
  end
  return v
end

-- RL.RESERVE: check_bucket with cost = estimate, opening a reservation.
local function check_reserve(key, capacity, amount, period, estimate, lease_ms, now)
  local v = check_bucket(key, capacity, amount, period, estimate, now)
  v.id = 0
  if not v.writes then return v end
  local live = 0
  for _, r in ipairs(reservations(key)) do
    if r.ends > v.at then live = live + 1 end
  end
  if live >= MAX_OPEN then
    error({err = 'ERR too many open reservations on this key (at most ' .. MAX_OPEN .. ')'})
  end
  v.id = next_id(v.last_id, v.at)
  local take = v.write
  v.write = function()
    redis.call('HSET', key, 'r:' .. fmt(v.id), fmt(estimate) .. ':' .. fmt(v.at + lease_ms),
      'last_id', fmt(v.id))
    take()
  end
  return v
end

-- RL.SETTLE: closes reservation `id` crediting estimate - actual.
local function settle(key, id, actual, now)
  local b = load_bucket(key)
  if not b then return {0, 0, 0, 0, 0} end
  local at = math.max(now, b.ts)
  local level = level_at(b, b.cap, b.amount, b.period, at)
  local field = redis.call('HGET', key, 'r:' .. fmt(id))
  local settled = 0
  if field then
    local estimate, ends = string.match(field, '^(%d+):(%d+)$')
    if tonumber(ends) > at then
      settled = 1
      level = math.min(level + (tonumber(estimate) - actual) * b.period, b.cap * b.period)
      redis.call('HDEL', key, 'r:' .. fmt(id))
      store_bucket(key, level, at, b.cap, b.amount, b.period, 'extend')
    end
  end
  local retry = 0
  if level < b.period then
    retry = b.amount == 0 and -1 or ceil_div(b.period - level, b.amount)
  end
  return {settled, b.cap, math.max(0, floor_div(level, b.period)), retry,
    reset_after(b.cap, b.amount, b.period, level)}
end
