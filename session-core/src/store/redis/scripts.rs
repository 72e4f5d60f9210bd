//! The Lua scripts of the Redis store: each store call that must check
//! and write atomically is one script, so one command and one round trip.
//!
//! A session is one hash, `{prefix}sess:{<key hex>}`, with
//! - `_c`, `_e`, `_i`, `_p`: created at, expires at, idle timeout, cookie
//!   choice (`t`/`f`, absent for none);
//! - `f:<name>`: a field's bytes; `v:<name>`: its version, when it has one;
//! - `x:<name>`: its entry in index `<name>` (the tag, hex), mirrored by
//!   the set `{prefix}idx:<name>:<tag hex>` of session key hexes (on a
//!   cluster, a sorted set `{prefix}zidx:…`: see `cluster/mod.rs`);
//! - `_m`: on a cluster only, `<until> <new key hex>` while a regenerate
//!   moves the session to its new key: the hash is then dead to every
//!   script.
//!
//! The key's own expiry (`EXPIREAT`) follows `_e` an hour late, so Redis
//! drops dead sessions itself and cleanup (`delete_expired`) can still
//! count the ones it deletes; every script checks `_e` and `_c` against
//! the request's time, so a dead session is never read or written in that
//! hour. A regenerated session's previous
//! key is `{prefix}prev:{<old key hex>}` = `<until> <new key hex>`, expiring
//! at `<until>`; a rotated one's is `<until> <new key hex> r`, kept until
//! the session's `max_lifetime` ends (a replay of it is a stolen token).
//! The braces are hash tags: a session's hash and its previous-key marker
//! sit in one cluster slot.

/// Shared Lua helpers, prepended to every script that needs them.
const HELPERS: &str = r"
local function alive(k, now, after)
  local v = redis.call('HMGET', k, '_e', '_c', '_m')
  local e, c = tonumber(v[1]), tonumber(v[2])
  if e ~= nil and c ~= nil and not v[3] and e > now and c > after then return true, e, c end
  return false
end
local function moved(prev, now)
  local p = redis.call('GET', prev)
  if not p then return false end
  local u, to = string.match(p, '^(%d+) (%x+)')
  if u and tonumber(u) > now then return true, to end
  return false
end
local function unindex(k, hex, prefix)
  local h = redis.call('HGETALL', k)
  for i = 1, #h, 2 do
    if string.sub(h[i], 1, 2) == 'x:' then
      redis.call('SREM', prefix .. 'idx:' .. string.sub(h[i], 3) .. ':' .. h[i + 1], hex)
    end
  end
end
-- Keeps an index set at least until `deadline` (a session of it expires
-- an hour before): the set outlives no session of it by more than that.
local function hold(set, deadline)
  local left = redis.call('TTL', set)
  local now = tonumber(redis.call('TIME')[1])
  if left == -1 or now + left < deadline then redis.call('EXPIREAT', set, deadline) end
end
-- Holds every index set the session `k` is in until `deadline`.
local function hold_sets(k, prefix, deadline)
  local h = redis.call('HGETALL', k)
  for i = 1, #h, 2 do
    if string.sub(h[i], 1, 2) == 'x:' then
      hold(prefix .. 'idx:' .. string.sub(h[i], 3) .. ':' .. h[i + 1], deadline)
    end
  end
end
-- The expectations in ARGV from `i` (a count, then name and version
-- pairs, an empty version for absent), checked against hash `k`: the
-- versions to write and the next index, or false on a mismatch.
local function expectations(k, i)
  local expect = {}
  local n = tonumber(ARGV[i]); i = i + 1
  for _ = 1, n do
    local name, want = ARGV[i], ARGV[i + 1]
    i = i + 2
    local present = redis.call('HEXISTS', k, 'f:' .. name) == 1
    if want == '' then
      if present then return false end
      expect[name] = 1
    else
      if not present then return false end
      local v = tonumber(redis.call('HGET', k, 'v:' .. name) or '0')
      if v ~= tonumber(want) then return false end
      expect[name] = v + 1
    end
  end
  return expect, i
