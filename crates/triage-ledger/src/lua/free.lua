-- Shared by release.lua and reap.lua (prepended to each when loaded).
-- KEYS[1] record, KEYS[2] deadlines, KEYS[2+i] counter i (i = 1..n).
-- ARGV[1] request id, [2] now ms, [3] record retention ms, [4] n, [4+i] TTL ms of counter i
-- ('0': unknown), [5+n] the counter keys encoded as in the record (built by the caller from
-- the same list as KEYS).
-- Frees a reservation still in state `reserved` and marks it `new_state` (with the time).
-- Returns 1 freed, 5 when the counter keys passed differ from the record's.
local function free_reservation(new_state)
  local n = tonumber(ARGV[4])
  local rec = redis.call('HMGET', KEYS[1], 'keys', 'amount', 'held')
  if rec[1] ~= ARGV[5 + n] then
    return 5
  end
  local amount = rec[2]
  if amount ~= '0' then
    local created = -tonumber(amount)
    for i = 1, n do
      -- A counter Redis lost is recreated by the decrement, without a TTL: give it one
      -- (reserve sets counters up only when it creates them).
      if holds(rec[3], i) and redis.call('HINCRBY', KEYS[2 + i], 'reserved', '-' .. amount) == created
        and ARGV[4 + i] ~= '0' and redis.call('PTTL', KEYS[2 + i]) == -1 then
        redis.call('PEXPIRE', KEYS[2 + i], ARGV[4 + i])
      end
    end
  end
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('HSET', KEYS[1], 'state', new_state, new_state, ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return 1
end
