-- uses: common bucket log leases window quota
-- Reference RL.ALL: several limiters checked at one time, all or nothing.
-- KEYS: the limiters. ARGV: one spec per key, each
--   TOKENBUCKET capacity refill_amount refill_period_ms | SLIDELOG limit window_ms
--   | RESERVE capacity refill_amount refill_period_ms lease_ms | ACQUIRE limit lease_ms
--   | WINDOW limit window_ms [PRECISION ms | FIXED]
--   | QUOTA limit period [TZ zone] [ANCHOR unix_ms] (zone UTC or +hh:mm/-hh:mm)
-- then one cost per key, then [now_ms] (left out or empty: the server's TIME).
-- Returns {allowed, retry_after_ms, reply per key...}: five integers per
-- key, and a sixth (the id opened, 0 for none) for RESERVE and ACQUIRE.

-- Runs f(...), with the error it raises put as that of spec i (under
-- pcall, an error table comes back as a table or, on Redis 7.0, its text).
local function of_spec(i, f, ...)
  local ok, result = pcall(f, ...)
  if ok then return result end
  if type(result) == 'table' then result = result.err end
  error({err = (string.gsub(tostring(result), '^ERR ', 'ERR spec ' .. i .. ': ', 1))})
end

local specs, at = {}, 1
for i = 1, #KEYS do
  local name = ARGV[at] and string.upper(ARGV[at])
  local s
  if name == 'TOKENBUCKET' then
    s = {kind = name, int(ARGV[at + 1], 'capacity', 1), int(ARGV[at + 2], 'refill_amount', 0),
      int(ARGV[at + 3], 'refill_period_ms', 1)}
  elseif name == 'SLIDELOG' then
    s = {kind = name, int(ARGV[at + 1], 'limit', 1), int(ARGV[at + 2], 'window_ms', 1)}
  elseif name == 'RESERVE' then
    s = {kind = name, int(ARGV[at + 1], 'capacity', 1), int(ARGV[at + 2], 'refill_amount', 0),
      int(ARGV[at + 3], 'refill_period_ms', 1), int(ARGV[at + 4], 'lease_ms', 1)}
  elseif name == 'ACQUIRE' then
    s = {kind = name, int(ARGV[at + 1], 'limit', 1, 100000), int(ARGV[at + 2], 'lease_ms', 1)}
  elseif name == 'WINDOW' then
    local window = int(ARGV[at + 2], 'window_ms', 1)
    s = {kind = name, int(ARGV[at + 1], 'limit', 1), window, math.max(1, floor_div(window, 60)),
      words = 2}
    local option = ARGV[at + 3] and string.upper(ARGV[at + 3])
    if option == 'FIXED' then
      s[3], s.words = 0, 3
    elseif option == 'PRECISION' then
      s[3], s.words = int(ARGV[at + 4], 'PRECISION', 1, window), 4
    end
  elseif name == 'QUOTA' then
    -- The parameters, then TZ and ANCHOR in any order, then the zone.
    s = {kind = name, of_spec(i, int, ARGV[at + 1], 'limit', 1),
      quota_period(ARGV[at + 2], 'spec ' .. i .. ': '), 0, nil, words = 2}
    local zone, given = 'UTC', {}
    while true do
      local option = ARGV[at + s.words + 1] and string.upper(ARGV[at + s.words + 1])
      if option ~= 'TZ' and option ~= 'ANCHOR' then break end
      local value = ARGV[at + s.words + 2]
      if value == nil then
        error({err = 'ERR spec ' .. i .. ': option ' .. option .. ' needs a value'})
      end
      if option == 'TZ' then
        zone = value
      else
        s[4] = quota_anchor(value, 'spec ' .. i .. ': ')
      end
      if given[option] then
        error({err = 'ERR spec ' .. i .. ': option ' .. option .. ' given more than once'})
      end
      given[option], s.words = true, s.words + 2
    end
    s[3] = quota_offset(zone, 'spec ' .. i .. ': ')
  else
    error({err = 'ERR spec ' .. i .. ': unknown limiter, expected TOKENBUCKET, SLIDELOG, RESERVE, ACQUIRE, WINDOW or QUOTA'})
  end
  specs[i] = s
  at = at + (s.words or #s) + 1
end
local costs = {}
for i = 1, #KEYS do
  costs[i] = int(ARGV[at], 'cost', 0)
  if specs[i].kind == 'ACQUIRE' and costs[i] > 1 then
    error({err = 'ERR spec ' .. i .. ': ACQUIRE takes a cost of 0 or 1'})
  end
  at = at + 1
end
local now = now_from(ARGV[at])

local views, allowed = {}, true
for i = 1, #KEYS do
  local s, key, cost = specs[i], KEYS[i], costs[i]
  if s.kind == 'TOKENBUCKET' then
    views[i] = check_bucket(key, s[1], s[2], s[3], cost, now)
  elseif s.kind == 'SLIDELOG' then
    views[i] = check_log(key, s[1], s[2], cost, now)
  elseif s.kind == 'RESERVE' then
    views[i] = check_reserve(key, s[1], s[2], s[3], cost, s[4], now)
  elseif s.kind == 'WINDOW' then
    views[i] = check_window(key, s[1], s[2], s[3], cost, now)
  elseif s.kind == 'QUOTA' then
    views[i] = check_quota(key, s[1], s[2], s[3], s[4], cost, now)
  else
    views[i] = check_acquire(key, s[1], s[2], cost, now)
  end
  allowed = allowed and views[i].allowed
end

local reply, retry = {allowed and 1 or 0, 0}, 0
for i = 1, #KEYS do
  local v = views[i]
  local r
  if allowed then
    v.write()
    r = {1, v.limit, v.remaining_after, 0, v.reset_after}
  else
    r = {v.allowed and 1 or 0, v.limit, v.remaining, v.retry, v.reset}
    if not v.allowed and retry ~= -1 then
      if v.retry == -1 then retry = -1 else retry = math.max(retry, v.retry) end
    end
  end
  if v.id then r[6] = allowed and v.id or 0 end
  reply[i + 2] = r
end
reply[2] = retry
return reply
