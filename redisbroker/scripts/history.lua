-- history.lua: reads a channel's top, and its history after a position.
--
-- KEYS[1] meta, KEYS[2] history: as in publish.lua
-- ARGV: a fresh epoch, now ms, history ttl ms, idle ttl ms,
--       since epoch ("" for none), since offset
--
-- Returns {epoch, top, entries}: entries are the history entries after
-- since, as XRANGE gives them, when since is in the current epoch and not
-- beyond the top; otherwise none. The caller checks that the first entry
-- follows since (nothing in between left the history). Entries older than
-- the history ttl leave first. A channel without meta starts the fresh
-- epoch, so that its first publication keeps the top read here.
local meta, history = KEYS[1], KEYS[2]
local now, ttl, idle = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local since_epoch, since = ARGV[5], tonumber(ARGV[6])

local epoch = redis.call('HGET', meta, 'epoch')
if not epoch then
  epoch = ARGV[1]
  redis.call('DEL', history)
  redis.call('HSET', meta, 'epoch', epoch, 'top', 0)
  redis.call('PEXPIRE', meta, idle)
end
local top = tonumber(redis.call('HGET', meta, 'top'))

-- Drop the entries that outlived the ttl, oldest first.
while true do
  local oldest = redis.call('XRANGE', history, '-', '+', 'COUNT', 64)
  if #oldest == 0 then break end
  local young = nil
  for _, entry in ipairs(oldest) do
    if now - tonumber(entry[2][2]) < ttl then young = entry[1] break end
    redis.call('XDEL', history, entry[1])
  end
  if young then break end
end

local entries = {}
if since_epoch == epoch and since < top then
  entries = redis.call('XRANGE', history, (since + 1) .. '-0', '+')
end
return {epoch, tostring(top), entries}
