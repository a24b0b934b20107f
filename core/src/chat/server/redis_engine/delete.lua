-- Hides a message of the room for every node: recorded in the room's set of deleted
-- entries (reads of the stream blank them), then published for the nodes' members.
--
-- KEYS: 1 meta (hash: epoch, gen, seq)   2 stream   3 deleted entries (a set of ids)
-- ARGV: 1 epoch   2 seq   3 channel
-- Returns {"gone"} when the stream no longer holds it (or it is of another epoch), else
-- {"ok", author (JSON)}; the caller checks who may delete before calling with ARGV[4]
-- = "1" (with "0" it only answers the author).
local meta = redis.call('HMGET', KEYS[1], 'epoch', 'gen')
if meta[1] ~= ARGV[1] then
  return {'gone'}
end
local id = (meta[2] or '0') .. '-' .. ARGV[2]
local entries = redis.call('XRANGE', KEYS[2], id, id)
if #entries == 0 then
  return {'gone'}
end
local fields = entries[1][2]
local author = ''
for i = 1, #fields, 2 do
  if fields[i] == 'u' then author = fields[i + 1] end
end
if ARGV[4] == '1' then
  redis.call('SADD', KEYS[3], id)
  redis.call('PUBLISH', ARGV[3], cjson.encode({k = 'd', e = ARGV[1], s = tonumber(ARGV[2])}))
end
return {'ok', author}
