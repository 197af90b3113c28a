-- uses: common bucket
-- Reference RL.RESERVE on the bucket of token_bucket.lua.
-- KEYS[1]: the bucket. ARGV: capacity, refill_amount, refill_period_ms,
-- estimate, lease_ms, [now_ms].
-- Returns {allowed, limit, remaining, retry_after_ms, reset_after_ms, id}.

local capacity = int(ARGV[1], 'capacity', 1)
local amount = int(ARGV[2], 'refill_amount', 0)
local period = int(ARGV[3], 'refill_period_ms', 1)
local estimate = int(ARGV[4], 'estimate', 1)
local lease_ms = int(ARGV[5], 'lease_ms', 1)
local v = check_reserve(KEYS[1], capacity, amount, period, estimate, lease_ms, now_from(ARGV[6]))
v.write()
if v.allowed then return {1, capacity, v.remaining_after, 0, v.reset_after, v.id} end
return {0, capacity, v.remaining, v.retry, v.reset, 0}
