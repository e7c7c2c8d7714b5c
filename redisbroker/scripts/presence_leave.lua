-- presence_leave.lua: removes an owner of a member of a channel, and the
-- member with its last owner.
--
-- KEYS[1] members, KEYS[2] owners: as in presence_join.lua
-- ARGV: member id, owner ("" removes every owner), pubsub channel
--
-- Publishes "l\n<description>" when the member left; returns 1 then, else 0.
local members, owners = KEYS[1], KEYS[2]
local id, owner, pubsub = ARGV[1], ARGV[2], ARGV[3]

local desc = redis.call('HGET', members, id)
if not desc then
  return 0
end
if owner ~= '' then
  if redis.call('HDEL', owners, owner) == 0 or redis.call('HLEN', owners) > 0 then
    return 0
  end
end
redis.call('DEL', owners)
redis.call('HDEL', members, id)
redis.call('PUBLISH', pubsub, 'l\n' .. desc)
return 1
