//! The Redis store (feature `redis`): one hash per session, written field
//! by field.
//!
//! Every call that checks and writes is one Lua script, so one command and
//! one round trip, atomic on the server: a save writes only the changed
//! fields (`HSET`/`HDEL`) and only if the session is still alive (a write
//! to a destroyed or expired session recreates nothing: a plain `HSET`
//! after a `DEL` would bring the hash back), with every versioned field's
//! expectation checked first. A load is one script (`HGETALL` of the live
//! session, the deferred fields left out); a deferred field is one `HMGET`; destroy is one
//! script (`DEL`). Idle and absolute expiry are checked in every script
//! against the request's time, and the key's own `EXPIREAT` follows the
//! session's expiry, so Redis drops dead sessions itself. The layout is in
//! `scripts.rs`.
//!
//! Keys put the session's key in a hash tag (`sess:{<hex>}`), so a
//! session's keys share one cluster slot. A regenerate (`RENAME` to the new
//! key), "log out everywhere" and cleanup touch keys of other slots: on a
//! Redis Cluster they need all keys on one node; this store is tested on a
//! single server.
//!
//! ```no_run
//! # async fn run() -> session_core::Result<()> {
//! use session_core::{Config, store::redis::RedisStore};
//!
//! let store = RedisStore::connect("redis://127.0.0.1:6379", &Config::default()).await?;
//! # Ok(()) }
//! ```

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::ConnectionManager;
use redis::{Script, Value};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::store::{
    Changes, Counters, Ended, ExpiryUpdate, IndexTag, NewSession, Record, Saved, SessionIndexes,
    SessionStore, StoreStats, Timestamp, Validity,
};
use crate::token::StoreKey;

mod scripts;

