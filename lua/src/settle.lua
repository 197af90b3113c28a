-- uses: common bucket
-- Reference RL.SETTLE. KEYS[1]: the bucket. ARGV: reservation_id,
-- actual_cost, [now_ms].
-- Returns {settled, limit, remaining, retry_after_ms, reset_after_ms}.

local id = int(ARGV[1], 'reservation_id', 1, MAX_ID)
local actual = int(ARGV[2], 'actual_cost', 0)
return settle(KEYS[1], id, actual, now_from(ARGV[3]))
