-- Shared by release.lua and reap.lua (prepended to each when loaded).
-- KEYS[1] record, KEYS[2] deadlines, KEYS[2+i] counter i (i = 1..n).
-- ARGV[1] request id, [2] now ms, [3] record retention ms, [4] n.
-- Frees a reservation still in state `reserved` and marks it `new_state` (with the time).
-- Returns 1 freed, 5 when the counter keys passed differ from the record's.
local function free_reservation(new_state)
  local n = tonumber(ARGV[4])
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
  redis.call('HSET', KEYS[1], 'state', new_state, new_state, ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return 1
end
