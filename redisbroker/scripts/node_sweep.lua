-- node_sweep.lua: removes the presence of a dead node.
--
-- KEYS[1] alive          string: present while the node lives (it refreshes
--                        it); once expired, the node is dead
-- KEYS[2] node channels  set: the channels where the node holds owners
-- KEYS[3] nodes          set: every node id that has not been swept
-- ARGV: node id, key prefix
--
-- Does nothing while the node is alive. Otherwise removes every owner the
-- node held; a member left with no owner leaves, with "l\n<description>"
-- published to its channel as presence_leave.lua does. Returns the number
-- of members that left, or -1 if the node is alive.
local alive, nodechannels, nodes = KEYS[1], KEYS[2], KEYS[3]
local node, prefix = ARGV[1], ARGV[2]

if redis.call('EXISTS', alive) == 1 then
  return -1
end
local gone = 0
for _, channel in ipairs(redis.call('SMEMBERS', nodechannels)) do
  local base = prefix .. ':{' .. channel .. '}:'
  local members = base .. 'members'
  for _, id in ipairs(redis.call('HKEYS', members)) do
    local owners = base .. 'owners:' .. id
    local held = redis.call('HGETALL', owners)
    for i = 1, #held, 2 do
      if held[i + 1] == node then
        redis.call('HDEL', owners, held[i])
      end
    end
    if redis.call('HLEN', owners) == 0 then
      local desc = redis.call('HGET', members, id)
      redis.call('HDEL', members, id)
      redis.call('PUBLISH', base .. 'events', 'l\n' .. desc)
      gone = gone + 1
    end
  end
end
redis.call('DEL', nodechannels)
redis.call('SREM', nodes, node)
return gone
