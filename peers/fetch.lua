-- Reads many keys at once for the store's mirror: value and remaining TTL of each.
-- ARGV[1] a JSON array of keys. Returns one JSON document {"v": [...], "t": [...]}
-- ("" for a missing key): one string is far cheaper for the client to parse than
-- hundreds of thousands of reply elements.
local keys = cjson.decode(ARGV[1])
local values, ttls = {}, {}
for i, key in ipairs(keys) do
  values[i] = redis.call("GET", key) or ""
  ttls[i] = redis.call("PTTL", key)
end
return cjson.encode({v = values, t = ttls})
