-- Sliding logs: a sorted set with one member "<ms>:<n>:<cost>" per admitted
-- call, scored by its time, where n counts the calls already in that ms.

local function check_log(key, limit, window, cost, now)
  local newest = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  if newest[2] and now < tonumber(newest[2]) then now = tonumber(newest[2]) end
  local cutoff = now - window
  local live = redis.call('ZRANGEBYSCORE', key, '(' .. fmt(cutoff), '+inf', 'WITHSCORES')
  local times, costs, used = {}, {}, 0
  for i = 1, #live, 2 do
    local c = tonumber(string.match(live[i], ':(%d+)$'))
    times[#times + 1] = tonumber(live[i + 1])
    costs[#costs + 1] = c
    used = used + c
  end
  local v = {allowed = used + cost <= limit, limit = limit, retry = 0,
    remaining = math.max(0, limit - used), reset = 0}
  if #times > 0 then v.reset = times[#times] + window - now end
  if not v.allowed then
    if cost > limit then
      v.retry = -1
    else
      local excess, freed = used + cost - limit, 0
      for i = 1, #times do
        freed = freed + costs[i]
        if freed >= excess then
          v.retry = times[i] + window - now
          break
        end
      end
    end
  end
  v.writes = v.allowed and cost > 0
  v.remaining_after = v.writes and math.max(0, limit - used - cost) or v.remaining
  v.reset_after = v.writes and window or v.reset
  v.write = function()
    if not v.writes then return end
    redis.call('ZREMRANGEBYSCORE', key, '-inf', fmt(cutoff))
    local n = redis.call('ZCOUNT', key, fmt(now), fmt(now))
    redis.call('ZADD', key, fmt(now), fmt(now) .. ':' .. n .. ':' .. fmt(cost))
    set_ttl(key, window)
  end
  return v
end
