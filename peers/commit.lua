-- Applies one batch of conditional writes to the advertisement pool atomically.
--
-- Every write is conditional on sourceUpdatedAt (the number before the "|" in a value),
-- so batches from several processes -- and journal replays after an outage -- converge
-- whatever order they arrive in. Keys that changed are announced on the change stream
-- so other processes can refresh their in-memory mirror.
--
-- KEYS[1] generation counter, KEYS[2] change stream, KEYS[3] epoch
-- ARGV[1] expected epoch ("" = accept any, used by recovery after it set the epoch)
-- ARGV[2] bookkeeping TTL in ms (generation, stream, epoch)
-- ARGV[3..] operations, each an opcode followed by its arguments:
--   S key sua value ttl_ms tombkey log  -> 0 refused (older or tombstoned), 1 written, 2 equal (TTL refreshed)
--   D key sua tombkey tomb_ttl_ms       -> 0 nothing removed, 1 removed   (sua -1: unconditional, no tombstone)
--   M key snapshot value ttl_ms         -> 0 refused (a newer snapshot is stored), 1 written
--   G key snapshot                      -> aborts the whole batch with "stale" if a newer snapshot is stored
--   A key ttl_ms n member...            -> adds members to a set (full-sync marks)
--   X key                               -> deletes a bookkeeping key

local epoch = redis.call("GET", KEYS[3])
if ARGV[1] ~= "" and epoch ~= ARGV[1] then
  return {"epoch", epoch or ""}
end

local function stamp(value)
  if not value then return nil end
  local bar = string.find(value, "|", 1, true)
  return tonumber(string.sub(value, 1, bar - 1))
end

local results = {}
local changed = {}
local i = 3
local n = #ARGV

-- A stale full sync must change nothing, so the guard runs before any write.
while i <= n do
  local op = ARGV[i]
  if op == "S" then i = i + 7
  elseif op == "D" then i = i + 5
  elseif op == "M" then i = i + 5
  elseif op == "G" then
    local stored = stamp(redis.call("GET", ARGV[i + 1]))
    if stored and stored > tonumber(ARGV[i + 2]) then
      return {"stale", tostring(stored)}
    end
    i = i + 3
  elseif op == "A" then i = i + 4 + tonumber(ARGV[i + 3])
  elseif op == "X" then i = i + 2
  else return redis.error_reply("unknown opcode " .. tostring(op)) end
end

i = 3
while i <= n do
  local op = ARGV[i]
  if op == "S" then
    local key, sua, value, ttl, tombkey, log = ARGV[i + 1], tonumber(ARGV[i + 2]), ARGV[i + 3], ARGV[i + 4], ARGV[i + 5], ARGV[i + 6]
    local result = 1
    local tomb = nil
    if tombkey ~= "" then tomb = tonumber(redis.call("GET", tombkey)) end
    if tomb and tomb >= sua then
      result = 0
    else
      local current = redis.call("GET", key)
      if current and stamp(current) > sua then
        result = 0
      elseif current == value then
        redis.call("PEXPIRE", key, ttl)
        result = 2
        if log == "1" then changed[#changed + 1] = key end
      else
        redis.call("SET", key, value, "PX", ttl)
        if tomb then redis.call("DEL", tombkey) end
        changed[#changed + 1] = key
      end
    end
    results[#results + 1] = result
    i = i + 7
  elseif op == "D" then
    local key, sua, tombkey, tombttl = ARGV[i + 1], tonumber(ARGV[i + 2]), ARGV[i + 3], ARGV[i + 4]
    local result = 0
    local current = redis.call("GET", key)
    if current and (sua < 0 or stamp(current) <= sua) then
      redis.call("DEL", key)
      changed[#changed + 1] = key
      result = 1
    end
    if tombkey ~= "" and sua >= 0 and not (current and stamp(current) > sua) then
      local tomb = tonumber(redis.call("GET", tombkey))
      if not tomb or tomb < sua then
        redis.call("SET", tombkey, ARGV[i + 2], "PX", tombttl)
        changed[#changed + 1] = tombkey
      end
    end
    results[#results + 1] = result
    i = i + 5
  elseif op == "M" then
    local key, snapshot, value, ttl = ARGV[i + 1], tonumber(ARGV[i + 2]), ARGV[i + 3], ARGV[i + 4]
    local stored = stamp(redis.call("GET", key))
    if stored and stored > snapshot then
      results[#results + 1] = 0
    else
      redis.call("SET", key, value, "PX", ttl)
      changed[#changed + 1] = key
      results[#results + 1] = 1
    end
    i = i + 5
  elseif op == "G" then
    i = i + 3
  elseif op == "A" then
    local key, ttl, count = ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3])
    for j = 1, count, 5000 do
      redis.call("SADD", key, unpack(ARGV, i + 3 + j, i + 3 + math.min(j + 4999, count)))
    end
    redis.call("PEXPIRE", key, ttl)
    i = i + 4 + count
  elseif op == "X" then
    redis.call("DEL", ARGV[i + 1])
    i = i + 2
  end
end

local generation = tonumber(redis.call("GET", KEYS[1]) or "0")
if #changed > 0 then
  generation = redis.call("INCR", KEYS[1])
  redis.call("XADD", KEYS[2], "MAXLEN", "~", "2000", "*", "g", generation, "k", table.concat(changed, " "))
end
if epoch then
  for k = 1, 3 do redis.call("PEXPIRE", KEYS[k], ARGV[2]) end
end
return {"ok", generation, results}
