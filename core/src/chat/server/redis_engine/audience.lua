-- A node's count of a room's audience, and the room's total across nodes (issue 15).
-- Each node reports its own count with a time to live; a node that stops reporting
-- (killed) drops out of the total once its report expires.
--
-- KEYS: 1 counts (hash: node -> count)   2 expiries (sorted set: node by expiry, ms)
-- ARGV: 1 node   2 its count   3 time to live, ms
-- Returns the total of the nodes whose reports have not expired.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[1])
for _, node in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)) do
  redis.call('HDEL', KEYS[1], node)
  redis.call('ZREM', KEYS[2], node)
end
local total = 0
for _, count in ipairs(redis.call('HVALS', KEYS[1])) do
  total = total + tonumber(count)
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return total
