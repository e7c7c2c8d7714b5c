-- publish.lua: appends one publication to a channel's stream, atomically.
--
-- KEYS[1] meta      hash: epoch, top (the offset of the last publication)
-- KEYS[2] history   stream: one entry per publication, ID "<offset>-0",
--                   fields t (unix ms), f (publisher), d (data)
-- KEYS[3] keys      hash: idempotency key -> "<unix ms> <offset>"
-- KEYS[4] keytimes  sorted set: idempotency key scored by its unix ms
-- ARGV: pubsub channel, data, from, now ms, idempotency key ("" for none),
--       history size, history ttl ms, dedup window ms, a fresh epoch,
--       idle ttl ms, max keys per channel
--
-- Returns {epoch, offset, duplicate (0 or 1)}. A channel without meta
-- (never used, expired, evicted, or Redis restarted empty) starts the
-- fresh epoch with an empty history: its old positions become
-- unrecoverable, never silently reused.
local meta, history, keys, keytimes = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local pubsub, data, from = ARGV[1], ARGV[2], ARGV[3]
local now, nowtext, key = tonumber(ARGV[4]), ARGV[4], ARGV[5]
local size, ttl, window = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local idle, maxkeys = tonumber(ARGV[10]), tonumber(ARGV[11])

local epoch = redis.call('HGET', meta, 'epoch')
if not epoch then
  epoch = ARGV[9]
  redis.call('DEL', history, keys, keytimes)
  redis.call('HSET', meta, 'epoch', epoch, 'top', 0)
end

if key ~= '' then
  -- Forget a bounded step of the keys that left the window.
  local expired = redis.call('ZRANGEBYSCORE', keytimes, '-inf', now - window, 'LIMIT', 0, 100)
  if #expired > 0 then
    redis.call('ZREM', keytimes, unpack(expired))
    redis.call('HDEL', keys, unpack(expired))
  end
  local seen = redis.call('HGET', keys, key)
  if seen then
    local at, offset = string.match(seen, '^(%d+) (%d+)$')
    if tonumber(at) > now - window then
      return {epoch, offset, 1}
    end
  end
end

local top = redis.call('HINCRBY', meta, 'top', 1)
redis.call('XADD', history, 'MAXLEN', size, top .. '-0', 't', nowtext, 'f', from, 'd', data)
redis.call('PEXPIRE', history, ttl)
redis.call('PEXPIRE', meta, idle)

if key ~= '' then
  redis.call('HSET', keys, key, nowtext .. ' ' .. top)
  redis.call('ZADD', keytimes, now, key)
  local over = redis.call('ZCARD', keytimes) - maxkeys
  if over > 0 then
    local oldest = redis.call('ZRANGE', keytimes, 0, over - 1)
    redis.call('ZREM', keytimes, unpack(oldest))
    redis.call('HDEL', keys, unpack(oldest))
  end
  redis.call('PEXPIRE', keys, window)
  redis.call('PEXPIRE', keytimes, window)
end

redis.call('PUBLISH', pubsub, 'p\n' .. epoch .. '\n' .. top .. '\n' .. nowtext .. '\n' .. from .. '\n' .. data)
return {epoch, tostring(top), 0}
