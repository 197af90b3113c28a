-- uses: common bucket
-- Reference token bucket: the contract of RL.TOKENBUCKET and RL.COST.
-- KEYS[1]: the bucket. ARGV: capacity, refill_amount, refill_period_ms,
-- cost, [now_ms] (left out or empty: the server's TIME).
-- Returns {allowed, limit, remaining, retry_after_ms, reset_after_ms}.
-- Exact while capacity * refill_period_ms, cost * refill_period_ms,
-- refill_amount * elapsed ms and level * refill_period_ms stay below 2^53.

local capacity = int(ARGV[1], 'capacity', 1)
local amount = int(ARGV[2], 'refill_amount', 0)
local period = int(ARGV[3], 'refill_period_ms', 1)
local cost = int(ARGV[4], 'cost', 0)
local v = check_bucket(KEYS[1], capacity, amount, period, cost, now_from(ARGV[5]))
v.write()
if v.allowed then return {1, capacity, v.remaining_after, 0, v.reset_after} end
return {0, capacity, v.remaining, v.retry, v.reset}
