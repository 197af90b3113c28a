-- uses: common leases
-- Reference RL.EXTEND. KEYS[1]: the leases. ARGV: lease_id, lease_ms, [now_ms].
-- Returns 1 when the lease was live (it now ends at now + lease_ms), else 0.

local id = int(ARGV[1], 'lease_id', 1, MAX_ID)
local lease_ms = int(ARGV[2], 'lease_ms', 1)
return change_lease(KEYS[1], id, lease_ms, now_from(ARGV[3]))
