-- Reserve: all counters or none. Every key arrives in KEYS (one hash slot); window ids,
-- deadlines and expiries arrive in ARGV, so the script reads no clock and builds no key.
-- KEYS[1] record hash, KEYS[2] deadlines zset, KEYS[3] kinds set,
-- KEYS[3+i] counter hash i, KEYS[3+n+i] id-index set of counter i   (i = 1..n)
-- ARGV[1] request id, [2] amount (decimal), [3] deadline ms, [4] now ms, [5] model, [6] n,
-- then for counter i at b = 6 + 4(i-1): [b+1] limit (-1: none), [b+2] counter TTL ms (relative, so
-- a skew between the ledger's clock and Redis's cannot expire a live counter),
-- [b+3] scope kind, [b+4] scope id; then ARGV[7+4n] s, the number of counters to seed, and
-- for seed j at c = 7 + 4n + 2(j-1): [c+1] its counter's i and [c+2] h_j, how many of the
-- hour keys that follow the id-index sets in KEYS are its own (in seed order); then
-- ARGV[#ARGV-1], the conversation scope ids a commit adds whole-life cost to (encoded like
-- the keys; a conversation without a limit has no counter), and last ARGV[#ARGV], the
-- counter keys encoded for the record (`<len>:<key>` each, built by the caller from the same
-- list as KEYS: cheaper than in Lua).
-- Seeding: day and month counters are written only where a limit is (hours always), so one
-- can miss spend. A seed raises its spent and requests to the sum of the scope's hours,
-- which hold every charge it should have (a commit charges a reservation's hour with its
-- day and month in one script), and marks it `seeded`: its totals are then whole (reports
-- read them instead of summing hours). Both are lower bounds of the truth, so the larger
-- is kept: a counter from before this layout is whole while hours it outlived are gone.
-- The caller decides when (ops.rs); any moment is exact.
-- Only counters with a limit hold the reservation (`reserved`): a reservation exists to keep
-- concurrent calls under a limit, and on the others it would cost two writes per request for
-- nothing. The record's `held` field marks them ('1' per held counter, in KEYS order), so
-- commit, release and the reaper free exactly those; the other counters are first written
-- (and set up) by the commit that charges them.
-- Returns {2, state} when the request id exists (1 reserved, 2 committed, 3 released,
-- 4 expired), {0, i, used} when counter i refuses, {1, used_1 .. used_n} when granted,
-- where used = spent + reserved (after this reservation when granted; -1 for counters
-- without a limit).
local STATE = { reserved = 1, committed = 2, released = 3, expired = 4 }
local state = redis.call('HGET', KEYS[1], 'state')
if state then
  return { 2, STATE[state] or 0 }
end

local n = tonumber(ARGV[6])
local amount = tonumber(ARGV[2])
local used = {}

-- Sets counter i's TTL and report-index entries (once: see below).
local kinds_added = {}
local function set_up(i)
  local b = 6 + 4 * (i - 1)
  redis.call('PEXPIRE', KEYS[3 + i], ARGV[b + 2])
  redis.call('SADD', KEYS[3 + n + i], ARGV[b + 4])
  redis.call('PEXPIRE', KEYS[3 + n + i], ARGV[b + 2])
  local kind = ARGV[b + 3]
  if not kinds_added[kind] then
    kinds_added[kind] = true
    redis.call('SADD', KEYS[3], kind)
  end
end

local hour = 3 + 2 * n
for j = 1, tonumber(ARGV[7 + 4 * n]) do
  local c = 7 + 4 * n + 2 * (j - 1)
  local i = tonumber(ARGV[c + 1])
  local h = tonumber(ARGV[c + 2])
  local k = KEYS[3 + i]
  local spent, requests = 0, 0
  -- A new scope has no hours yet: one call answers for all of them.
  if redis.call('EXISTS', unpack(KEYS, hour + 1, hour + h)) > 0 then
    for x = hour + 1, hour + h do
      local v = redis.call('HMGET', KEYS[x], 'spent', 'requests')
      spent = spent + (tonumber(v[1]) or 0)
      requests = requests + (tonumber(v[2]) or 0)
    end
  end
  local was = redis.call('HMGET', k, 'spent', 'requests')
  spent = math.max(spent, tonumber(was[1]) or 0)
  requests = math.max(requests, tonumber(was[2]) or 0)
  -- %d, not tostring: Lua would print large sums in exponent notation.
  redis.call('HSET', k, 'spent', string.format('%d', spent), 'requests', string.format('%d', requests),
    'seeded', '1')
  if redis.call('PTTL', k) == -1 then
    set_up(i)
  end
  hour = hour + h
end
-- Check every limit before writing anything: a refusal leaves no partial reservation.
for i = 1, n do
  local limit = tonumber(ARGV[6 + 4 * (i - 1) + 1])
  used[i] = -1 -- unlimited counters are not read: nothing to check, nothing to alert on
  if limit >= 0 then
    local v = redis.call('HMGET', KEYS[3 + i], 'spent', 'reserved')
    local u = (tonumber(v[1]) or 0) + (tonumber(v[2]) or 0)
    -- A zero amount (a free model, the gateway's last resort past a limit) is granted even
    -- where commits overran the limit (a provider counted more tokens than reserved).
    if amount > 0 and u + amount > limit then
      return { 0, i, u }
    end
    used[i] = u + amount
  end
end

-- Counter setup (TTL, id index, kinds) happens once per counter, not per reservation: the
-- TTL is an absolute moment (window end + retention) and index membership is permanent, so
-- both only need writing when the counter has no TTL yet. Every write that can create a
-- counter sets its TTL itself (reserve here, commit and free when they create one), so a
-- counter without a TTL is one this increment just created: `reserved` was absent (the
-- increment returns exactly the amount) or, for a zero amount, HSETNX created the field.
-- PTTL confirms it (a counter Redis lost is set up again the same way).
local held = {}
for i = 1, n do
  local k = KEYS[3 + i]
  local maybe_new
  held[i] = used[i] >= 0 and '1' or '0'
  if used[i] < 0 then
    maybe_new = false
  elseif ARGV[2] ~= '0' then
    maybe_new = redis.call('HINCRBY', k, 'reserved', ARGV[2]) == amount
  else
    maybe_new = redis.call('HSETNX', k, 'reserved', '0') == 1
  end
  if maybe_new and redis.call('PTTL', k) == -1 then
    set_up(i)
  end
end
-- The record keeps the exact counter keys so commit, release and the reaper touch the same
-- counters even after the window rolls; it has no TTL while reserved (the reaper needs it).
redis.call('HSET', KEYS[1], 'state', 'reserved', 'amount', ARGV[2], 'model', ARGV[5],
  'created', ARGV[4], 'deadline', ARGV[3], 'keys', ARGV[#ARGV], 'held', table.concat(held),
  'convs', ARGV[#ARGV - 1])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
local out = { 1 }
for i = 1, n do
  out[i + 1] = used[i]
end
return out
