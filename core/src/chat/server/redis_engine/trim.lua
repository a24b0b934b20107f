-- Trims a room's stream to its history size, but never past an entry the archivers
-- have not written yet (issue 15): what the consumer group has not been handed, or was
-- handed and has not acknowledged, stays.
--
-- KEYS: 1 stream
-- ARGV: 1 the archivers' group   2 history (entries kept at least)
-- Returns the number of entries trimmed.
local function before(a, b)
  local a1, a2 = string.match(a, '^(%d+)-(%d+)$')
  local b1, b2 = string.match(b, '^(%d+)-(%d+)$')
  a1, a2, b1, b2 = tonumber(a1), tonumber(a2), tonumber(b1), tonumber(b2)
  return a1 < b1 or (a1 == b1 and a2 < b2)
end

local keep = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', ARGV[2])
if #keep < tonumber(ARGV[2]) then
  return 0
end
local min = keep[#keep][1]
for _, group in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local name, delivered
  for i = 1, #group, 2 do
    if group[i] == 'name' then name = group[i + 1] end
    if group[i] == 'last-delivered-id' then delivered = group[i + 1] end
  end
  if name == ARGV[1] then
    -- Everything after the last entry handed out is still to be archived.
    if delivered and before(delivered, min) then
      min = delivered
    end
    local pending = redis.call('XPENDING', KEYS[1], ARGV[1])
    if tonumber(pending[1]) > 0 and before(pending[2], min) then
      min = pending[2]
    end
  end
end
return redis.call('XTRIM', KEYS[1], 'MINID', min)
