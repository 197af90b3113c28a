-- Reference RL.ALL: several limiters checked at one time, all or nothing.
-- KEYS: the limiters. ARGV: one spec per key, each
--   TOKENBUCKET capacity refill_amount refill_period_ms | SLIDELOG limit window_ms
-- then one cost per key, then [now_ms] (left out or empty: the server's TIME).
-- Returns {allowed, retry_after_ms, {5 integers per key}...}.
--
-- Keys use the layouts of token_bucket.lua (hash) and sliding_log.lua
-- (sorted set), with the same rules and the same exactness range.

local function int(value, name, min)
  local n = tonumber(value)
  if n == nil or n ~= math.floor(n) or n < min then
    error({err = 'ERR ' .. name .. ' must be an integer from ' .. min})
  end
  return n
end

local function ceil_div(a, b) return math.floor((a + b - 1) / b) end

-- Each check returns the limiter's view of the call and a function that
-- writes what an allowed call consumes.
local function check_bucket(key, capacity, amount, period, cost, now)
  local full = capacity * period
  local stored = redis.call('HMGET', key, 'level', 'ts', 'period')
  local level = full
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
  end
  local function reset_for(l)
    if l >= full then return 0 end
    if amount == 0 then return -1 end
    return ceil_div(full - l, amount)
  end
  local cost_units = cost * period
  local view = {allowed = cost_units <= level, limit = capacity, retry = 0,
    remaining = math.max(0, math.floor(level / period)), reset = reset_for(level)}
  if not view.allowed then
    if cost > capacity or amount == 0 then
      view.retry = -1
    else
      view.retry = ceil_div(cost_units - level, amount)
    end
  end
  local after = level - cost_units
  view.remaining_after = math.max(0, math.floor(after / period))
  view.reset_after = reset_for(after)
  view.write = function()
    if cost == 0 then return end
    redis.call('HSET', key, 'level', after, 'ts', now, 'cap', capacity,
      'amount', amount, 'period', period)
    if view.reset_after > 0 then
      redis.call('PEXPIRE', key, view.reset_after)
    else
      redis.call('PERSIST', key)
    end
  end
  return view
end

local function check_log(key, limit, window, cost, now)
  local newest = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  if newest[2] and now < tonumber(newest[2]) then now = tonumber(newest[2]) end
  local cutoff = now - window
  local live = redis.call('ZRANGEBYSCORE', key, '(' .. cutoff, '+inf', 'WITHSCORES')
  local times, costs, used = {}, {}, 0
  for i = 1, #live, 2 do
    local c = tonumber(string.match(live[i], ':(%d+)$'))
    times[#times + 1] = tonumber(live[i + 1])
    costs[#costs + 1] = c
    used = used + c
  end
  local view = {allowed = used + cost <= limit, limit = limit, retry = 0,
    remaining = math.max(0, limit - used), reset = 0}
  if #times > 0 then view.reset = times[#times] + window - now end
  if not view.allowed then
    if cost > limit then
      view.retry = -1
    else
      local excess, freed = used + cost - limit, 0
      for i = 1, #times do
        freed = freed + costs[i]
        if freed >= excess then
          view.retry = times[i] + window - now
          break
        end
      end
    end
  end
  view.remaining_after = math.max(0, limit - used - cost)
  view.reset_after = cost > 0 and window or view.reset
  view.write = function()
    if cost == 0 then return end
    redis.call('ZREMRANGEBYSCORE', key, '-inf', cutoff)
    local n = redis.call('ZCOUNT', key, now, now)
    redis.call('ZADD', key, now, now .. ':' .. n .. ':' .. cost)
    redis.call('PEXPIRE', key, window)
  end
  return view
end

local specs, at = {}, 1
for i = 1, #KEYS do
  local name = ARGV[at] and string.upper(ARGV[at])
  if name == 'TOKENBUCKET' then
    specs[i] = {kind = 'bucket', int(ARGV[at + 1], 'capacity', 1),
      int(ARGV[at + 2], 'refill_amount', 0), int(ARGV[at + 3], 'refill_period_ms', 1)}
    at = at + 4
  elseif name == 'SLIDELOG' then
    specs[i] = {kind = 'log', int(ARGV[at + 1], 'limit', 1), int(ARGV[at + 2], 'window_ms', 1)}
    at = at + 3
  else
    error({err = 'ERR spec ' .. i .. ': unknown limiter, expected TOKENBUCKET or SLIDELOG'})
  end
end
local costs = {}
for i = 1, #KEYS do
  costs[i] = int(ARGV[at], 'cost', 0)
  at = at + 1
end
local now
if ARGV[at] == nil or ARGV[at] == '' then
  local time = redis.call('TIME')
  now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
else
  now = int(ARGV[at], 'now_ms', 0)
end

local views, allowed = {}, true
for i = 1, #KEYS do
  local s = specs[i]
  if s.kind == 'bucket' then
    views[i] = check_bucket(KEYS[i], s[1], s[2], s[3], costs[i], now)
  else
    views[i] = check_log(KEYS[i], s[1], s[2], costs[i], now)
  end
  allowed = allowed and views[i].allowed
end

local reply, retry = {allowed and 1 or 0, 0}, 0
for i = 1, #KEYS do
  local v = views[i]
  if allowed then
    v.write()
    reply[i + 2] = {1, v.limit, v.remaining_after, 0, v.reset_after}
  else
    reply[i + 2] = {v.allowed and 1 or 0, v.limit, v.remaining, v.retry, v.reset}
    if not v.allowed and retry ~= -1 then
      if v.retry == -1 then retry = -1 else retry = math.max(retry, v.retry) end
    end
  end
end
reply[2] = retry
return reply
