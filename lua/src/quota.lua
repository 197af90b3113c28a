-- uses: common quota
-- Reference quota: the contract of RL.QUOTA, in UTC or a fixed offset.
-- KEYS[1]: the quota. ARGV: limit, period (minute, hour, day, week, month,
-- quarter or year), zone (UTC or +hh:mm/-hh:mm: IANA names need the
-- module), anchor (unix ms, or empty for none), cost, [now_ms] (left out or
-- empty: the server's TIME).
-- Returns {allowed, limit, remaining, retry_after_ms, reset_after_ms}.
-- Exact while times and sums of costs stay below 2^53.

local limit = int(ARGV[1], 'limit', 1)
local period = quota_period(ARGV[2], '')
local anchor
if ARGV[4] ~= nil and ARGV[4] ~= '' then
  anchor = quota_anchor(ARGV[4], '')
end
local cost = int(ARGV[5], 'cost', 0)
local now = now_from(ARGV[6])
local off = quota_offset(ARGV[3], '')
local v = check_quota(KEYS[1], limit, period, off, anchor, cost, now)
v.write()
if v.allowed then return {1, limit, v.remaining_after, 0, v.reset_after} end
return {0, limit, v.remaining, v.retry, v.reset}
