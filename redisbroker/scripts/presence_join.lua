-- presence_join.lua: adds an owner to a member of a channel.
--
-- KEYS[1] members        hash: member id -> its description (JSON)
-- KEYS[2] owners         hash: owner -> the node that holds it, of this member
-- KEYS[3] node channels  set: the channels where the node holds owners
-- ARGV: member id, owner, node id, description, pubsub channel, channel
--
-- Publishes "j\n<description>" when the member was not present or its
-- description changed; returns 1 then, else 0.
local members, owners, nodechannels = KEYS[1], KEYS[2], KEYS[3]
local id, owner, node, desc, pubsub, channel = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]

redis.call('HSET', owners, owner, node)
redis.call('SADD', nodechannels, channel)
if redis.call('HGET', members, id) == desc then
  return 0
end
redis.call('HSET', members, id, desc)
redis.call('PUBLISH', pubsub, 'j\n' .. desc)
return 1
