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
--
-- Every Route runs this, and Redis's time goes mostly to the interpreter (~1 us per
-- redis.call), so the meta hash is written in one HSET and only keys that exist get their
-- TTL refreshed: the meta field `extras` names the optional ones ('c' commitments, 's'
-- summary; summary.lua adds 's'). A conversation stored before `extras` existed has it
-- looked up once here.

local meta = redis.call('HMGET', KEYS[1], 'tenant', 'extras')
local owner, extras = meta[1], meta[2]
-- Keys already embed the tenant; this is the second lock on the door, in case a key
-- scheme change ever lets two tenants map to one key.
if owner and owner ~= ARGV[1] then
  return redis.error_reply('TENANT_MISMATCH conversation belongs to another tenant')
end

local n = tonumber(ARGV[10])
local count
if n > 0 then
  count = redis.call('RPUSH', KEYS[2], unpack(ARGV, 11, 10 + n))
else
  count = redis.call('LLEN', KEYS[2])
end

local fields = { 'turn_count', count, 'updated_at', ARGV[3] }
local function set(field, value)
  fields[#fields + 1] = field
  fields[#fields + 1] = value
end
local extras_changed = false
if not owner then
  set('tenant', ARGV[1])
  set('id', ARGV[2])
  set('created_at', ARGV[3])
  set('token_count', ARGV[8])
  set('escalations', ARGV[9])
  extras, extras_changed = '', true
else
  if not extras then
    extras = ''
    if redis.call('EXISTS', KEYS[3]) == 1 then
      extras = extras .. 'c'
    end
    if redis.call('EXISTS', KEYS[4]) == 1 then
      extras = extras .. 's'
    end
    extras_changed = true
  end
  if ARGV[8] ~= '0' then
    redis.call('HINCRBY', KEYS[1], 'token_count', ARGV[8])
  end
  if ARGV[9] == '1' then
    redis.call('HINCRBY', KEYS[1], 'escalations', 1)
  end
end
if ARGV[5] ~= '' then
  set('pinned_model', ARGV[5])
  set('pinned_version', ARGV[6])
  set('tier', ARGV[7])
end
if #ARGV > 10 + n then
  redis.call('RPUSH', KEYS[3], unpack(ARGV, 11 + n, #ARGV))
  if not string.find(extras, 'c', 1, true) then
    extras, extras_changed = extras .. 'c', true
  end
end
if extras_changed then
  set('extras', extras)
end
redis.call('HSET', KEYS[1], unpack(fields))

-- Every key of the conversation expires together, counted from its last activity.
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
if string.find(extras, 'c', 1, true) then
  redis.call('PEXPIRE', KEYS[3], ARGV[4])
end
if string.find(extras, 's', 1, true) then
  redis.call('PEXPIRE', KEYS[4], ARGV[4])
end
return count
