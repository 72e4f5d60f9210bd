//! The Lua scripts of the Redis store on a cluster: each touches the keys
//! of one hash slot (the cleanup's `PURGE`, one node's keys), so each step
//! of the protocol in `mod.rs` is atomic on its node.

/// KEYS: session, its previous-key marker. ARGV: as the one-server `SAVE`.
/// Checks and applies the request's changes to the session's own hash;
/// index sets are left to the caller (entered before, left after). For a
/// regenerate, marks the hash as moving (`_m`) and returns it whole.
/// Returns `{1, sets to leave, hash pairs (regenerate) or {}, expiry}`, or
/// `{0}` gone, `{2}` moved, `{3}` conflict.
pub(super) const SAVE: &str = r"
local now, after, maxlife = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local prefix, tohex = ARGV[4], ARGV[6]
local key = KEYS[1]
local ok, e, c = alive(key, now, after)
if not ok then
  if redis.call('HEXISTS', key, '_m') == 1 or moved(KEYS[2], now) then return {2} end
  return {0}
end
local function sets_of()
  local out = {}
  local h = redis.call('HGETALL', key)
  for i = 1, #h, 2 do
    if string.sub(h[i], 1, 2) == 'x:' then
      out[prefix .. 'zidx:' .. string.sub(h[i], 3) .. ':' .. h[i + 1]] = true
    end
  end
  return out
end
local before = sets_of()
local expect, i = expectations(key, 13)
if not expect then return {3} end
e = change_expiry(key, e, c + maxlife)
if ARGV[12] == '1' then clear_fields(key) end
i = write_fields(key, i, expect)
local n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do
  local name, tag = ARGV[i], ARGV[i + 1]
  i = i + 2
  if tag == '' then
    redis.call('HDEL', key, 'x:' .. name)
  else
    redis.call('HSET', key, 'x:' .. name, tag)
  end
