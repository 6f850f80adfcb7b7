-- Prepended to commit.lua and free.lua (so to release.lua and reap.lua) when loaded.
-- Whether counter i holds the reservation: `held` from the record ('1' per held counter, see
-- reserve.lua); a record without it (written before reservations skipped unlimited
-- counters) holds all.
local function holds(held, i)
  return not held or string.sub(held, i, i) == '1'
end
