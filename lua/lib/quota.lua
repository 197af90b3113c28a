-- Calendar quotas: a hash with kind = "quota", used (the count of the
-- period of the last write) and t (the last write's ms). Periods are
-- wall-clock periods in UTC or a fixed offset (no DST: local ms = unix ms
-- + offset), from an anchor's local time or by default 2000-01-01 00:00
-- local (Monday 2000-01-03 for weeks).

local MS_PER_DAY = 86400000
-- The instants the module's calendar covers (those of its date library).
local FIRST_MS, LAST_MS = -377705023201000, 253402207200999
local QUOTA_ANCHOR_MIN, QUOTA_ANCHOR_MAX = -62135510400000, 253402127999999
local PERIODS = {minute = {fixed = 60000}, hour = {fixed = 3600000},
  day = {days = 1}, week = {days = 7}, month = {months = 1}, quarter = {months = 3},
  year = {months = 12}}

-- A word as the module shows it in errors: at most 32 bytes, escaped as
-- Rust's escape_default escapes them.
local function printable(word)
  local shown = string.gsub(string.sub(word, 1, 32), '[^%w]', function(c)
    local named = {['\t'] = '\\t', ['\n'] = '\\n', ['\r'] = '\\r', ['\\'] = '\\\\',
      ["'"] = "\\'", ['"'] = '\\"'}
    local byte = string.byte(c)
    if named[c] then return named[c] end
    if byte < 32 or byte > 126 then return string.format('\\x%02x', byte) end
    return c
  end)
  if #word > 32 then shown = shown .. '...' end
  return shown
end

-- The period word, in any case; prefix is put before the error ('' or
-- 'spec n: ').
local function quota_period(word, prefix)
  local period = type(word) == 'string' and PERIODS[string.lower(word)]
  if not period then
    error({err = 'ERR ' .. prefix .. 'period must be minute, hour, day, week, month, quarter or year'})
  end
  return period
end

-- The zone's offset in ms: UTC, or +hh:mm / -hh:mm up to 18:00.
local function quota_offset(word, prefix)
  if type(word) == 'string' and string.upper(word) == 'UTC' then return 0 end
  local sign, hh, mm = string.match(word or '', '^([+-])(%d%d):(%d%d)$')
  if sign then
    local minutes = tonumber(hh) * 60 + tonumber(mm)
    if tonumber(mm) < 60 and minutes <= 18 * 60 then
      return (sign == '-' and -1 or 1) * minutes * 60000
    end
  end
  if word == nil or word == '' or string.match(word, '^[+-]') then
    error({err = 'ERR ' .. prefix .. "TZ zone: unknown time zone '" .. printable(word or '') ..
      "': use UTC, an IANA name such as Europe/Berlin, or an offset +hh:mm/-hh:mm up to 18:00"})
  end
  error({err = 'ERR ' .. prefix ..
    'zone: IANA time zone names need the RL.QUOTA command; this script takes UTC or +hh:mm/-hh:mm'})
end

-- The anchor: unix ms from 0001-01-02 to the end of 9999-12-29 UTC (local
-- times in years 1 to 9999 in every zone), as the module takes them.
local function quota_anchor(word, prefix)
  return int(word, prefix .. 'ANCHOR', QUOTA_ANCHOR_MIN, QUOTA_ANCHOR_MAX)
end

-- Days from 1970-01-01 to a civil date, and back (Howard Hinnant's
-- algorithms, proleptic Gregorian, exact for any year Lua holds exactly).
local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = floor_div(y, 400)
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = floor_div(153 * mp + 2, 5) + d - 1
  local doe = yoe * 365 + floor_div(yoe, 4) - floor_div(yoe, 100) + doy
  return era * 146097 + doe - 719468
end

local function civil_from_days(z)
  z = z + 719468
  local era = floor_div(z, 146097)
  local doe = z - era * 146097
  local yoe = floor_div(doe - floor_div(doe, 1460) + floor_div(doe, 36524) - floor_div(doe, 146096), 365)
  local doy = doe - (365 * yoe + floor_div(yoe, 4) - floor_div(yoe, 100))
  local mp = floor_div(5 * doy + 2, 153)
  local d = doy - floor_div(153 * mp + 2, 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400
  if m <= 2 then y = y + 1 end
  return y, m, d
end

local function days_in_month(y, m)
  if m == 2 then
    if y % 4 == 0 and (y % 100 ~= 0 or y % 400 == 0) then return 29 end
    return 28
  end
  if m == 4 or m == 6 or m == 9 or m == 11 then return 30 end
  return 31
end

-- Local ms as months since year 0 (y * 12 + m - 1), day of the month and
-- ms of the day.
local function local_parts(ms)
  local day = floor_div(ms, MS_PER_DAY)
  local y, m, d = civil_from_days(day)
  return y * 12 + m - 1, d, ms - day * MS_PER_DAY
end

-- The period [start, end) that holds the instant at, or nil beyond the
-- instants the module's calendar covers.
local function quota_bounds(period, off, anchor, at)
  local origin = anchor and anchor + off or (period.days == 7 and 946857600000 or 946684800000)
  if period.fixed then
    local base = origin - off
    local start = base + floor_div(at - base, period.fixed) * period.fixed
    return start, start + period.fixed
  end
  if at < FIRST_MS or at > LAST_MS then return nil end
  local local_at = at + off
  local start, finish
  if period.days then
    local step = period.days * MS_PER_DAY
    start = origin + floor_div(local_at - origin, step) * step - off
    finish = start + step
  else
    local n = period.months
    local om, od, ot = local_parts(origin)
    local function start_of(k)
      local month = om + k * n
      local y = floor_div(month, 12)
      local m = month - y * 12 + 1
      return days_from_civil(y, m, math.min(od, days_in_month(y, m))) * MS_PER_DAY + ot - off
    end
    local k = floor_div(local_parts(local_at) - om, n)
    start = start_of(k)
    while start > at do
      k = k - 1
      start = start_of(k)
    end
    finish = start_of(k + 1)
    while finish <= at do
      k = k + 1
      start, finish = finish, start_of(k + 1)
    end
  end
  if start < FIRST_MS or finish > LAST_MS then return nil end
  return start, finish
end

-- The quota's verdict on cost at now; write() stores it when it takes
-- something.
local function check_quota(key, limit, period, off, anchor, cost, now)
  local f = redis.call('HMGET', key, 'kind', 'used', 't')
  if f[1] ~= 'quota' then
    if redis.call('EXISTS', key) == 1 then error({err = WRONGTYPE}) end
  end
  local last = tonumber(f[3])
  local at = now
  if last and last > at then at = last end
  local start, finish = quota_bounds(period, off, anchor, at)
  if not start then
    error({err = "ERR AT is beyond the years a quota's calendar covers (1 to 9999)"})
  end
  local used = 0
  if last and start <= last and last < finish then used = tonumber(f[2]) end
  local v = {allowed = used + cost <= limit, limit = limit, retry = 0,
    remaining = math.max(0, limit - used), reset = used > 0 and finish - at or 0}
  if not v.allowed then v.retry = cost > limit and -1 or finish - at end
  local used_after = v.allowed and used + cost or used
  v.writes = v.allowed and cost > 0
  v.remaining_after = math.max(0, limit - used_after)
  v.reset_after = used_after > 0 and finish - at or 0
  v.write = function()
    if not v.writes then return end
    redis.call('HSET', key, 'kind', 'quota', 'used', fmt(used_after), 't', fmt(at))
    set_ttl(key, v.reset_after)
  end
  return v
end
