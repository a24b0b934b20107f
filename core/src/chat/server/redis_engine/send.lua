-- One chat send, decided atomically for every node (issue 15): dedup, moderation and
-- rate checks on Redis's clock, numbering, the room's stream, the dedup record and the
-- publication. Replicated and written to the AOF as one unit.
--
-- KEYS: 1 meta (hash: epoch, gen, seq, slow_ms)   2 stream   3 dedup record
--       4 rate bucket (hash: tokens, t)            5 last send   6 bans (set)
--       7 timeouts (hash: user -> until ms)
-- ARGV: 1 user id   2 user (JSON)   3 text   4 client_msg_id   5 a fresh epoch name
--       6 history (stream MAXLEN)   7 dedup TTL ms   8 rate messages   9 rate window ms
--       10 moderator ("1" or "0")   11 channel
-- Returns {"dup", reply} | {"err", code, retry_after_ms} | {"ok", reply},
-- reply = JSON {epoch, seq, ts}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local first = redis.call('GET', KEYS[3])
if first then
  return {'dup', first}
end
if redis.call('SISMEMBER', KEYS[6], ARGV[1]) == 1 then
  return {'err', 'banned', 0}
end
local timed_out = tonumber(redis.call('HGET', KEYS[7], ARGV[1]) or '0')
if timed_out > now then
  return {'err', 'timed_out', timed_out - now}
end

local meta = redis.call('HMGET', KEYS[1], 'epoch', 'gen', 'slow_ms')
local epoch, gen = meta[1], tonumber(meta[2] or '0')
if not epoch then
  -- A room Redis does not know (new, or its data was lost): a new epoch, so that no
  -- (epoch, seq) a client holds is ever handed out again.
  epoch = ARGV[5]
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'gen', gen, 'seq', 0)
end
local slow = tonumber(meta[3] or '0')
if ARGV[10] ~= '1' and slow > 0 then
  local last = tonumber(redis.call('GET', KEYS[5]) or '-1')
  if last >= 0 and now - last < slow then
    return {'err', 'slow_mode', slow - (now - last)}
  end
end

-- Token bucket: `messages` per `window` ms, refilled continuously.
local capacity, window = tonumber(ARGV[8]), tonumber(ARGV[9])
local bucket = redis.call('HMGET', KEYS[4], 'tokens', 't')
local tokens = tonumber(bucket[1] or capacity)
local since = math.max(0, now - tonumber(bucket[2] or now))
tokens = math.min(capacity, tokens + since * capacity / window)
if tokens < 1 then
  return {'err', 'rate_limited', math.ceil((1 - tokens) * window / capacity)}
end
redis.call('HSET', KEYS[4], 'tokens', tostring(tokens - 1), 't', now)
redis.call('PEXPIRE', KEYS[4], window)

local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
redis.call('XADD', KEYS[2], 'MAXLEN', '=', ARGV[6], gen .. '-' .. seq,
  'e', epoch, 's', seq, 'ts', now, 'u', ARGV[2], 'x', ARGV[3], 'c', ARGV[4])
local reply = cjson.encode({epoch = epoch, seq = seq, ts = now})
redis.call('SET', KEYS[3], reply, 'PX', ARGV[7])
redis.call('SET', KEYS[5], now, 'PX', math.max(slow, 60000))
redis.call('PUBLISH', ARGV[11], cjson.encode({
  e = epoch, s = seq, ts = now, u = ARGV[2], x = ARGV[3], c = ARGV[4]}))
return {'ok', reply}
