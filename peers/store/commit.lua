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
-- ARGV[3] the operations as one JSON array (one argument: packing thousands of arguments
--         costs the client more than the whole script costs Redis); numbers travel as strings.
--         Each operation is an array: an opcode followed by its arguments:
--   S key sua value ttl_ms tombkey log floor [metakey]
--                                       -> 0 refused (older or tombstoned), 1 written, 2 equal (TTL refreshed);
--                                          a tombstone left by a sweep ("<stamp>|s") older than floor is ignored
--   U keyprefix tombprefix ttl_ms log floor (id sua value)...
--                                       -> S for each register id (key keyprefix..id, tombkey tombprefix..id):
--                                          a bulk's upserts in one operation, one result per id
--   D key sua tombkey tomb_ttl_ms kind [metakey]
--                                       -> 0 nothing removed, 1 removed   (sua -1: unconditional, no tombstone)
--                                          (key "" only sets the tombstone; kind "r" removal, "s" sweep:
--                                          a sweep does nothing once metakey records a newer snapshot)
--   M key snapshot value ttl_ms force   -> 0 refused (a newer snapshot is stored), 1 written (force: always)
--   G key snapshot                      -> aborts the whole batch with "stale" if a newer snapshot is stored
--   T keyprefix ttl_ms id...            -> refreshes the TTL of each keyprefix..id (a digest's unchanged
--                                          entries): one result per id, 1 refreshed, 0 missing (send it whole)
--   A key ttl_ms member...              -> appends members to a text of space-separated members (full-sync
--                                          marks: 100,000 of them read with one GET, dropped with one DEL)
--   H key ttl_ms field n...             -> adds each n to a field of a hash (a full sync's counts so far)
--   X key...                            -> deletes bookkeeping keys

local epoch = redis.call("GET", KEYS[3])
if ARGV[1] ~= "" and epoch ~= ARGV[1] then
  return {"epoch", epoch or ""}
end

local function stamp(value)
  if not value then return nil end
  local bar = string.find(value, "|", 1, true)
  if not bar then return tonumber(value) end
  return tonumber(string.sub(value, 1, bar - 1))
end

local function swept(value)
  return value ~= nil and string.sub(value, -2) == "|s"
end

local ops = cjson.decode(ARGV[3])
local results = {}
local changed = {}

-- A stale sweep must remove nothing, so the guard runs before any write of its batch (the items of
-- a stale final chunk may have been upserted already: each of those writes is conditional anyway).
for _, op in ipairs(ops) do
  if op[1] == "G" then
    local stored = stamp(redis.call("GET", op[2]))
    if stored and stored > tonumber(op[3]) then
      return {"stale", tostring(stored)}
    end
  end
end

-- One conditional upsert (S, and each item of U); returns its result character. `held` (optional):
-- the raw tombstone and the current value already read for this key in this batch (false: none).
local function upsert(key, sua, value, ttl, tombkey, log, floor, metakey, held_tomb, held_current)
  local tomb = nil
  if tombkey ~= "" then
    local raw = held_tomb
    if raw == nil then raw = redis.call("GET", tombkey) end
    tomb = stamp(raw or nil)
    if tomb and swept(raw) and floor > tomb then
      tomb = nil
      redis.call("DEL", tombkey)
      changed[#changed + 1] = tombkey
    end
  end
  if tomb and tomb >= sua then
    return "0"
  end
  local current = held_current
  if current == nil then current = redis.call("GET", key) end
  -- metakey (write-back only): the full-sync state. An entry Redis lacks, older than a full sync
  -- recorded there that the writer never saw (newer than its floor), was not listed by that
  -- sync: writing it back would undo its sweep.
  if not current and metakey and metakey ~= "" then
    local recorded = stamp(redis.call("GET", metakey))
    if recorded ~= nil and recorded > sua and recorded > floor then
      return "0"
    end
  end
  if current and stamp(current) > sua then
    return "0"
  end
  if current == value then
    redis.call("PEXPIRE", key, ttl)
    if log == "1" then changed[#changed + 1] = key end
    return "2"
  end
  redis.call("SET", key, value, "PX", ttl)
  -- A register's newer entry outranks its tombstone from now on; a peer's tombstone stays,
  -- since it guards every other advertisement of that peer too.
  if tomb and not string.find(tombkey, ":ptomb:", 1, true) then
    redis.call("DEL", tombkey)
    changed[#changed + 1] = tombkey
  end
  changed[#changed + 1] = key
  return "1"
end

-- A bulk's upserts (U): their tombstones and current values read with two MGETs per slice instead
-- of two GETs per item. Distinct register ids have distinct keys, so what was read stays true for
-- the first occurrence of each id; a repeated id is read again.
local function upsert_all(op)
  local keyprefix, tombprefix, ttl, log, floor = op[2], op[3], op[4], op[5], tonumber(op[6])
  local seen = {}
  for first = 7, #op, 3 * 1000 do
    local last = math.min(first + 3 * 1000 - 1, #op)
    local keys, tombkeys = {}, {}
    for j = first, last, 3 do
      keys[#keys + 1] = keyprefix .. op[j]
      tombkeys[#tombkeys + 1] = tombprefix .. op[j]
    end
    local currents = redis.call("MGET", unpack(keys))
    local tombs = redis.call("MGET", unpack(tombkeys))
    for n = 1, #keys do
      local j = first + 3 * (n - 1)
      local id = op[j]
      local held_tomb, held_current = nil, nil
      if not seen[id] then
        seen[id] = true
        held_tomb, held_current = tombs[n], currents[n]
      end
      results[#results + 1] = upsert(keys[n], tonumber(op[j + 1]), op[j + 2], ttl, tombkeys[n], log, floor, nil,
        held_tomb, held_current)
    end
  end
end

for _, op in ipairs(ops) do
  local code = op[1]
  if code == "S" then
    results[#results + 1] = upsert(op[2], tonumber(op[3]), op[4], op[5], op[6], op[7], tonumber(op[8] or "-1"), op[9])
  elseif code == "U" then
    upsert_all(op)
  elseif code == "D" then
    local key, sua, tombkey, tombttl, kind = op[2], tonumber(op[3]), op[4], op[5], op[6] or "r"
    local result = "0"
    local current = nil
    -- A sweep's removal is only as true as its snapshot: once a newer full sync is recorded
    -- (op[7], the full-sync state), it neither removes nor leaves a tombstone.
    local outranked = false
    if kind == "s" and op[7] and op[7] ~= "" then
      local recorded = stamp(redis.call("GET", op[7]))
      outranked = recorded ~= nil and recorded > sua
    end
    if key ~= "" and not outranked then current = redis.call("GET", key) end
    if current and (sua < 0 or stamp(current) <= sua) then
      redis.call("DEL", key)
      changed[#changed + 1] = key
      result = "1"
    end
    if tombkey ~= "" and sua >= 0 and not outranked and not (current and stamp(current) > sua) then
      local tomb = stamp(redis.call("GET", tombkey))
      if not tomb or tomb < sua then
        redis.call("SET", tombkey, op[3] .. "|" .. kind, "PX", tombttl)
        changed[#changed + 1] = tombkey
      end
    end
    results[#results + 1] = result
  elseif code == "M" then
    local key, snapshot, value, ttl, force = op[2], tonumber(op[3]), op[4], op[5], op[6]
    local stored = stamp(redis.call("GET", key))
    if force ~= "1" and stored and stored > snapshot then
      results[#results + 1] = "0"
    else
      redis.call("SET", key, value, "PX", ttl)
      changed[#changed + 1] = key
      results[#results + 1] = "1"
    end
  elseif code == "T" then
    -- Not announced on the change stream: the full sync's recorded state tells other processes.
    local prefix, ttl = op[2], op[3]
    for j = 4, #op do
      results[#results + 1] = tostring(redis.call("PEXPIRE", prefix .. op[j], ttl))
    end
  elseif code == "A" then
    redis.call("APPEND", op[2], table.concat(op, " ", 4) .. " ")
    redis.call("PEXPIRE", op[2], op[3])
  elseif code == "H" then
    for j = 4, #op - 1, 2 do
      redis.call("HINCRBY", op[2], op[j], op[j + 1])
    end
    redis.call("PEXPIRE", op[2], op[3])
  elseif code == "X" then
    redis.call("DEL", unpack(op, 2))
  elseif code ~= "G" then
    return redis.error_reply("unknown opcode " .. tostring(code))
  end
end

local generation = tonumber(redis.call("GET", KEYS[1]) or "0")
local entry, previous = "", ""
if #changed > 0 then
  -- The entry this one follows: the writer takes its own entry as seen only right after its place.
  local last = redis.call("XREVRANGE", KEYS[2], "+", "-", "COUNT", 1)
  if #last > 0 then previous = last[1][1] end
  generation = redis.call("INCR", KEYS[1])
  entry = redis.call("XADD", KEYS[2], "MAXLEN", "~", "2000", "*", "g", generation, "k", table.concat(changed, " "))
end
if epoch then
  for k = 1, 3 do redis.call("PEXPIRE", KEYS[k], ARGV[2]) end
end
-- One character per result: cheaper to send and parse than thousands of integers. The stream entry
-- is "" when this batch changed nothing: the caller must not take the generation as its own then.
-- `previous` is the stream's last entry before this batch's ("" when there was none).
return {"ok", generation, table.concat(results), entry, previous}
