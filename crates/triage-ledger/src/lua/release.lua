-- Release: free a reservation without charging (the call failed).
-- Keys and arguments as in free.lua.
-- Returns 1 released, 0 no record, 2 committed, 3 already released, 4 expired (already
-- freed by the reaper), 5 keys differ from the record.
local STATE = { committed = 2, released = 3, expired = 4 }
local state = redis.call('HGET', KEYS[1], 'state')
if not state then
  return 0
end
if state ~= 'reserved' then
  return STATE[state] or 0
end
return free_reservation('released')
