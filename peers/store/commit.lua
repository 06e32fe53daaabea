-- Applies one batch of conditional writes to the advertisement pool atomically, and appends what it
-- changed to the change log that every process of the node follows.
--
-- The rule this script enforces is the conditional write: a write older than what a key holds
-- (its sourceUpdatedAt, the number before the "|" of a value) or than a live tombstone changes
-- nothing, so batches from several processes -- and journal replays after an outage -- converge
-- whatever order they arrive in. What a write means (a push, a sweep, a peer's set) is decided in
-- Python (decide.py); this script only refuses what is older.
--
-- KEYS[1] the change log (a stream)
-- ARGV[1] the writer's clock in ms: every TTL counts from it (PXAT), so what a batch writes expires at
--         one number, the same in Redis, in the writer's mirror and in every process that follows the log
-- ARGV[2] the log's TTL in ms
-- ARGV[3] the operations as one JSON array; numbers travel as strings. Each operation is an array:
--   U keyprefix tombprefix ttl_ms floor (id sua value)...
--                                     -> one result per id: 0 refused (older, or tombstoned), 1 written,
--                                        2 equal (TTL refreshed); a sweep's tombstone ("<stamp>|s") older
--                                        than floor yields (a newer full sync listed the register)
--   S key sua value ttl_ms tombkey floor metakey
--                                     -> as U, for one key (write-back and peers' sets); metakey (write-back):
--                                        an entry Redis lacks, older than a full sync recorded there that the
--                                        writer never saw, was swept by it and is not written back
--   D key sua tombkey tomb_ttl_ms kind [metakey]
--                                     -> 0 nothing removed, 1 removed (sua -1: unconditional, no tombstone;
--                                        key "" only sets the tombstone; kind "r" removal, "s" sweep: a sweep
--                                        does nothing once metakey records a newer snapshot)
--   M key snapshot value ttl_ms force -> 0 refused (a newer snapshot is stored), 1 written (force: always)
--   G key snapshot                    -> aborts the whole batch with "stale" if a newer snapshot is stored
--   T keyprefix ttl_ms id...          -> refreshes the TTL of each keyprefix..id: one result per id, 1 refreshed,
--                                        0 missing (the source sends it in full; logged as gone)
--   A key ttl_ms member...            -> appends members to a text of space-separated members (full-sync marks)
--   H key ttl_ms field n...           -> adds each n to a field of a hash (a full sync's counts so far)
--   X key...                          -> deletes bookkeeping keys
--
-- Returns {"ok", results, entry, previous, states, refreshed, refreshed_until} or {"stale", stored}:
--   results   one character per result;
--   entry     the log entry this batch appended ("" when it changed nothing), previous the entry before it;
--   states    key, value ("" when gone), expiry in ms, for every key the batch changed: what a process
--             following the log reads back for that entry;
--   refreshed the local ids whose TTL a T refreshed (space-separated), all until refreshed_until (ms).

local now = tonumber(ARGV[1])

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
local changed = {}   -- keys in the order they first changed
local values = {}    -- key -> its value now ("" when gone)
local expiries = {}  -- key -> its expiry in ms (0 when gone)
local refreshed = {}
local refreshed_until = 0

local function note(key, value, at)
  if not values[key] then changed[#changed + 1] = key end
  values[key], expiries[key] = value, at
end

local function set(key, value, ttl, same)
  local at = now + tonumber(ttl)
  if same then
    redis.call("PEXPIREAT", key, at)  -- the value held already: only its TTL starts again
  else
    redis.call("SET", key, value, "PXAT", at)
  end
  note(key, value, at)
end

local function del(key)
  redis.call("DEL", key)
  note(key, "", 0)
end

-- A stale sweep must remove nothing, so the guard runs before any write of its batch.
for _, op in ipairs(ops) do
  if op[1] == "G" then
    local stored = stamp(redis.call("GET", op[2]))
    if stored and stored > tonumber(op[3]) then
      return {"stale", tostring(stored)}
    end
  end
end

-- One conditional upsert; returns its result character. held_tomb/held_current: what an MGET of the
-- batch already read for this key (nil: read it here).
local function upsert(key, sua, value, ttl, tombkey, floor, metakey, held_tomb, held_current)
  local tomb = nil
  if tombkey ~= "" then
    local raw = held_tomb
    if raw == nil then raw = redis.call("GET", tombkey) end
    tomb = stamp(raw or nil)
    if tomb and swept(raw) and floor > tomb then
      tomb = nil
      del(tombkey)
    end
  end
  if tomb and tomb >= sua then
    return "0"
  end
  local current = held_current
  if current == nil then current = redis.call("GET", key) end
  if not current and metakey and metakey ~= "" then
    local recorded = stamp(redis.call("GET", metakey))
    if recorded ~= nil and recorded > sua and recorded > floor then
      return "0"
    end
  end
  if current and stamp(current) > sua then
    return "0"
  end
  local same = current == value
  set(key, value, ttl, same)
  local result = "1"
  if same then result = "2" end
  -- A register's newer entry outranks its tombstone; a peer's tombstone stays (it guards every other
  -- advertisement of that peer too).
  if tomb and not string.find(tombkey, ":ptomb:", 1, true) then
    del(tombkey)
  end
  return result
end

-- A bulk's upserts: their tombstones and current values read with two MGETs per slice.
local function upsert_all(op)
  local keyprefix, tombprefix, ttl, floor = op[2], op[3], op[4], tonumber(op[5])
  local seen = {}
  for first = 6, #op, 3 * 1000 do
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
      if not seen[id] then  -- a repeated id is read again
        seen[id] = true
        held_tomb, held_current = tombs[n], currents[n]
      end
      results[#results + 1] = upsert(keys[n], tonumber(op[j + 1]), op[j + 2], ttl, tombkeys[n], floor, nil,
        held_tomb, held_current)
    end
  end
end

for _, op in ipairs(ops) do
  local code = op[1]
  if code == "U" then
    upsert_all(op)
  elseif code == "S" then
    results[#results + 1] = upsert(op[2], tonumber(op[3]), op[4], op[5], op[6], tonumber(op[7]), op[8])
  elseif code == "D" then
    local key, sua, tombkey, tombttl, kind = op[2], tonumber(op[3]), op[4], op[5], op[6] or "r"
    local result = "0"
    local current = nil
    -- A sweep's removal is only as true as its snapshot: once a newer full sync is recorded, it
    -- neither removes nor leaves a tombstone.
    local outranked = false
    if kind == "s" and op[7] and op[7] ~= "" then
      local recorded = stamp(redis.call("GET", op[7]))
      outranked = recorded ~= nil and recorded > sua
    end
    if key ~= "" and not outranked then current = redis.call("GET", key) end
    if current and (sua < 0 or stamp(current) <= sua) then
      del(key)
      result = "1"
    end
    if tombkey ~= "" and sua >= 0 and not outranked and not (current and stamp(current) > sua) then
      local tomb = stamp(redis.call("GET", tombkey))
      if not tomb or tomb < sua then
        set(tombkey, op[3] .. "|" .. kind, tombttl)
      end
    end
    results[#results + 1] = result
  elseif code == "M" then
    local key, snapshot, value, ttl, force = op[2], tonumber(op[3]), op[4], op[5], op[6]
    local stored = stamp(redis.call("GET", key))
    if force ~= "1" and stored and stored > snapshot then
      results[#results + 1] = "0"
    else
      set(key, value, ttl)
      results[#results + 1] = "1"
    end
  elseif code == "T" then
    local prefix = op[2]
    refreshed_until = now + tonumber(op[3])
    for j = 4, #op do
      local key = prefix .. op[j]
      local done = redis.call("PEXPIREAT", key, refreshed_until)
      results[#results + 1] = tostring(done)
      if done == 1 then
        refreshed[#refreshed + 1] = op[j]
      elseif not values[key] then  -- gone behind the processes' backs: the log tells them
        note(key, "", 0)
      end
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

local states = {}
for _, key in ipairs(changed) do
  states[#states + 1] = key
  states[#states + 1] = values[key]
  states[#states + 1] = expiries[key]
end
local entry, previous = "", ""
if #changed > 0 or #refreshed > 0 then
  -- Each entry names the one before it: a process that finds its place missing from the chain knows
  -- the log (and the pool) went back or was lost, not merely that it missed entries.
  local last = redis.call("XREVRANGE", KEYS[1], "+", "-", "COUNT", 1)
  if #last > 0 then previous = last[1][1] end
  local fields = {"p", previous, "k", table.concat(changed, " ")}
  if #refreshed > 0 then
    fields[#fields + 1] = "r"
    fields[#fields + 1] = table.concat(refreshed, " ")
    fields[#fields + 1] = "x"
    fields[#fields + 1] = tostring(refreshed_until)
  end
  entry = redis.call("XADD", KEYS[1], "MAXLEN", "~", "2000", "*", unpack(fields))
  redis.call("PEXPIRE", KEYS[1], ARGV[2])
end
return {"ok", table.concat(results), entry, previous, states, table.concat(refreshed, " "), tostring(refreshed_until)}
