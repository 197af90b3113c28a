-- Reference sliding log: the same contract as RL.SLIDELOG.
-- KEYS[1]: the log (a sorted set). ARGV: limit, window_ms, cost, [now_ms]
-- (left out or empty: the server's TIME).
-- Returns {allowed, limit, remaining, retry_after_ms, reset_after_ms}.
--
-- One member per call, "<time>:<n>:<cost>", scored by its time, where n
-- counts the calls already in that millisecond: two calls in one ms are two
-- entries (the textbook script, whose member is the timestamp, counts them
-- once). Exact while times and sums of costs stay below 2^53.

local function int(value, name, min)
  local n = tonumber(value)
  if n == nil or n ~= math.floor(n) or n < min then
    return redis.error_reply('ERR ' .. name .. ' must be an integer from ' .. min)
  end
  return n
end

local limit = int(ARGV[1], 'limit', 1)
if type(limit) == 'table' then return limit end
local window = int(ARGV[2], 'window_ms', 1)
if type(window) == 'table' then return window end
local cost = int(ARGV[3], 'cost', 0)
if type(cost) == 'table' then return cost end
local now
if ARGV[4] == nil or ARGV[4] == '' then
  local time = redis.call('TIME')
  now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
else
  now = int(ARGV[4], 'now_ms', 0)
  if type(now) == 'table' then return now end
end

local newest = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if newest[2] and now < tonumber(newest[2]) then now = tonumber(newest[2]) end

local cutoff = now - window
local live = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. cutoff, '+inf', 'WITHSCORES')
local times, costs, used = {}, {}, 0
for i = 1, #live, 2 do
  local c = tonumber(string.match(live[i], ':(%d+)$'))
  times[#times + 1] = tonumber(live[i + 1])
  costs[#costs + 1] = c
  used = used + c
end

local allowed = used + cost <= limit
local retry = 0
if not allowed then
  if cost > limit then
    retry = -1
  else
    local excess, freed = used + cost - limit, 0
    for i = 1, #times do
      freed = freed + costs[i]
      if freed >= excess then
        retry = times[i] + window - now
        break
      end
    end
  end
end

local used_after = used
local reset = 0
if #times > 0 then reset = times[#times] + window - now end
if allowed and cost > 0 then
  used_after = used + cost
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', cutoff)
  local n = redis.call('ZCOUNT', KEYS[1], now, now)
  redis.call('ZADD', KEYS[1], now, now .. ':' .. n .. ':' .. cost)
  reset = window
  redis.call('PEXPIRE', KEYS[1], window)
end

return {allowed and 1 or 0, limit, math.max(0, limit - used_after), retry, reset}