/// The session store on Redis.
pub struct RedisStore {
    conn: ConnectionManager,
    prefix: String,
    timeout: Option<Duration>,
    counters: Counters,
    load: Script,
    load_only: Script,
    create: Script,
    save: Script,
    destroy: Script,
    index: Script,
    purge: Script,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects to `url` (`redis://host:port/db`, `rediss://` for TLS if
    /// the `redis` crate was built with it), checks the server answers,
    /// and keeps one multiplexed connection that reconnects by itself.
    /// Keys start with `table_prefix`.
    ///
    /// # Errors
    /// [`Error::Config`] for a bad URL or prefix; [`Error::Unavailable`]
    /// when the server cannot be reached within `connect_timeout`.
    pub async fn connect(url: &str, config: &Config) -> Result<Self> {
        crate::config::validate_prefix(&config.table_prefix)?;
        let client = redis::Client::open(url)
            .map_err(|e| Error::config(format!("invalid Redis `url`: {e}")))?;
        let wait = Duration::from_secs(config.connect_timeout.max(1));
        let conn = tokio::time::timeout(wait, ConnectionManager::new(client))
            .await
            .map_err(|_| {
                Error::Unavailable(
                    format!("Redis did not answer within {} s", wait.as_secs()).into(),
                )
            })?
            .map_err(unavailable)?;
        let store = RedisStore {
            conn,
            prefix: config.table_prefix.clone(),
            timeout: config.statement_timeout(),
            counters: Counters::default(),
            load: Script::new(scripts::LOAD),
            load_only: Script::new(scripts::LOAD_ONLY),
            create: Script::new(scripts::CREATE),
            save: Script::new(&scripts::with_helpers(scripts::SAVE)),
            destroy: Script::new(&scripts::with_helpers(scripts::DESTROY)),
            index: Script::new(&scripts::with_helpers(scripts::INDEX)),
            purge: Script::new(&scripts::with_helpers(scripts::PURGE)),
        };
        let pong: String = store.run(&redis::cmd("PING")).await?;
        debug_assert_eq!(pong, "PONG");
        Ok(store)
    }

    /// The key prefix (`table_prefix`).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Deletes every key of this store's prefix. For test suites that use
    /// a prefix per test; never called by the library.
    #[doc(hidden)]
    pub async fn drop_keys(&self) -> Result<()> {
        let mut cursor = 0u64;
        loop {
            let (next, keys) = self.scan(cursor, &format!("{}*", self.prefix)).await?;
            if !keys.is_empty() {
                let _: i64 = self.run(redis::cmd("DEL").arg(&keys)).await?;
            }
            if next == 0 {
                return Ok(());
            }
            cursor = next;
        }
    }

    /// One `SCAN` step over the keys matching `pattern`: the next cursor
    /// (0 at the end) and the keys.
    async fn scan(&self, cursor: u64, pattern: &str) -> Result<(u64, Vec<String>)> {
        self.run(
            redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(1000),
        )
        .await
    }

    fn session_key(&self, key: &StoreKey) -> String {
        format!("{}sess:{{{}}}", self.prefix, hex(key.as_bytes()))
    }

    fn previous_key(&self, key: &StoreKey) -> String {
        format!("{}prev:{{{}}}", self.prefix, hex(key.as_bytes()))
    }

    /// Runs one command (one round trip), within the statement timeout.
    async fn run<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T> {
        self.counters.statement();
        let mut conn = self.conn.clone();
        self.bounded(cmd.query_async(&mut conn)).await
    }

    /// Runs a load script (`LOAD` or `LOAD_ONLY`) with its field names.
    async fn load_by(
        &self,
        script: &Script,
        key: &StoreKey,
        names: &[&str],
        at: Validity,
    ) -> Result<Option<Record>> {
        let mut call = script.key(self.session_key(key));
        call.arg(at.now).arg(at.created_after);
        for name in names {
            call.arg(*name);
        }
        match self.eval::<Value>(&call).await? {
            Value::Array(pairs) => {
                let record = record(&pairs)?;
                self.counters.loaded(record.fields.len());
                Ok(Some(record))
            }
            _ => Ok(None),
        }
    }

    /// Runs one script (one round trip once the server has it cached).
    async fn eval<T: redis::FromRedisValue>(
        &self,
        call: &redis::ScriptInvocation<'_>,
    ) -> Result<T> {
        self.counters.statement();
        let mut conn = self.conn.clone();
        self.bounded(call.invoke_async(&mut conn)).await
    }

    async fn bounded<T>(
        &self,
        call: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T> {
        super::within(self.timeout, call).await?.map_err(map_error)
    }
}

/// Lowercase hex of bytes.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unavailable(error: redis::RedisError) -> Error {
    Error::Unavailable(Box::new(error))
}

fn map_error(error: redis::RedisError) -> Error {
    if error.is_io_error()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_timeout()
        || error.is_cluster_error()
    {
        unavailable(error)
    } else {
        Error::Backend(Box::new(error))
    }
}

/// The bytes of a reply item.
fn bytes(value: &Value) -> Option<&[u8]> {
    match value {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.as_bytes()),
        _ => None,
    }
}

fn number(value: &[u8]) -> Option<i64> {
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// A session from the pairs of its hash.
fn record(pairs: &[Value]) -> Result<Record> {
    let corrupt = || Error::Backend("a Redis session hash is malformed".into());
    let mut record = Record::default();
    for pair in pairs.chunks(2) {
        let [name, value] = pair else {
            return Err(corrupt());
        };
        let (name, value) = (
            bytes(name).ok_or_else(corrupt)?,
            bytes(value).ok_or_else(corrupt)?,
        );
        let text = |n: &[u8]| String::from_utf8(n.to_vec()).map_err(|_| corrupt());
        match name {
            b"_c" => record.created_at = number(value).ok_or_else(corrupt)?,
            b"_e" => record.expires_at = number(value).ok_or_else(corrupt)?,
            b"_i" => record.idle_timeout = number(value).ok_or_else(corrupt)?,
            b"_p" => record.persistent = Some(value == b"t"),
            _ => match name.split_at_checked(2) {
                Some((b"f:", n)) => record.fields.push((text(n)?, value.to_vec())),
                Some((b"v:", n)) => {
                    let version =
                        u64::try_from(number(value).ok_or_else(corrupt)?).map_err(|_| corrupt())?;
                    record.versions.push((text(n)?, version));
                }
                _ => {}
            },
        }
    }
    // A version is reported only for a present field.
    let present: Vec<String> = record.fields.iter().map(|(n, _)| n.clone()).collect();
    record.versions.retain(|(n, _)| present.contains(n));
    Ok(record)
}

fn flag(persistent: Option<bool>) -> &'static str {
    match persistent {
        Some(true) => "t",
        Some(false) => "f",
        None => "",
    }
}

