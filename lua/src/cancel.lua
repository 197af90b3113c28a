-- uses: common bucket
-- Reference RL.CANCEL: RL.SETTLE with actual_cost 0.
-- KEYS[1]: the bucket. ARGV: reservation_id, [now_ms].
-- Returns {settled, limit, remaining, retry_after_ms, reset_after_ms}.

local id = int(ARGV[1], 'reservation_id', 1, MAX_ID)
return settle(KEYS[1], id, 0, now_from(ARGV[2]))
