-- Concurrency leases: a hash with kind = "leases", limit (of the last
-- acquire), ts (unix ms of the last write), last_id, and one field l:<id>
-- holding the lease's end in unix ms.

local function load_leases(key)
  local f = redis.call('HMGET', key, 'kind', 'limit', 'ts', 'last_id')
  if f[1] ~= 'leases' then
    if redis.call('EXISTS', key) == 1 then error({err = WRONGTYPE}) end
    return nil
  end
  local all, leases = redis.call('HGETALL', key), {}
  for i = 1, #all, 2 do
    local id = string.match(all[i], '^l:(%d+)$')
    if id then leases[#leases + 1] = {id = tonumber(id), ends = tonumber(all[i + 1])} end
  end
  return {limit = tonumber(f[2]), ts = tonumber(f[3]), last_id = tonumber(f[4]), leases = leases}
end

-- Drops ended leases, records the write's time, and sets (mode 'set') or
-- lengthens ('extend') the TTL to the last lease's end.
local function store_leases(key, at, mode)
  redis.call('HSET', key, 'kind', 'leases', 'ts', fmt(at))
  local last = nil
  for _, l in ipairs(load_leases(key).leases) do
    if l.ends <= at then
      redis.call('HDEL', key, 'l:' .. fmt(l.id))
    elseif last == nil or l.ends > last then
      last = l.ends
    end
  end
  local ttl = last and (last - at) or nil
  if mode == 'set' then
    if ttl then set_ttl(key, ttl) end
  elseif ttl then
    -- with no live lease left, the key keeps the TTL it has
    extend_ttl(key, ttl)
  end
end

-- RL.ACQUIRE taking `cost` (0 or 1) slots: the view, and write().
local function check_acquire(key, limit, lease_ms, cost, now)
  local s = load_leases(key)
  local at = s and math.max(now, s.ts) or now
  local ends = {}
  for _, l in ipairs(s and s.leases or {}) do
    if l.ends > at then ends[#ends + 1] = l.ends end
  end
  table.sort(ends)
  local live = #ends
  local v = {allowed = live + cost <= limit, limit = limit, retry = 0, id = 0,
    remaining = math.max(0, limit - live), reset = 0}
  if live > 0 then v.reset = ends[live] - at end
  if not v.allowed then
    if cost > limit then v.retry = -1 else v.retry = ends[live + cost - limit] - at end
  end
  v.writes = v.allowed and cost > 0
  v.remaining_after, v.reset_after = v.remaining, v.reset
  if v.writes then
    v.id = next_id(s and s.last_id or 0, at)
    v.remaining_after = math.max(0, limit - live - 1)
    v.reset_after = math.max(v.reset, lease_ms)
  end
  v.write = function()
    if not v.writes then return end
    redis.call('HSET', key, 'l:' .. fmt(v.id), fmt(at + lease_ms), 'limit', fmt(limit),
      'last_id', fmt(v.id))
    store_leases(key, at, 'set')
  end
  return v
end

-- RL.RELEASE (lease_ms nil) and RL.EXTEND: 1 when lease `id` was live.
local function change_lease(key, id, lease_ms, now)
  local s = load_leases(key)
  if not s then return 0 end
  local at = math.max(now, s.ts)
  local ends = tonumber(redis.call('HGET', key, 'l:' .. fmt(id)))
  if not ends or ends <= at then return 0 end
  if lease_ms then
    redis.call('HSET', key, 'l:' .. fmt(id), fmt(at + lease_ms))
  else
    redis.call('HDEL', key, 'l:' .. fmt(id))
  end
  store_leases(key, at, 'extend')
  return 1
end