end
local leave = {}
if tohex ~= '' then
  for s in pairs(before) do leave[#leave + 1] = s end
  redis.call('HSET', key, '_m', ARGV[7] .. ' ' .. tohex)
  local content = redis.call('HGETALL', key)
  redis.call('EXPIREAT', key, math.max(tonumber(ARGV[7]), now + 60))
  return {1, leave, content, e}
end
local kept = sets_of()
for s in pairs(before) do
  if not kept[s] then leave[#leave + 1] = s end
end
redis.call('EXPIREAT', key, e + 3600)
return {1, leave, {}, e}
";

/// KEYS: session, its previous-key marker. Returns what says where the
/// key went: the moving hash's `_m` while a regenerate is under way, else
/// the marker (`<until> <new key hex>`), or nil.
pub(super) const PREVIOUS: &str = r"
return redis.call('HGET', KEYS[1], '_m') or redis.call('GET', KEYS[2])
";

/// KEYS: an index set. ARGV: member, deadline. Adds the member, scored
/// with the server's time, and keeps the set until at least `deadline`.
pub(super) const ENTER: &str = r"
redis.call('ZADD', KEYS[1], tonumber(redis.call('TIME')[1]), ARGV[1])
hold(KEYS[1], tonumber(ARGV[2]))
return 1
";

/// KEYS: the new session key. ARGV: expiry, then the hash's pairs.
/// Writes the regenerated session whole (step 3).
pub(super) const MOVE_IN: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.error_reply('the new session key is taken')
end
for i = 2, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('EXPIREAT', KEYS[1], tonumber(ARGV[1]) + 3600)
return 1
";

/// KEYS: the old session key, its previous-key marker. ARGV: now, until,
/// new key hex. Replaces the moving hash by the marker (step 4); 0 when
/// the hash is no longer there (a destroy took it).
pub(super) const FINISH: &str = r"
local m = redis.call('HGET', KEYS[1], '_m')
if not m or string.match(m, ' (%x+)$') ~= ARGV[3] then return 0 end
redis.call('DEL', KEYS[1])
if tonumber(ARGV[2]) > tonumber(ARGV[1]) then
  redis.call('SET', KEYS[2], ARGV[2] .. ' ' .. ARGV[3], 'EXAT', ARGV[2])
end
return 1
";

/// KEYS: session, its previous-key marker. ARGV: now, key prefix.
/// Deletes the session's hash. Returns `{1, '', its sets}` when that ended
/// the session; `{0, new key hex, sets}` when the key was regenerated
/// within its grace (the caller follows); `{0, '', {}}` when nothing was
/// there.
pub(super) const DESTROY: &str = r"
local now, prefix = tonumber(ARGV[1]), ARGV[2]
local sets = {}
local h = redis.call('HGETALL', KEYS[1])
local m = nil
for i = 1, #h, 2 do
  if string.sub(h[i], 1, 2) == 'x:' then
    sets[#sets + 1] = prefix .. 'zidx:' .. string.sub(h[i], 3) .. ':' .. h[i + 1]
  elseif h[i] == '_m' then
    m = h[i + 1]
  end
end
if m then
  redis.call('DEL', KEYS[1])
  local u, to = string.match(m, '^(%d+) (%x+)$')
  if u and tonumber(u) > now then return {0, to, sets} end
  return {0, '', sets}
end
if redis.call('DEL', KEYS[1]) == 1 then return {1, '', sets} end
local ok, to = moved(KEYS[2], now)
if ok then return {0, to, {}} end
return {0, '', {}}
";

/// KEYS: a session named by an index set. ARGV: now, created after, key
/// prefix, index name, tag hex, mode (`find` / `destroy`), kept (`1`: the
/// session a destroy spares). Returns `{verdict, sets}`: `live` (find),
/// `killed` (destroy; with the session's sets), `stale` (the session does
/// not name this set, or is a moving hash), `dead` or `kept`.
pub(super) const MEMBER: &str = r"
local k = KEYS[1]
local now, after, prefix, name, tag, mode = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[5], ARGV[6]
if redis.call('HGET', k, 'x:' .. name) ~= tag then return {'stale', {}} end
if redis.call('HEXISTS', k, '_m') == 1 then
  if mode == 'destroy' then redis.call('DEL', k) end
  return {'stale', {}}
end
if mode == 'find' then
  if alive(k, now, after) then return {'live', {}} end
  return {'dead', {}}
end
if ARGV[7] == '1' then return {'kept', {}} end
local sets = {}
local h = redis.call('HGETALL', k)
for i = 1, #h, 2 do
  if string.sub(h[i], 1, 2) == 'x:' then
    sets[#sets + 1] = prefix .. 'zidx:' .. string.sub(h[i], 3) .. ':' .. h[i + 1]
  end
end
redis.call('DEL', k)
return {'killed', sets}
";

/// KEYS: an index set. ARGV: age, then members found stale. Drops each
/// one added more than `age` seconds ago: a younger one may be waiting for
/// its session's write.
pub(super) const PRUNE: &str = r"
local limit = tonumber(redis.call('TIME')[1]) - tonumber(ARGV[1])
local n = 0
for i = 2, #ARGV do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if score and tonumber(score) < limit then
    n = n + redis.call('ZREM', KEYS[1], ARGV[i])
  end
end
return n
";

/// KEYS: the first session key of a page of one node's `SCAN`. ARGV: now,
/// created after, key prefix, batch, then the page's other keys (on the
/// same node, in other slots: hence `allow-cross-slot-keys`). As the
/// one-server `PURGE`, but leaves index sets to the walks that drop stale
/// members, and leaves a moving hash (a regenerate under way, or one cut
/// short) to its own expiry: deleting it would end the session the
/// regenerate is moving. A key the node no longer serves is skipped.
pub(super) const PURGE: &str = r"
local now, after, prefix, batch = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local keys = {KEYS[1]}
for i = 5, #ARGV do keys[#keys + 1] = ARGV[i] end
local out, examined, live = {}, 0, 0
for _, k in ipairs(keys) do
  if #out >= batch then break end
  examined = examined + 1
  local h = redis.pcall('HGETALL', k)
  local found = type(h) == 'table' and not h.err and #h > 0
  if found and alive(k, now, after) then
    live = live + 1
  elseif found then
    local hex = string.match(k, '{(%x+)}$') or ''
    local fields, moving = {}, false
    for i = 1, #h, 2 do
      if string.sub(h[i], 1, 2) == 'f:' then
        fields[#fields + 1] = h[i]
        fields[#fields + 1] = h[i + 1]
      elseif h[i] == '_m' then
        moving = true
      end
    end
    if not moving and redis.call('DEL', k) == 1 then out[#out + 1] = {hex, fields} end
  end
end
return {examined, out, live}
";
