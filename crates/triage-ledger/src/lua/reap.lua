-- Reap: free one reservation whose deadline has passed (its gateway crashed or hung).
-- Keys and arguments as in free.lua.
-- Returns 1 reaped, 0 not due / nothing to do, 5 keys differ from the record.
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
return free_reservation('expired')
