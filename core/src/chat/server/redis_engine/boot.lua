-- Prelude of the scripts that hand out numbers (send.lua, fence.lua): the room's epoch,
-- rotated first when this Redis process is not the one that numbered the room last.
-- A restart or a failover may have lost the tail of the room (appendfsync everysec, or
-- a replica behind its master); numbering on in the same epoch would hand out again an
-- (epoch, seq) that clients already hold. With a lossless Redis (appendfsync always)
-- the node says so and the check is skipped.

-- The room's epoch and generation, after the check. `fence` is "1" to check.
local function checked_epoch(meta, fresh, fence)
  local m = redis.call('HMGET', meta, 'epoch', 'gen', 'boot')
  local epoch, gen, boot = m[1], tonumber(m[2] or '0'), m[3]
  local running = boot
  if fence == '1' then
    running = string.match(redis.call('INFO', 'server'), 'run_id:(%x+)')
  end
  if not epoch then
    -- A room Redis does not know (new, or its data was lost): a new epoch.
    redis.call('HSET', meta, 'epoch', fresh, 'gen', gen, 'seq', 0, 'boot', running or '')
    return fresh, gen
  end
  if fence == '1' and boot ~= running then
    -- A new generation: stream ids (gen-seq) keep growing while seq starts at 1.
    gen = gen + 1
    redis.call('HSET', meta, 'epoch', fresh, 'gen', gen, 'seq', 0, 'boot', running)
    return fresh, gen
  end
  return epoch, gen
end

