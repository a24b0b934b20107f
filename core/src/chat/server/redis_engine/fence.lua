-- The room's position, rotating its epoch first when a client holds a position the room
-- cannot vouch for (issue 15: epoch fencing).
--
-- KEYS: 1 meta (hash: epoch, gen, seq)
-- ARGV: 1 a fresh epoch name   2 "always" to rotate whatever the position (after a
--       Redis reconnect), else the client's epoch   3 the client's seq
-- Returns {epoch, seq, rotated (0/1)}.
local meta = redis.call('HMGET', KEYS[1], 'epoch', 'gen', 'seq')
local epoch, gen, seq = meta[1], tonumber(meta[2] or '0'), tonumber(meta[3] or '0')
local rotate = not epoch
  or ARGV[2] == 'always'
  or (ARGV[2] == epoch and tonumber(ARGV[3]) > seq)
if not rotate then
  return {epoch, seq, 0}
end
-- A new generation: stream ids (gen-seq) keep growing while seq starts again at 1.
if epoch then
  gen = gen + 1
end
redis.call('HSET', KEYS[1], 'epoch', ARGV[1], 'gen', gen, 'seq', 0)
return {ARGV[1], 0, 1}
