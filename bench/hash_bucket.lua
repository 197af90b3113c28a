-- A careful token bucket as users write it without the module, for
-- make bench to compare with: a hash of two fields, tokens and ts (unix
-- ms), and a TTL until the bucket is full again. Floats for the tokens.
-- KEYS[1]: the bucket. ARGV: capacity, refill_amount, refill_period_ms,
-- cost, [now_ms] (left out: the server's TIME).
-- Returns {allowed, remaining}.
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2]) / tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local now = tonumber(ARGV[5])
if not now then
  local time = redis.call('TIME')
  now = time[1] * 1000 + math.floor(time[2] / 1000)
end
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or capacity
local ts = tonumber(state[2]) or now
if now > ts then
  tokens = math.min(capacity, tokens + (now - ts) * rate)
else
  now = ts
end
if tokens < cost then
  return {0, math.floor(tokens)}
end
if cost > 0 then
  tokens = tokens - cost
  redis.call('HSET', KEYS[1], 'tokens', tokens, 'ts', now)
  if rate > 0 then
    redis.call('PEXPIRE', KEYS[1], math.max(1, math.ceil((capacity - tokens) / rate)))
  else
    redis.call('PERSIST', KEYS[1])
  end
end
return {1, math.floor(tokens)}
