-- Stores a conversation's latest handoff summary, only if the conversation still exists
-- for this tenant (it may have expired while the summarizer model was writing), and
-- refreshes the TTL of all its keys: a handoff is activity.
--
-- KEYS: 1 meta hash, 2 turns list, 3 commitments list, 4 summary string
-- ARGV: 1 tenant, 2 encoded HandoffSummary, 3 ttl (ms)
-- Returns 1 when stored, 0 when the conversation is gone.

local meta = redis.call('HMGET', KEYS[1], 'tenant', 'extras')
local owner, extras = meta[1], meta[2]
if not owner or owner ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[4], ARGV[2])
-- append.lua refreshes the TTL of the optional keys `extras` names; see there.
if not extras then
  extras = ''
  if redis.call('EXISTS', KEYS[3]) == 1 then
    extras = 'c'
  end
end
if not string.find(extras, 's', 1, true) then
  redis.call('HSET', KEYS[1], 'extras', extras .. 's')
end
for i = 1, 4 do
  redis.call('PEXPIRE', KEYS[i], ARGV[3])
end
return 1
