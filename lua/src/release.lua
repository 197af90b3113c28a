-- uses: common leases
-- Reference RL.RELEASE. KEYS[1]: the leases. ARGV: lease_id, [now_ms].
-- Returns 1 when the lease was live (it is removed), else 0.

local id = int(ARGV[1], 'lease_id', 1, MAX_ID)
return change_lease(KEYS[1], id, nil, now_from(ARGV[2]))
