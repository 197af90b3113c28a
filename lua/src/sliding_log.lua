-- uses: common log
-- Reference sliding log: the contract of RL.SLIDELOG.
-- KEYS[1]: the log. ARGV: limit, window_ms, cost, [now_ms] (left out or
-- empty: the server's TIME).
-- Returns {allowed, limit, remaining, retry_after_ms, reset_after_ms}.
-- Two calls in one ms are two entries (the textbook script, whose member is
-- the timestamp, counts them once). Exact while times and sums of costs
-- stay below 2^53.

local limit = int(ARGV[1], 'limit', 1)
local window = int(ARGV[2], 'window_ms', 1)
local cost = int(ARGV[3], 'cost', 0)
local v = check_log(KEYS[1], limit, window, cost, now_from(ARGV[4]))
v.write()
if v.allowed then return {1, limit, v.remaining_after, 0, v.reset_after} end
return {0, limit, v.remaining, v.retry, v.reset}
