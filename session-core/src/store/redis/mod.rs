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
//! "Log out everywhere", the devices list and cleanup work page by page
//! (`SSCAN` of a user's index set, `SCAN` of the keyspace with its cursor
//! kept across a pass's batches): no script's work grows with the number
//! of sessions. Index sets expire with their last session. At connect the
//! store refuses an evicting `maxmemory-policy` and warns about
//! persistence that can bring destroyed sessions back
//! ([`RedisStore::connect`]).
//!
//! Keys put the session's key in a hash tag (`sess:{<hex>}`), so a
//! session's keys share one cluster slot. On a Redis Cluster
//! (`redis+cluster://host:port,host:port`) what spans slots (a regenerate,
//! index entries, "log out everywhere", cleanup) is split into steps, each
//! one script on one node, ordered so that a crash between two leaves
//! nothing unsafe: see `cluster/mod.rs`.
//!
//! ```no_run
//! # async fn run() -> session_core::Result<()> {
//! use session_core::{Config, store::redis::RedisStore};
//!
//! let store = RedisStore::connect("redis://127.0.0.1:6379", &Config::default()).await?;
//! let cluster = RedisStore::connect(
//!     "redis+cluster://10.0.0.1:6379,10.0.0.2:6379,10.0.0.3:6379",
//!     &Config::default(),
//! )
//! .await?;
//! # Ok(()) }
//! ```

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use redis::{Script, Value};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::store::{
    Changes, Counters, Ended, ExpiryUpdate, IndexTag, NewSession, PreviousKey, Record, Replaced,
    Saved, SessionIndexes, SessionStore, StoreStats, Timestamp, Validity, LIFETIME_PREFIX,
};
use crate::token::StoreKey;

mod cleanup;
mod cluster;
mod conn;
mod replicas;
mod reply;
mod scripts;
mod settings;

use cleanup::Walk;
use conn::{Conn, Target};
use reply::{flag, hex, parse_hex, record};

pub use settings::RedisSettings;