#[async_trait]
impl SessionIndexes for RedisStore {
    async fn find(&self, name: &str, tags: &[IndexTag], at: Validity) -> Result<Vec<StoreKey>> {
        let call = self.index_call(name, tags, at, None, "find");
        let hexes: Vec<String> = self.eval(&call).await?;
        Ok(hexes.iter().filter_map(|h| parse_hex(h)).collect())
    }

    async fn destroy_found(
        &self,
        name: &str,
        tags: &[IndexTag],
        except: Option<&StoreKey>,
    ) -> Result<Vec<StoreKey>> {
        let at = Validity {
            now: 0,
            created_after: 0,
        };
        let call = self.index_call(name, tags, at, except, "destroy");
        let hexes: Vec<String> = self.eval(&call).await?;
        Ok(hexes.iter().filter_map(|h| parse_hex(h)).collect())
    }
}

#[async_trait]
impl SessionStore for RedisStore {
    async fn load(&self, key: &StoreKey, skip: &[&str], at: Validity) -> Result<Option<Record>> {
        self.load_by(&self.load, key, skip, at).await
    }

    async fn load_only(
        &self,
        key: &StoreKey,
        only: &[&str],
        at: Validity,
    ) -> Result<Option<Record>> {
        self.load_by(&self.load_only, key, only, at).await
    }

    async fn load_field(
        &self,
        key: &StoreKey,
        name: &str,
        at: Validity,
    ) -> Result<Option<Vec<u8>>> {
        let (expires, created, value): (Option<i64>, Option<i64>, Option<Vec<u8>>) = self
            .run(
                redis::cmd("HMGET")
                    .arg(self.session_key(key))
                    .arg("_e")
                    .arg("_c")
                    .arg(format!("f:{name}")),
            )
            .await?;
        match (expires, created) {
            (Some(e), Some(c)) if at.admits(c, e) => {
                self.counters.loaded(usize::from(value.is_some()));
                Ok(value)
            }
            _ => Ok(None),
        }
    }

