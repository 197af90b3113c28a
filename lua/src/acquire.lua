-- uses: common leases
-- Reference RL.ACQUIRE. KEYS[1]: the leases. ARGV: limit, lease_ms, [now_ms].
-- Returns {allowed, limit, remaining, retry_after_ms, reset_after_ms, lease_id}.

local limit = int(ARGV[1], 'limit', 1, 100000)
local lease_ms = int(ARGV[2], 'lease_ms', 1)
local v = check_acquire(KEYS[1], limit, lease_ms, 1, now_from(ARGV[3]))
v.write()
if v.allowed then return {1, limit, v.remaining_after, 0, v.reset_after, v.id} end
return {0, limit, v.remaining, v.retry, v.reset, 0}