/// The session store on Redis.
pub struct RedisStore {
    conn: Conn,
    /// On a Redis Cluster: its scripts and what was learnt at connect.
    cluster: Option<cluster::Cluster>,
    prefix: String,
    timeout: Option<Duration>,
    counters: Counters,
    load: Script,
    load_only: Script,
    create: Script,
    save: Script,
    destroy: Script,
    /// What a replaced key names now (see `scripts::PREVIOUS`).
    previous: Script,
    index: Script,
    destroy_one: Script,
    purge: Script,
    settings: RedisSettings,
    warnings: Vec<String>,
    /// Where the cleanup's walk of the keyspace stands.
    walk: std::sync::Mutex<Walk>,
    /// Live sessions the last complete cleanup pass counted; -1: none yet.
    last_live: std::sync::atomic::AtomicI64,
    /// Every primary had a replica at connect: destroys wait for one.
    replicated: bool,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects to `url` and checks the server answers: `redis://host:port/db`
    /// (`rediss://` for TLS if the `redis` crate was built with it) for one
    /// server, kept as one multiplexed connection that reconnects by
    /// itself; `redis+cluster://host:port,host:port` (or
    /// `rediss+cluster://`, credentials before the first host) for a Redis
    /// Cluster, named by any of its nodes. Keys start with `table_prefix`.
    ///
    /// It then reads the server's `maxmemory-policy`, `appendonly` and
    /// `appendfsync` (every primary's, on a cluster;
    /// [`settings`](Self::settings)): an evicting policy is refused
    /// (evicted sessions vanish, evicted index sets make "log out
    /// everywhere" end nothing); snapshots without an append-only file,
    /// `appendfsync no`, or a setting `CONFIG GET` would not show are
    /// warned about ([`warnings`](Self::warnings)), each with its fix. On
    /// a cluster, a primary without a replica is warned about too. When
    /// the primary (every primary, on a cluster) has a replica, a destroy
    /// waits until a replica has it (`WAIT`, one second, else
    /// [`Error::Unavailable`]): a failover cannot bring a logout back.
    ///
    /// # Errors
    /// [`Error::Config`] for a bad URL or prefix, an evicting
    /// `maxmemory-policy`, or a `redis://` URL naming a node of a cluster
    /// (the message says to write `redis+cluster://`);
    /// [`Error::Unavailable`] when the server cannot be reached within
    /// `connect_timeout`.
    pub async fn connect(url: &str, config: &Config) -> Result<Self> {
        crate::config::validate_prefix(&config.table_prefix)?;
        let target = Target::parse(url)?;
        let wait = Duration::from_secs(config.connect_timeout.max(1));
        let conn = Conn::open(&target, wait).await?;
        let mut store = RedisStore {
            conn,
            cluster: None,
            prefix: config.table_prefix.clone(),
            timeout: config.statement_timeout(),
            counters: Counters::default(),
            load: Script::new(scripts::LOAD),
            load_only: Script::new(scripts::LOAD_ONLY),
            create: Script::new(scripts::CREATE),
            save: Script::new(&scripts::with_helpers(scripts::SAVE)),
            destroy: Script::new(&scripts::with_helpers(scripts::DESTROY)),
            previous: Script::new(&scripts::with_helpers(scripts::PREVIOUS)),
            index: Script::new(&scripts::with_helpers(scripts::INDEX)),
            destroy_one: Script::new(&scripts::with_helpers(scripts::DESTROY_ONE)),
            purge: Script::new(&scripts::with_helpers(scripts::PURGE)),
            settings: RedisSettings::default(),
            warnings: Vec::new(),
            walk: std::sync::Mutex::default(),
            last_live: std::sync::atomic::AtomicI64::new(-1),
            replicated: false,
        };
        if store.conn.is_cluster() {
            let primaries = store.conn.primaries().await?;
            let mut replicated = !primaries.is_empty();
            for node in &primaries {
                let settings = settings::read(&store, Some(node)).await;
                for warning in settings.judge().map_err(|e| on_node(e, node))? {
                    store.warnings.push(format!("primary {node}: {warning}"));
                }
                if !settings::has_replica(&store, Some(node)).await {
                    replicated = false;
                    store.warnings.push(format!(
                        "primary {node} has no replica: a failover cannot replace it, and \
                         logouts are not confirmed on a second node; run the cluster with \
                         `--cluster-replicas 1` or more"
                    ));
                }
                if store.settings == RedisSettings::default() {
                    store.settings = settings;
                }
            }
            store.replicated = replicated;
            store.cluster = Some(cluster::Cluster::new());
        } else {
            let pong: String = store.run(&redis::cmd("PING")).await?;
            debug_assert_eq!(pong, "PONG");
            settings::refuse_cluster(&store).await?;
            store.settings = settings::read(&store, None).await;
            store.warnings = store.settings.judge()?;
            // A primary with replicas (Sentinel): destroys wait for one.
            store.replicated = settings::has_replica(&store, None).await;
        }
        for warning in &store.warnings {
            tracing::warn!("{warning}");
        }
        Ok(store)
    }

    /// The server's persistence and eviction settings as read at connect
    /// (`None` where `CONFIG GET` was refused).
    pub fn settings(&self) -> &RedisSettings {
        &self.settings
    }

