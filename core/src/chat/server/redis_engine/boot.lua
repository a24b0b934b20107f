-- Prelude of the scripts that hand out numbers (send.lua, fence.lua): the room's epoch,
-- rotated first when this Redis process is not the one that numbered the room last.
-- A restart or a failover may have lost the tail of the room (appendfsync everysec, or
-- a replica behind its master); numbering on in the same epoch would hand out again an
-- (epoch, seq) that clients already hold. With a lossless Redis (appendfsync always)
-- the node says so and the check is skipped.
--
-- These scripts are a Redis function library (FUNCTION LOAD), not EVAL scripts, for one
-- reason: a library's local state lives as long as the Lua VM that loaded it, that is
-- as long as the Redis process (a restart loads the library anew, from the AOF or from
-- the node). So `INFO server`, which costs about a quarter of a send, is read once per
-- process instead of once per send.

-- This process's run_id, read once.
local running_id = nil
local function current_run_id()
  if not running_id then
    running_id = string.match(redis.call('INFO', 'server'), 'run_id:(%x+)')
  end
  return running_id
end

-- The room's epoch, generation and slow mode (ms), after the check. `fence` is "1" to
-- check.
local function checked_epoch(meta, fresh, fence)
  local m = redis.call('HMGET', meta, 'epoch', 'gen', 'boot', 'slow_ms')
  local epoch, gen, boot = m[1], tonumber(m[2] or '0'), m[3]
  local slow = tonumber(m[4] or '0')
  local running = boot
  if fence == '1' then
    running = current_run_id()
  end
  if not epoch then
    -- A room Redis does not know (new, or its data was lost): a new epoch.
    redis.call('HSET', meta, 'epoch', fresh, 'gen', gen, 'seq', 0, 'boot', running or '')
    return fresh, gen, slow
  end
  if fence == '1' and boot ~= running then
    -- A new generation: stream ids (gen-seq) keep growing while seq starts at 1.
    gen = gen + 1
    redis.call('HSET', meta, 'epoch', fresh, 'gen', gen, 'seq', 0, 'boot', running)
    return fresh, gen, slow
  end
  return epoch, gen, slow
end