end
-- The expiry change of ARGV[8..11] (kind, expiry, idle, cookie choice)
-- applied to hash `k` whose expiry is `e`, capped at `cap`: the new expiry.
local function change_expiry(k, e, cap)
  if ARGV[8] == 'x' then
    e = math.min(math.max(e, tonumber(ARGV[9])), cap)
    redis.call('HSET', k, '_e', e)
  elseif ARGV[8] == 's' then
    e = math.min(tonumber(ARGV[9]), cap)
    redis.call('HSET', k, '_e', e, '_i', ARGV[10])
    if ARGV[11] == '' then redis.call('HDEL', k, '_p') else redis.call('HSET', k, '_p', ARGV[11]) end
  end
  return e
end
-- Every field of hash `k` deleted (its `_` metadata kept).
local function clear_fields(k)
  for _, f in ipairs(redis.call('HKEYS', k)) do
    if string.sub(f, 1, 1) ~= '_' then redis.call('HDEL', k, f) end
  end
end
-- The upserts, then the removals, in ARGV from `i` (each a count, then
-- its items) written to hash `k`, with the versions `expect` gives: the
-- next index.
local function write_fields(k, i, expect)
  local n = tonumber(ARGV[i]); i = i + 1
  for _ = 1, n do
    local name = ARGV[i]
    redis.call('HSET', k, 'f:' .. name, ARGV[i + 1])
    if expect[name] then redis.call('HSET', k, 'v:' .. name, expect[name]) end
    i = i + 2
  end
  n = tonumber(ARGV[i]); i = i + 1
  for _ = 1, n do
    redis.call('HDEL', k, 'f:' .. ARGV[i], 'v:' .. ARGV[i])
    i = i + 1
  end
  return i
end
local function kill(k, hex, prefix)
  unindex(k, hex, prefix)
  return redis.call('DEL', k)
end
";

/// KEYS: session. ARGV: now, created after, then the skipped field names.
/// Returns the live session's hash pairs without skipped fields, or 0.
pub(super) const LOAD: &str = r"
local now, after = tonumber(ARGV[1]), tonumber(ARGV[2])
local h = redis.call('HGETALL', KEYS[1])
if #h == 0 then return 0 end
local m = {}
for i = 1, #h, 2 do m[h[i]] = h[i + 1] end
local e, c = tonumber(m['_e']), tonumber(m['_c'])
if e == nil or c == nil or m['_m'] or e <= now or c <= after then return 0 end
local skip = {}
for i = 3, #ARGV do
  skip['f:' .. ARGV[i]] = true
  skip['v:' .. ARGV[i]] = true