    /// What [`connect`](Self::connect) warned about the server's settings
    /// (logged at warn level): no append-only file, `appendfsync no`, a
    /// setting it could not read. Empty when sessions are safe across a
    /// restart.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The key prefix (`table_prefix`).
    pub fn prefix(&self) -> &str {
        &self.prefix
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

    /// Runs one command on the cluster node at `node` (`host:port`); on
    /// one server, or with `None`, as [`run`](Self::run).
    async fn run_on<T: redis::FromRedisValue>(
        &self,
        node: Option<&str>,
        cmd: &redis::Cmd,
    ) -> Result<T> {
        let Some(node) = node else {
            return self.run(cmd).await;
        };
        self.counters.statement();
        let reply = self.bounded(self.conn.to_node(node, cmd)).await?;
        redis::from_redis_value(reply).map_err(|e| map_error(e.into()))
    }

    /// A save script's call: the same keys and arguments for one server's
    /// script and a cluster's.
    fn save_call<'s>(
        &self,
        script: &'s Script,
        key: &StoreKey,
        changes: &Changes,
        at: Validity,
    ) -> redis::ScriptInvocation<'s> {
        let to = changes.rename.map(|r| r.to);
        let mut call = script.key(self.session_key(key));
        call.key(self.previous_key(key));
        // A cluster's save touches its own slot only (the new key is
        // written by a step of its own).
        if self.cluster.is_none() {
            call.key(self.session_key(to.as_ref().unwrap_or(key)));
        }
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
        let rotated = changes
            .rename
            .is_some_and(|r| r.reason == Replaced::Rotated);
        call.arg(if rotated { "r" } else { "" });
        call
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
                let mut record = record(&pairs)?;
                record.drop_expired(at.now);
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

/// An error about one node's settings, naming the node.
fn on_node(error: Error, node: &str) -> Error {
    match error {
        Error::Config(message) => Error::config(format!("primary {node}: {message}")),
        other => other,
    }
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

#[async_trait]
impl SessionIndexes for RedisStore {
    async fn find(&self, name: &str, tags: &[IndexTag], at: Validity) -> Result<Vec<StoreKey>> {
        self.walk_index(name, tags, at, None, "find").await
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
        self.walk_index(name, tags, at, except, "destroy").await
    }

    async fn destroy_one(&self, name: &str, tags: &[IndexTag], key: &StoreKey) -> Result<bool> {
        if self.cluster.is_some() {
            return self.cluster_destroy_one(name, tags, key).await;
        }
        let mut call = self.destroy_one.key(self.session_key(key));
        call.arg(&self.prefix).arg(hex(key.as_bytes())).arg(name);
        for tag in tags {
            call.arg(hex(tag));
        }
        let gone: i64 = self.eval(&call).await?;
        if gone > 0 {
            self.confirm(None).await?;
        }
        Ok(gone > 0)
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
        type Reply = (
            Option<i64>,
            Option<i64>,
            Option<String>,
            Option<Vec<u8>>,
            Option<i64>,
        );
        let (expires, created, moving, value, until): Reply = self
            .run(
                redis::cmd("HMGET")
                    .arg(self.session_key(key))
                    .arg("_e")
                    .arg("_c")
                    .arg("_m")
                    .arg(format!("f:{name}"))
                    .arg(format!("f:{LIFETIME_PREFIX}{name}")),
            )
            .await?;
        let lives = until.is_none_or(|until| until > at.now);
        match (expires, created) {
            (Some(e), Some(c)) if moving.is_none() && at.admits(c, e) && lives => {
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
        if self.cluster.is_some() {
            return self.cluster_save(key, changes, at).await;
        }
        let call = self.save_call(&self.save, key, changes, at);
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

    async fn previous(&self, key: &StoreKey, now: Timestamp) -> Result<Option<PreviousKey>> {
        let Some(cluster) = &self.cluster else {
            let mut call = self.previous.key(self.previous_key(key));
            call.arg(now)
                .arg(&self.prefix)
                .arg(super::MAX_RENAMES_FOLLOWED);
            let found: Option<(String, i64, i64)> = self.eval(&call).await?;
            return Ok(found.and_then(|(current, within, rotated)| {
                Some(PreviousKey {
                    current: parse_hex(&current)?,
                    reason: if rotated == 1 {
                        Replaced::Rotated
                    } else {
                        Replaced::Regenerated
                    },
                    within_grace: within == 1,
                })
            }));
        };
        // On a cluster (no rotation: see `cannot_rotate`), a regenerate
        // under way marks the old hash itself (`_m`) before the marker
        // replaces it; either names the next key within the grace. Each
        // key of a chain is in a slot of its own: one call per hop.
        let next = |key: StoreKey| {
            let mut call = cluster.previous.key(self.session_key(&key));
            call.key(self.previous_key(&key));
            async move {
                let marker: Option<String> = self.eval(&call).await?;
                Ok::<_, Error>(marker.as_deref().and_then(|m| {
                    let mut parts = m.split(' ');
                    let until = parts.next()?.parse::<i64>().ok()?;
                    let to = parse_hex(parts.next()?)?;
                    (until > now).then_some(to)
                }))
            }
        };
        let Some(mut current) = next(*key).await? else {
            return Ok(None);
        };
        for _ in 0..super::MAX_REGENERATES_IN_GRACE {
            match next(current).await? {
                Some(to) => current = to,
                None => break,
            }
        }
        Ok(Some(PreviousKey {
            current,
            reason: Replaced::Regenerated,
            within_grace: true,
        }))
    }

    async fn destroy(&self, key: &StoreKey, now: Timestamp) -> Result<bool> {
        if self.cluster.is_some() {
            return self.cluster_destroy(key, now).await;
        }
        let mut call = self.destroy.key(self.session_key(key));
        call.key(self.previous_key(key))
            .arg(now)
            .arg(&self.prefix)
            .arg(hex(key.as_bytes()))
            .arg(super::MAX_REGENERATES_IN_GRACE);
        let gone: i64 = self.eval(&call).await?;
        if gone > 0 {
            self.confirm(None).await?;
        }
        Ok(gone > 0)
    }

    async fn delete_expired(&self, at: Validity, batch: u32) -> Result<Vec<Ended>> {
        self.purge_expired(at, batch).await
    }

    /// The live sessions the last complete cleanup pass found as it walked
    /// the keyspace (counted by the purge scripts, no command of its own);
    /// `None` before the first pass completes.
    async fn count_live(&self, _: Validity) -> Result<Option<u64>> {
        let live = self.last_live.load(std::sync::atomic::Ordering::Relaxed);
        Ok(u64::try_from(live).ok())
    }

    fn cannot_rotate(&self) -> Option<&'static str> {
        self.cluster.is_some().then_some(
            "a move to a new key spans two slots on Redis Cluster, in steps during which \
             requests in flight could not follow the token (use one Redis server with \
             replicas, or remove `rotate_after`)",
        )
    }

    fn name(&self) -> &'static str {
        if self.cluster.is_some() {
            "redis-cluster"
        } else {
            "redis"
        }
    }

    fn indexes(&self) -> Option<&dyn SessionIndexes> {
        Some(self)
    }

    fn stats(&self) -> StoreStats {
        self.counters.snapshot()
    }
}

impl RedisStore {
    /// Runs the index script over every page of each tag's set: each call
    /// does a bounded amount of work (one `SSCAN` page), so a user with
    /// 100,000 sessions never holds the server for the others. A member
    /// seen twice (`SSCAN` may return one again) counts once.
    async fn walk_index(
        &self,
        name: &str,
        tags: &[IndexTag],
        at: Validity,
        except: Option<&StoreKey>,
        mode: &str,
    ) -> Result<Vec<StoreKey>> {
        if self.cluster.is_some() {
            return self.cluster_walk_index(name, tags, at, except, mode).await;
        }
        let except = except.map_or_else(String::new, |k| hex(k.as_bytes()));
        let mut keys = Vec::new();
        for tag in tags {
            let tag = hex(tag);
            let mut cursor = "0".to_string();
            loop {
                let mut call = self.index.prepare_invoke();
                call.arg(at.now)
                    .arg(at.created_after)
                    .arg(&self.prefix)
                    .arg(name)
                    .arg(&except)
                    .arg(mode)
                    .arg(&tag)
                    .arg(&cursor);
                let (next, hexes): (String, Vec<String>) = self.eval(&call).await?;
                keys.extend(hexes.iter().filter_map(|h| parse_hex(h)));
                if next == "0" {
                    break;
                }
                cursor = next;
            }
        }
        keys.sort();
        keys.dedup();
        if mode == "destroy" && !keys.is_empty() {
            self.confirm(None).await?;
        }
        Ok(keys)
    }
}

/// Opens the store for a `redis://` URL (see [`open`](super::open)).
pub(crate) fn open_url<'a>(url: &'a str, config: &'a Config) -> super::Opening<'a> {
    Box::pin(async move {
        let store: std::sync::Arc<dyn super::SessionStore> =
            std::sync::Arc::new(RedisStore::connect(url, config).await?);
        Ok(store)
    })
}
