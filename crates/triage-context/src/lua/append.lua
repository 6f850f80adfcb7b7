-- Appends one batch to a conversation. One script so the batch is atomic: two appends of
-- the same conversation are serialized by Redis, each batch's messages stay contiguous,
-- and counters, pin, commitments and TTL never disagree with the turns list.
--
-- KEYS: 1 meta hash, 2 turns list, 3 commitments list, 4 summary string
--       (all carry the conversation's hash tag, so they share one Redis Cluster slot)
-- ARGV: 1 tenant, 2 conversation id, 3 now (ms), 4 ttl (ms), 5 pin model ('' keeps it),
--       6 pin version, 7 pin tier, 8 tokens to add, 9 escalation ('1' or '0'),
--       10 message count n, 11 .. 10+n encoded Messages, then encoded Commitments.
-- Returns the number of turns stored after the append.

local owner = redis.call('HGET', KEYS[1], 'tenant')
-- Keys already embed the tenant; this is the second lock on the door, in case a key
-- scheme change ever lets two tenants map to one key.
if owner and owner ~= ARGV[1] then
  return redis.error_reply('TENANT_MISMATCH conversation belongs to another tenant')
end
if not owner then
  redis.call('HSET', KEYS[1], 'tenant', ARGV[1], 'id', ARGV[2], 'created_at', ARGV[3],
    'turn_count', 0, 'token_count', 0, 'escalations', 0)
end

local n = tonumber(ARGV[10])
local count
if n > 0 then
  count = redis.call('RPUSH', KEYS[2], unpack(ARGV, 11, 10 + n))
else
  count = redis.call('LLEN', KEYS[2])
end
redis.call('HSET', KEYS[1], 'turn_count', count, 'updated_at', ARGV[3])

if ARGV[8] ~= '0' then
  redis.call('HINCRBY', KEYS[1], 'token_count', ARGV[8])
end
if ARGV[5] ~= '' then
  redis.call('HSET', KEYS[1], 'pinned_model', ARGV[5], 'pinned_version', ARGV[6], 'tier', ARGV[7])
end
if ARGV[9] == '1' then
  redis.call('HINCRBY', KEYS[1], 'escalations', 1)
end
if #ARGV > 10 + n then
  redis.call('RPUSH', KEYS[3], unpack(ARGV, 11 + n, #ARGV))
end

-- Every key of the conversation expires together, counted from its last activity.
for i = 1, 4 do
  redis.call('PEXPIRE', KEYS[i], ARGV[4])
end
return count
