-- A page of a room's history from its stream: up to `limit` messages of the room's
-- epoch before `before_seq`, newest first, with the epoch and the top.
--
-- KEYS: 1 meta (hash: epoch, gen, seq)   2 stream   3 deleted entries (a set of ids;
--       a deleted entry comes with the field del = 1)
-- ARGV: 1 before_seq   2 limit
-- Returns {epoch, top, entry, entry, ...}, entry = {id, {field, value, ...}}.
local meta = redis.call('HMGET', KEYS[1], 'epoch', 'gen', 'seq')
local epoch, gen, top = meta[1] or '', meta[2] or '0', tonumber(meta[3] or '0')
local last = math.min(tonumber(ARGV[1]) - 1, top)
local reply = {epoch, top}
if last < 1 then
  return reply
end
local entries = redis.call('XREVRANGE', KEYS[2], gen .. '-' .. last, gen .. '-1',
  'COUNT', tonumber(ARGV[2]))
for _, entry in ipairs(entries) do
  if redis.call('SISMEMBER', KEYS[3], entry[1]) == 1 then
    table.insert(entry[2], 'del')
    table.insert(entry[2], '1')
  end
  table.insert(reply, entry)
end
return reply
