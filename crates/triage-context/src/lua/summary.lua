-- Stores a conversation's latest handoff summary, only if the conversation still exists
-- for this tenant (it may have expired while the summarizer model was writing), and
-- refreshes the TTL of all its keys: a handoff is activity.
--
-- KEYS: 1 meta hash, 2 turns list, 3 commitments list, 4 summary string
-- ARGV: 1 tenant, 2 encoded HandoffSummary, 3 ttl (ms)
-- Returns 1 when stored, 0 when the conversation is gone.

local owner = redis.call('HGET', KEYS[1], 'tenant')
if not owner or owner ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[4], ARGV[2])
for i = 1, 4 do
  redis.call('PEXPIRE', KEYS[i], ARGV[3])
end
return 1