    async fn create(
        &self,
        key: &StoreKey,
        session: NewSession,
        fields: &[(&'static str, Vec<u8>)],
    ) -> Result<bool> {
        let mut call = self.create.key(self.session_key(key));
        call.arg(session.created_at)
            .arg(session.expires_at)
            .arg(session.idle_timeout)
            .arg(flag(session.persistent));
        for (name, value) in fields {
            call.arg(*name).arg(value.as_slice());
        }
        let created: i64 = self.eval(&call).await?;
        if created == 1 {
            self.counters
                .wrote(fields.iter().map(|(_, v)| v.as_slice()));
        }
        Ok(created == 1)
    }

    async fn save(&self, key: &StoreKey, changes: &Changes, at: Validity) -> Result<Saved> {
        let to = changes.rename.map(|r| r.to);
        let mut call = self.save.key(self.session_key(key));
        call.key(self.previous_key(key))
            .key(self.session_key(to.as_ref().unwrap_or(key)));
        let (kind, expiry, idle, persistent) = match changes.expiry {
            None => ("", 0, 0, ""),
            Some(ExpiryUpdate::Extend(at)) => ("x", at, 0, ""),
            Some(ExpiryUpdate::Set {
                expires_at,
                idle_timeout,
                persistent,
            }) => ("s", expires_at, idle_timeout, flag(persistent)),
        };
        call.arg(at.now)
            .arg(at.created_after)
            .arg(at.max_lifetime())
            .arg(&self.prefix)
            .arg(hex(key.as_bytes()))
            .arg(to.map_or_else(String::new, |k| hex(k.as_bytes())))
            .arg(changes.rename.map_or(0, |r| r.previous_until))
            .arg(kind)
            .arg(expiry)
            .arg(idle)
            .arg(persistent)
            .arg(if changes.clear { "1" } else { "0" });
        call.arg(changes.expect.len());
        for e in &changes.expect {
            call.arg(e.name)
                .arg(e.version.map_or_else(String::new, |v| v.to_string()));
        }
        call.arg(changes.upsert.len());
        for (name, value) in &changes.upsert {
            call.arg(*name).arg(value.as_slice());
        }
        call.arg(changes.remove.len());
        for name in &changes.remove {
            call.arg(*name);
        }
        call.arg(changes.index.len());
        for update in &changes.index {
            call.arg(update.name)
                .arg(update.tag.map_or_else(String::new, |t| hex(&t)));
        }
        let outcome: i64 = self.eval(&call).await?;
        Ok(match outcome {
            1 => {
                self.counters
                    .wrote(changes.upsert.iter().map(|(_, v)| v.as_slice()));
                Saved::Saved
            }
            2 => Saved::Moved,
            3 => Saved::Conflict,
            _ => Saved::Gone,
        })
    }

    async fn is_previous_key(&self, key: &StoreKey, now: Timestamp) -> Result<bool> {
        let marker: Option<String> = self
            .run(redis::cmd("GET").arg(self.previous_key(key)))
            .await?;
        Ok(marker
            .as_deref()
            .and_then(|m| m.split_once(' '))
            .and_then(|(until, _)| until.parse::<i64>().ok())
            .is_some_and(|until| until > now))
    }

    async fn destroy(&self, key: &StoreKey, now: Timestamp) -> Result<bool> {
        let mut call = self.destroy.key(self.session_key(key));
        call.key(self.previous_key(key))
            .arg(now)
            .arg(&self.prefix)
            .arg(hex(key.as_bytes()))
            .arg(super::MAX_REGENERATES_IN_GRACE);
        let gone: i64 = self.eval(&call).await?;
        Ok(gone > 0)
    }

    async fn delete_expired(&self, at: Validity, batch: u32) -> Result<Vec<Ended>> {
        // Redis drops a session's hash itself an hour after its expiry
        // (see `scripts`); this deletes, and reports, the ones dead by the
        // request's clock before that.
        let mut cursor = 0u64;
        let mut ended = Vec::new();
        loop {
            let (next, keys) = self.scan(cursor, &format!("{}sess:*", self.prefix)).await?;
            if !keys.is_empty() {
                let mut call = self.purge.prepare_invoke();
                for k in &keys {
                    call.key(k);
                }
                call.arg(at.now)
                    .arg(at.created_after)
                    .arg(&self.prefix)
                    .arg(batch as usize - ended.len());
                let purged: Vec<(String, Vec<Vec<u8>>)> = self.eval(&call).await?;
                ended.extend(purged.into_iter().filter_map(|(hex, pairs)| {
                    let fields = pairs
                        .chunks_exact(2)
                        .filter_map(|pair| {
                            let name = std::str::from_utf8(&pair[0]).ok()?.strip_prefix("f:")?;
                            Some((name.to_string(), pair[1].clone()))
                        })
                        .collect();
                    Some(Ended {
                        key: parse_hex(&hex)?,
                        fields,
                    })
                }));
            }
            if next == 0 || ended.len() >= batch as usize {
                return Ok(ended);
            }
            cursor = next;
        }
    }

    fn name(&self) -> &'static str {
        "redis"
    }

    fn indexes(&self) -> Option<&dyn SessionIndexes> {
        Some(self)
    }

    fn stats(&self) -> StoreStats {
        self.counters.snapshot()
    }
}

impl RedisStore {
    fn index_call<'a>(
        &'a self,
        name: &str,
        tags: &[IndexTag],
        at: Validity,
        except: Option<&StoreKey>,
        mode: &str,
    ) -> redis::ScriptInvocation<'a> {
        let mut call = self.index.prepare_invoke();
        call.arg(at.now)
            .arg(at.created_after)
            .arg(&self.prefix)
            .arg(name)
            .arg(except.map_or_else(String::new, |k| hex(k.as_bytes())))
            .arg(mode);
        for tag in tags {
            call.arg(hex(tag));
        }
        call
    }
}

fn parse_hex(text: &str) -> Option<StoreKey> {
    let mut out = [0u8; 32];
    if text.len() != 64 {
        return None;
    }
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(StoreKey::from_bytes(out))
}

/// Opens the store for a `redis://` URL (see [`open`](super::open)).
pub(crate) fn open_url<'a>(url: &'a str, config: &'a Config) -> super::Opening<'a> {
    Box::pin(async move {
        let store: std::sync::Arc<dyn super::SessionStore> =
            std::sync::Arc::new(RedisStore::connect(url, config).await?);
        Ok(store)
    })
}
