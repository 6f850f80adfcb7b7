-- Release: free a reservation without charging (the call failed).
-- KEYS[1] record, KEYS[2] deadlines, KEYS[2+i] counter i (i = 1..n).
-- ARGV[1] request id, [2] now ms, [3] record retention ms, [4] n.
-- Returns 1 released, 0 no record, 2 committed, 3 already released, 4 expired (already
-- freed by the reaper), 5 keys differ from the record.
local STATE = { committed = 2, released = 3, expired = 4 }
local n = tonumber(ARGV[4])
local state = redis.call('HGET', KEYS[1], 'state')
if not state then
  return 0
end
if state ~= 'reserved' then
  return STATE[state] or 0
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
redis.call('HSET', KEYS[1], 'state', 'released', 'released', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