end
local out = {}
for i = 1, #h, 2 do
  if not skip[h[i]] then
    out[#out + 1] = h[i]
    out[#out + 1] = h[i + 1]
  end
end
return out
";

/// KEYS: session. ARGV: now, created after, then the names of the fields
/// to load. The same answer as `LOAD`, with only those fields: one
/// `HMGET`, so the server reads and sends only them.
pub(super) const LOAD_ONLY: &str = r"
local now, after = tonumber(ARGV[1]), tonumber(ARGV[2])
local names = {'_e', '_c', '_m', '_i', '_p'}
for i = 3, #ARGV do
  names[#names + 1] = 'f:' .. ARGV[i]
  names[#names + 1] = 'v:' .. ARGV[i]
end
local vals = redis.call('HMGET', KEYS[1], unpack(names))
local e, c = tonumber(vals[1]), tonumber(vals[2])
if e == nil or c == nil or vals[3] or e <= now or c <= after then return 0 end
local out = {}
for i = 1, #names do
  if vals[i] then
    out[#out + 1] = names[i]
    out[#out + 1] = vals[i]
  end
end
return out
";

/// KEYS: session. ARGV: created at, expires at, idle timeout, cookie
/// choice (`t`, `f` or empty), then name/bytes pairs. Returns 0 when the
/// key is taken, else 1.
pub(super) const CREATE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], '_c', ARGV[1], '_e', ARGV[2], '_i', ARGV[3])
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], '_p', ARGV[4]) end
for i = 5, #ARGV, 2 do
  redis.call('HSET', KEYS[1], 'f:' .. ARGV[i], ARGV[i + 1])
end
redis.call('EXPIREAT', KEYS[1], tonumber(ARGV[2]) + 3600)
return 1
";

/// KEYS: session, its previous-key marker, the session's key after a
/// rename (the same key without one).
/// ARGV: now, created after, max lifetime, key prefix, key hex, new key
/// hex (empty: no rename), previous until, expiry kind (`` / `x` extend /
/// `s` set), expiry, idle timeout, cookie choice (`t`/`f`/empty), clear
/// (`1`/`0`), then four counted lists: expectations (name, version or
/// empty for absent), upserts (name, bytes), removals (name), index
/// entries (name, tag hex or empty to remove); last, `r` when the rename
/// is a rotation.
/// Returns 1 saved, 0 gone, 2 moved, 3 conflict.
pub(super) const SAVE: &str = r"
local now, after, maxlife = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local prefix, hex, tohex = ARGV[4], ARGV[5], ARGV[6]
local key = KEYS[1]
local ok, e, c = alive(key, now, after)
if not ok then
  if moved(KEYS[2], now) then return 2 end
  return 0
end
-- The session's index sets must live as long as it: held again when it
-- moves, its expiry changes or it gets an entry.
local sets_change = tohex ~= '' or ARGV[8] ~= ''
local expect, i = expectations(key, 13)
if not expect then return 3 end
if tohex ~= '' then
  if redis.call('EXISTS', KEYS[3]) == 1 then
    return redis.error_reply('the new session key is taken')
  end
  unindex(key, hex, prefix)
  redis.call('RENAME', key, KEYS[3])
  if ARGV[#ARGV] == 'r' then
    redis.call('SET', KEYS[2], ARGV[7] .. ' ' .. tohex .. ' r', 'EXAT', math.max(c + maxlife, tonumber(ARGV[7])))
  else
    redis.call('SET', KEYS[2], ARGV[7] .. ' ' .. tohex, 'EXAT', ARGV[7])
  end
  key, hex = KEYS[3], tohex
  local h = redis.call('HGETALL', key)
  for j = 1, #h, 2 do
    if string.sub(h[j], 1, 2) == 'x:' then
      redis.call('SADD', prefix .. 'idx:' .. string.sub(h[j], 3) .. ':' .. h[j + 1], hex)
    end
  end
end
e = change_expiry(key, e, c + maxlife)
if ARGV[12] == '1' then
  unindex(key, hex, prefix)
  clear_fields(key)
end
i = write_fields(key, i, expect)
local n = tonumber(ARGV[i]); i = i + 1
if n > 0 then sets_change = true end
for _ = 1, n do
  local name, tag = ARGV[i], ARGV[i + 1]
  i = i + 2
  local old = redis.call('HGET', key, 'x:' .. name)
  if old then redis.call('SREM', prefix .. 'idx:' .. name .. ':' .. old, hex) end
  if tag == '' then
    redis.call('HDEL', key, 'x:' .. name)
  else
    redis.call('HSET', key, 'x:' .. name, tag)
    redis.call('SADD', prefix .. 'idx:' .. name .. ':' .. tag, hex)
  end
end
redis.call('EXPIREAT', key, e + 3600)
if sets_change then hold_sets(key, prefix, e + 3600) end
return 1
";

/// KEYS: session, its previous-key marker. ARGV: now, key prefix, key hex,
/// hops. Deletes the session, or the one the key named before a
/// regenerate within its grace, following at most `hops` regenerates in a
/// row (each previous key's marker names the key that replaced it).
pub(super) const DESTROY: &str = r"
local now, prefix, hex, hops = tonumber(ARGV[1]), ARGV[2], ARGV[3], tonumber(ARGV[4])
local gone = kill(KEYS[1], hex, prefix)
local prev = KEYS[2]
while gone == 0 and hops > 0 do
  local m, to = moved(prev, now)
  if not m then break end
  gone = kill(prefix .. 'sess:{' .. to .. '}', to, prefix)
  prev = prefix .. 'prev:{' .. to .. '}'
  hops = hops - 1
end
return gone
";

/// KEYS: a key's previous-key marker. ARGV: now, key prefix, hops. What
/// the replaced key names now: `{current key hex, within grace (1/0),
/// rotated (1/0)}`, following the later renames (at most `hops`); nil
/// when it names no live session, or is a regenerated key past its grace.
pub(super) const PREVIOUS: &str = r"
local now, prefix, hops = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
local function parse(marker)
  if not marker then return nil end
  local u, to, r = string.match(marker, '^(%d+) (%x+)( ?r?)$')
  if not u then return nil end
  return tonumber(u) > now, to, r == ' r'
end
local within, cur, rotated = parse(redis.call('GET', KEYS[1]))
if cur == nil or not (within or rotated) then return nil end
for _ = 1, hops do
  local k = prefix .. 'sess:{' .. cur .. '}'
  if alive(k, now, 0) then return {cur, within and 1 or 0, rotated and 1 or 0} end
  local w, to, r = parse(redis.call('GET', prefix .. 'prev:{' .. cur .. '}'))
  if to == nil or not (w or r) then return nil end
  cur = to
end
return nil
";

/// ARGV: now, created after, key prefix, index name, except hex (or
/// empty), mode (`find` / `destroy`), tag hex, `SSCAN` cursor. One page
/// of one index set, so one call's work is bounded however many sessions
/// a user has (the caller walks the pages): `find` returns the key hexes
/// of its live sessions, `destroy` deletes them but `except` and returns
/// the key hexes of those it deleted; members whose session is gone are
/// dropped. Returns `{next cursor, hexes}`.
pub(super) const INDEX: &str = r"
local now, after, prefix, name, except, mode, tag = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local set = prefix .. 'idx:' .. name .. ':' .. tag
local page = redis.call('SSCAN', set, ARGV[8], 'COUNT', 200)
local out = {}
for _, hex in ipairs(page[2]) do
  local k = prefix .. 'sess:{' .. hex .. '}'
  if redis.call('HGET', k, 'x:' .. name) ~= tag then
    redis.call('SREM', set, hex)
  elseif mode == 'find' then
    if alive(k, now, after) then out[#out + 1] = hex end
  elseif hex ~= except and kill(k, hex, prefix) == 1 then
    out[#out + 1] = hex
  end
end
return {page[1], out}
";

/// KEYS: session. ARGV: key prefix, key hex, index name, then tags (hex).
/// Deletes the session if its entry in the index is one of the tags;
/// returns 1 when it did.
pub(super) const DESTROY_ONE: &str = r"
local prefix, hex, name = ARGV[1], ARGV[2], ARGV[3]
local entry = redis.call('HGET', KEYS[1], 'x:' .. name)
if not entry then return 0 end
for i = 4, #ARGV do
  if entry == ARGV[i] then return kill(KEYS[1], hex, prefix) end
end
return 0
";

/// KEYS: sessions (a SCAN page). ARGV: now, created after, key prefix,
/// batch. Examines the keys in order until `batch` of them were dead and
/// deleted; returns how many keys it examined, for each session it
/// deleted its key hex and its field pairs (`f:<name>`, bytes), and how
/// many of those it examined are alive: the script that deletes is the
/// one that reports, so two cleanups never both report one session.
pub(super) const PURGE: &str = r"
local now, after, prefix, batch = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local out, examined, live = {}, 0, 0
for _, k in ipairs(KEYS) do
  if #out >= batch then break end
  examined = examined + 1
  local exists = redis.call('EXISTS', k) == 1
  if exists and alive(k, now, after) then
    live = live + 1
  elseif exists then
    local hex = string.match(k, '{(%x+)}$') or ''
    local fields = {}
    local h = redis.call('HGETALL', k)
    for i = 1, #h, 2 do
      if string.sub(h[i], 1, 2) == 'f:' then
        fields[#fields + 1] = h[i]
        fields[#fields + 1] = h[i + 1]
      end
    end
    if kill(k, hex, prefix) == 1 then out[#out + 1] = {hex, fields} end
  end
end
return {examined, out, live}
";

/// The helpers and a script's body, as one script.
pub(super) fn with_helpers(body: &str) -> String {
    format!("{HELPERS}{body}")
}
