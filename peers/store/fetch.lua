-- Reads pool entries for the store's mirror in bulk: value and expiry (ms since the epoch) of each key.
-- ARGV[1] "keys": ARGV[2] is a JSON array of keys.
-- ARGV[1] "scan": ARGV[2] cursor, ARGV[3] match pattern, ARGV[4] count, ARGV[5]... the prefixes of the
--         pool's key spaces; only string keys under one of them (advertisements, tombstones, full-sync
--         state) are returned: others under the node's prefix (its cache's, say) are not the pool's.
-- Returns one JSON document {"k": keys, "v": values ("" when missing), "t": expiries in ms, -2 when missing}: one
-- string is far cheaper for the client to parse than a reply of hundreds of thousands of
-- elements. "scan" returns {next cursor, that document}, so the next page can be asked for
-- before this one is parsed.
local keys
local cursor = "0"
if ARGV[1] == "scan" then
  local page = redis.call("SCAN", ARGV[2], "MATCH", ARGV[3], "COUNT", ARGV[4], "TYPE", "string")
  cursor, keys = page[1], {}
  for _, key in ipairs(page[2]) do
    for i = 5, #ARGV do
      if string.sub(key, 1, #ARGV[i]) == ARGV[i] then
        keys[#keys + 1] = key
        break
      end
    end
  end
else
  keys = cjson.decode(ARGV[2])
end
local values, ttls = {}, {}
for i, key in ipairs(keys) do
  values[i] = redis.call("GET", key) or ""
  ttls[i] = redis.call("PEXPIRETIME", key)
end
local page = cjson.encode({k = keys, v = values, t = ttls})
if ARGV[1] == "scan" then
  return {cursor, page}
end
return page
