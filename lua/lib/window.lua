-- Windows: a hash with kind = "window", the parameters of the last write
-- (p: precision, 0 for a fixed window; w: window_ms), its time (t), and
-- one field per slot that holds admitted cost (the slot's number: its
-- start / slot length).

local function slot_ms(window, precision)
  if precision == 0 then return window end
  return precision
end

local function check_window(key, limit, window, precision, cost, now)
  if redis.call('HGET', key, 'kind') ~= 'window' then
    if redis.call('EXISTS', key) == 1 then error({err = WRONGTYPE}) end
  end
  local stored = redis.call('HGETALL', key)
  local last, slots = {}, {}
  for i = 1, #stored, 2 do
    local field, value = stored[i], tonumber(stored[i + 1])
    if field == 'kind' then
      -- the layout's mark
    elseif field == 'p' or field == 'w' or field == 't' then
      last[field] = value
    else
      slots[#slots + 1] = {tonumber(field), value}
    end
  end
  table.sort(slots, function(a, b) return a[1] < b[1] end)
  local unit = slot_ms(window, precision)
  if last.t and now < last.t then now = last.t end
  -- Under new slots, a count moves to the slot that holds its last ms; a
  -- switch between fixed and sliding counts it as made at the last write.
  if last.t and (slot_ms(last.w, last.p) ~= unit or (last.p == 0) ~= (precision == 0)) then
    local moved = {}
    for _, s in ipairs(slots) do
      local made = last.t
      if last.p ~= 0 and precision ~= 0 then made = (s[1] + 1) * last.p - 1 end
      local k = floor_div(made, unit)
      local top = moved[#moved]
      if top and top[1] == k then top[2] = top[2] + s[2] else moved[#moved + 1] = {k, s[2]} end
    end
    slots = moved
  end
  -- The newest slot that no longer counts, and when a slot stops counting.
  local stale = floor_div(now, unit) - 1
  if precision ~= 0 then stale = floor_div(now - window + 1, precision) - 1 end
  local function leaves(k)
    if precision == 0 then return (k + 1) * unit - now end
    return (k + 1) * unit - 1 + window - now
  end
  local live, used = {}, 0
  for _, s in ipairs(slots) do
    if s[1] > stale then
      live[#live + 1] = s
      used = used + s[2]
    end
  end
  local v = {allowed = used + cost <= limit, limit = limit, retry = 0,
    remaining = math.max(0, limit - used), reset = 0}
  if #live > 0 then v.reset = leaves(live[#live][1]) end
  if not v.allowed then
    if cost > limit then
      v.retry = -1
    else
      local excess, freed = used + cost - limit, 0
      for _, s in ipairs(live) do
        freed = freed + s[2]
        if freed >= excess then
          v.retry = leaves(s[1])
          break
        end
      end
    end
  end
  local current = floor_div(now, unit)
  -- A finer precision may have moved a count to a slot after the call's.
  local last_counted = current
  if #live > 0 and live[#live][1] > current then last_counted = live[#live][1] end
  v.writes = v.allowed and cost > 0
  v.remaining_after = v.writes and math.max(0, limit - used - cost) or v.remaining
  v.reset_after = v.writes and leaves(last_counted) or v.reset
  v.write = function()
    if not v.writes then return end
    local fields = {'kind', 'window', 'p', fmt(precision), 'w', fmt(window), 't', fmt(now)}
    local at = #live + 1
    while at > 1 and live[at - 1][1] >= current do at = at - 1 end
    if live[at] and live[at][1] == current then
      live[at][2] = live[at][2] + cost
    else
      table.insert(live, at, {current, cost})
    end
    for _, s in ipairs(live) do
      fields[#fields + 1] = fmt(s[1])
      fields[#fields + 1] = fmt(s[2])
    end
    redis.call('DEL', key)
    redis.call('HSET', key, unpack(fields))
    set_ttl(key, v.reset_after)
  end
  return v
end
