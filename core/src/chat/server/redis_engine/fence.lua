-- The room's position, rotating its epoch first when a client holds a position the room
-- cannot vouch for (issue 15: epoch fencing).
--
-- KEYS: 1 meta (hash: epoch, gen, seq, boot)
-- ARGV: 1 a fresh epoch name   2 "always" to rotate whatever the position, else the
--       client's epoch   3 the client's seq   4 "1" to rotate after a restart or
--       failover of Redis (boot.lua), "0" for a lossless Redis
-- Returns {epoch, seq, rotated (0/1)}.
local before = redis.call('HGET', KEYS[1], 'epoch')
-- checked_epoch: boot.lua, loaded before this script.
local epoch, gen = checked_epoch(KEYS[1], ARGV[1], ARGV[4])
local seq = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
local rotated = epoch ~= before
if ARGV[2] == 'always' or (ARGV[2] == epoch and tonumber(ARGV[3]) > seq) then
  -- A new generation: stream ids (gen-seq) keep growing while seq starts again at 1.
  -- (The fresh name was used if checked_epoch rotated: take another.)
  epoch = ARGV[1] .. (rotated and 'f' or '')
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'gen', gen + 1, 'seq', 0)
  return {epoch, 0, 1}
end
return {epoch, seq, rotated and 1 or 0}
