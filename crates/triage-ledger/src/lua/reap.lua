-- Reap: free one reservation whose deadline has passed (its gateway crashed or hung).
-- KEYS[1] record, KEYS[2] deadlines, KEYS[2+i] counter i (i = 1..n).
-- ARGV[1] request id, [2] now ms, [3] record retention ms, [4] n.
-- Returns 1 reaped, 0 not due / nothing to do, 5 keys differ from the record.
local n = tonumber(ARGV[4])
local deadline = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not deadline or tonumber(deadline) > tonumber(ARGV[2]) then
  return 0
end
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'reserved' then
  -- Settled (or lost with its record): only the stale deadline entry is left.
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 0
end
local enc = {}
for i = 1, n do
  local k = KEYS[2 + i]
  enc[i] = #k .. ':' .. k
end
if redis.call('HGET', KEYS[1], 'keys') ~= table.concat(enc) then
  return 5
end
local amount = redis.call('HGET', KEYS[1], 'amount')
if amount ~= '0' then
  for i = 1, n do
    redis.call('HINCRBY', KEYS[2 + i], 'reserved', '-' .. amount)
  end
end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[1], 'state', 'expired', 'expired', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
