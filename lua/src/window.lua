-- uses: common window
-- Reference window: the contract of RL.WINDOW.
-- KEYS[1]: the window. ARGV: limit, window_ms, precision (an integer, the
-- word FIXED, or empty: window_ms / 60), cost, [now_ms] (left out or
-- empty: the server's TIME).
-- Returns {allowed, limit, remaining, retry_after_ms, reset_after_ms}.
-- Exact while times and sums of costs stay below 2^53.

local limit = int(ARGV[1], 'limit', 1)
local window = int(ARGV[2], 'window_ms', 1)
local precision = 0
if ARGV[3] == nil or ARGV[3] == '' then
  precision = math.max(1, floor_div(window, 60))
elseif string.upper(ARGV[3]) ~= 'FIXED' then
  precision = int(ARGV[3], 'PRECISION', 1, window)
end
local cost = int(ARGV[4], 'cost', 0)
local v = check_window(KEYS[1], limit, window, precision, cost, now_from(ARGV[5]))
v.write()
if v.allowed then return {1, limit, v.remaining_after, 0, v.reset_after} end
return {0, limit, v.remaining, v.retry, v.reset}
