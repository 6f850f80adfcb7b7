-- Commit: charge the actual cost once and free the reservation.
-- KEYS[1] record, KEYS[2] deadlines, KEYS[3] model attribution of the hour (days and
-- months are summed from hours when reported), KEYS[3+i] counter i (i = 1..n), KEYS[4+n]
-- kinds set and KEYS[4+n+i] the id-index set of counter i.
-- ARGV[1] request id, [2] actual (decimal), [3] now ms, [4] record retention ms, [5] model,
-- [6] conversation retention ms, [7] attribution TTL ms, [8] n, [9] '1' when the caller
-- reserved these counters itself (it may then charge them even if the record is gone:
-- Redis lost it, or the reservation never reached Redis in a fail-open outage), [9+i] TTL of
-- counter i ('0': unknown, keep its TTL), [9+n+2i-1] scope kind and [9+n+2i] scope id of
-- counter i.
-- Always last: the m conversation hashes (one per conversation scope charged) are the last
-- m KEYS; ARGV[#ARGV-2] is the counter keys encoded as in the record (built by the caller
-- from the same list as KEYS), ARGV[#ARGV-1] the revenue ('' none) and ARGV[#ARGV] is m.
-- Returns {code, charged, was_expired, spent_1 .. spent_n [, reserved_1 .. reserved_n]}:
-- 1 committed, 2 already committed, 3 released earlier (nothing charged), 4 no record, 5 keys
-- differ from the record, 6 charged without a record; spent_i is counter i's spent after a
-- charge (codes 1 and 6 only), for threshold alerts; reserved_i its reserved after the
-- charge, present only when the charge freed a reservation (it then read them for free).
--
-- Counter TTLs are absolute moments (window end + retention) that reserve already set for
-- the counters holding the reservation, so a charge does not set them again: only when this
-- commit is the counter's first (`requests` becomes 1: new, which counters without a limit
-- always are at their first charge, or recreated after Redis lost it), or when charging
-- without a record. Setting a counter up also enters it in the report indexes. A counter
-- reserve set up is set up again at its first charge, once per window: asking whether it
-- has a TTL would cost every new counter (a new conversation's, on every Route) a call.
-- Only the counters the record marks `held` free the reservation (see reserve.lua).
-- Model attribution hashes likewise get their TTL when a model's first request in the window
-- creates its fields. Conversation hashes slide: refreshed each time.
local n = tonumber(ARGV[8])
local actual = ARGV[2]
local m = tonumber(ARGV[#ARGV])
local revenue = ARGV[#ARGV - 1]
local after = {}
local reserved_after = {}

local encoded_keys = ARGV[#ARGV - 2]

-- Enters counter i in the report indexes (its kind in the kinds set, its id in the window's
-- id set, which lives as long as the counter).
local kinds_added = {}
local function index(i)
  local kind = ARGV[9 + n + 2 * i - 1]
  if not kinds_added[kind] then
    kinds_added[kind] = true
    redis.call('SADD', KEYS[4 + n], kind)
  end
  redis.call('SADD', KEYS[4 + n + i], ARGV[9 + n + 2 * i])
  if ARGV[9 + i] ~= '0' then
    redis.call('PEXPIRE', KEYS[4 + n + i], ARGV[9 + i])
  end
end

-- free_amount: the reservation to free (nil or '0': none), from the counters `held` marks
-- (nil: all); always_set_up: set every TTL and index entry.
local function charge_counters(free_amount, held, always_set_up)
  local freeing = free_amount and free_amount ~= '0'
  for i = 1, n do
    local k = KEYS[3 + i]
    if freeing then
      if holds(held, i) then
        -- Negate as a string: "-0" is not an integer to Redis, and Lua number formatting
        -- could turn large amounts into exponent notation.
        reserved_after[i] = redis.call('HINCRBY', k, 'reserved', '-' .. free_amount)
      else
        reserved_after[i] = 0
      end
    end
    if actual ~= '0' then
      after[i] = redis.call('HINCRBY', k, 'spent', actual)
    else
      after[i] = tonumber(redis.call('HGET', k, 'spent') or '0')
    end
    local first = redis.call('HINCRBY', k, 'requests', 1) == 1
    if always_set_up or first then
      if ARGV[9 + i] ~= '0' then
        redis.call('PEXPIRE', k, ARGV[9 + i])
      end
      index(i)
    end
  end
  if not freeing then
    reserved_after = nil
  end
end

local function attribute(model)
  if model and model ~= '' then
    redis.call('HINCRBY', KEYS[3], 'spent:' .. model, actual)
    if redis.call('HINCRBY', KEYS[3], 'requests:' .. model, 1) == 1 then
      redis.call('PEXPIRE', KEYS[3], ARGV[7])
    end
  end
end

-- Each conversation scope charged: its whole cost and requests over every window, the
-- model that answered last, and its latest revenue when the caller sent one (the margin).
local function conversations(model)
  for j = 1, m do
    local k = KEYS[#KEYS - m + j]
    redis.call('HINCRBY', k, 'cost', actual)
    redis.call('HINCRBY', k, 'requests', 1)
    if revenue ~= '' then
      redis.call('HSET', k, 'model', model or '', 'revenue', revenue)
    else
      redis.call('HSET', k, 'model', model or '')
    end
    redis.call('PEXPIRE', k, ARGV[6])
  end
end

local function charged(code, was_expired)
  local out = { code, tonumber(actual), was_expired }
  for i = 1, n do
    out[3 + i] = after[i]
  end
  if reserved_after then
    for i = 1, n do
      out[3 + n + i] = reserved_after[i]
    end
  end
  return out
end

local rec = redis.call('HMGET', KEYS[1], 'state', 'keys', 'amount', 'model', 'held')
local state = rec[1]
if not state then
  if ARGV[9] ~= '1' or n == 0 then
    return { 4, 0, 0 }
  end
  charge_counters(nil, nil, true)
  redis.call('HSET', KEYS[1], 'state', 'committed', 'amount', '0', 'actual', actual,
    'model', ARGV[5], 'committed', ARGV[3], 'keys', encoded_keys)
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  redis.call('ZREM', KEYS[2], ARGV[1])
  attribute(ARGV[5])
  conversations(ARGV[5])
  return charged(6, 0)
end
if state == 'committed' then
  return { 2, 0, 0 }
end
if state == 'released' then
  return { 3, 0, 0 }
end
if rec[2] ~= encoded_keys then
  return { 5, 0, 0 }
end
local model = ARGV[5]
if model == '' then
  model = rec[4]
end
-- An expired reservation was already freed by the reaper; the call happened anyway (the
-- gateway was slow, not dead), so its actual cost is still charged.
local was_expired = 0
if state == 'expired' then
  was_expired = 1
  charge_counters(nil, nil, false)
else
  charge_counters(rec[3], rec[5], false)
end
redis.call('ZREM', KEYS[2], ARGV[1])
-- Settled, the record only answers retries (its state) for the retention: it is written
-- anew, small. With the counter keys in it Redis keeps it as a hashtable (~1.1 KB); alone,
-- a listpack of ~100 bytes, on every Route for two days.
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'state', 'committed', 'actual', actual, 'committed', ARGV[3], 'model', model)
redis.call('PEXPIRE', KEYS[1], ARGV[4])
attribute(model)
conversations(model)
return charged(1, was_expired)
