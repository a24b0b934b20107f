-- Every message after `seq` of `epoch`, oldest first, read with the room's top in one
-- step; nothing when the stream no longer holds all of them (never a partial answer).
--
-- KEYS: 1 meta (hash: epoch, gen, seq)   2 stream   3 deleted entries (a set of ids;
--       a deleted entry comes with the field del = 1)
-- ARGV: 1 epoch   2 seq
-- Returns {"none"} | {"ok", top, entry, entry, ...}, entry = {id, {field, value, ...}}.
local meta = redis.call('HMGET', KEYS[1], 'epoch', 'gen', 'seq')
local epoch, gen, top = meta[1], meta[2] or '0', tonumber(meta[3] or '0')
local seq = tonumber(ARGV[2])
if epoch ~= ARGV[1] or seq > top then
  return {'none'}
end
local reply = {'ok', top}
if seq == top then
  return reply
end
local entries = redis.call('XRANGE', KEYS[2], gen .. '-' .. (seq + 1), gen .. '-' .. top)
if #entries ~= top - seq then
  return {'none'}
end
for _, entry in ipairs(entries) do
  if redis.call('SISMEMBER', KEYS[3], entry[1]) == 1 then
    table.insert(entry[2], 'del')
    table.insert(entry[2], '1')
  end
  table.insert(reply, entry)
end
return reply
