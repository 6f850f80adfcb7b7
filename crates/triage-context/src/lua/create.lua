-- Creates an empty conversation unless it exists (Get with create_if_missing). A script,
-- not HSETNX calls, so a concurrent append never sees a half-written meta hash.
--
-- KEYS: 1 meta hash
-- ARGV: 1 tenant, 2 conversation id, 3 now (ms), 4 ttl (ms)
-- Returns 1 when created, 0 when it already existed.

local owner = redis.call('HGET', KEYS[1], 'tenant')
if owner then
  if owner ~= ARGV[1] then
    return redis.error_reply('TENANT_MISMATCH conversation belongs to another tenant')
  end
  return 0
end
redis.call('HSET', KEYS[1], 'tenant', ARGV[1], 'id', ARGV[2], 'created_at', ARGV[3],
  'turn_count', 0, 'token_count', 0, 'escalations', 0, 'extras', '')
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
