//! The store contract: field-level, async, object-safe.
//!
//! A store keeps sessions under their [`StoreKey`] (the SHA-256 of the
//! token) as a set of named byte strings plus two timestamps. It never
//! decodes a value; the typed layer above does.
//!
//! # The contract
//! - [`load`](SessionStore::load) returns every field except the deferred
//!   ones, and never returns an expired session, whether or not cleanup has
//!   run, nor a field whose own lifetime is over ([`Record::drop_expired`]).
//! - `load_only` returns only the fields it names, with the same answer
//!   as `load` otherwise; its default (load everything, keep the named
//!   fields) is correct for any store, and a store that can fetch less
//!   overrides it.
//! - New sessions are [`create`](SessionStore::create)d with a plain insert
//!   that reports a taken key; existing ones are only ever updated by
//!   [`save`](SessionStore::save), never upserted. If the session is gone when
//!   a save arrives (a concurrent logout), the save writes nothing and
//!   returns [`Saved::Gone`]: a logout is never undone by a slower request.
//! - A save is all or nothing, the regenerate it may carry included.
//! - A regenerated session's previous key reaches it for
//!   [`destroy`](SessionStore::destroy) during [`PREVIOUS_KEY_GRACE`], and
//!   for nothing else: a save with it reports [`Saved::Moved`]. A rotated
//!   one ([`Replaced::Rotated`]) is also named by
//!   [`previous`](SessionStore::previous), within its grace for requests to
//!   follow, and after it while the session lives, so a replay is seen.
//! - Two saves that change different fields of one session both keep their
//!   change; two that add the same new field do not fail.
//! - A field written with an [`Expect`]ation (a `#[session(versioned)]`
//!   field) is written only if its stored version is the one expected; its
//!   version then goes up by one. One unmet expectation and the save writes
//!   nothing and reports [`Saved::Conflict`]. Fields written without one
//!   keep whatever version they have.
//!
//! - A session's index entries ([`IndexUpdate`]) live and die with it: a
//!   rename keeps them, a `clear` removes them, and expired or destroyed
//!   sessions are never [`find`](SessionIndexes::find)-ed.
//!
//! The behaviour suite in `session_core::testing` (feature `testing`) checks all of
//! this; run it against any store you write.
//!
//! # A custom store
//! A store keeps, per session, its timestamps and named byte strings, and
//! for a regenerated session its previous key until the grace ends. This
//! one is complete but for `max_lifetime` caps and capacity (see
//! [`memory`] for the full version):
//!
//! ```
//! use std::collections::HashMap;
//! use std::sync::Mutex;
//! use session_core::store::{Changes, Ended, ExpiryUpdate, NewSession, PreviousKey, Record, Replaced, Saved, SessionStore, Validity};
//! use session_core::{Result, StoreKey};
//!
//! #[derive(Debug, Default)]
//! struct Tiny {
//!     // Per field: its bytes and its version.
//!     sessions: HashMap<StoreKey, (NewSession, HashMap<String, (Vec<u8>, u64)>)>,
//!     previous: HashMap<StoreKey, (StoreKey, i64, Replaced)>,
//! }
//!
//! #[derive(Debug, Default)]
//! struct TinyStore(Mutex<Tiny>);
//!
//! fn alive(s: &NewSession, at: Validity) -> bool {
//!     at.admits(s.created_at, s.expires_at)
//! }
//!
//! #[session_core::async_trait]
//! impl SessionStore for TinyStore {
//!     async fn load(&self, key: &StoreKey, skip: &[&str], at: Validity) -> Result<Option<Record>> {
//!         let t = self.0.lock().unwrap();
//!         Ok(t.sessions.get(key).filter(|(s, _)| alive(s, at)).map(|(s, fields)| Record {
//!             created_at: s.created_at,
//!             expires_at: s.expires_at,
//!             idle_timeout: s.idle_timeout,
//!             persistent: s.persistent,
//!             fields: fields.iter().filter(|(n, _)| !skip.contains(&n.as_str()))
//!                 .map(|(n, (v, _))| (n.clone(), v.clone())).collect(),
//!             versions: fields.iter().filter(|(n, (_, ver))| *ver > 0 && !skip.contains(&n.as_str()))
//!                 .map(|(n, (_, ver))| (n.clone(), *ver)).collect(),
//!         }))
//!     }
//!     async fn load_field(&self, key: &StoreKey, name: &str, at: Validity) -> Result<Option<Vec<u8>>> {
//!         let t = self.0.lock().unwrap();
//!         Ok(t.sessions.get(key).filter(|(s, _)| alive(s, at)).and_then(|(_, f)| f.get(name).map(|(v, _)| v.clone())))
//!     }
//!     async fn create(&self, key: &StoreKey, session: NewSession, fields: &[(&'static str, Vec<u8>)]) -> Result<bool> {
//!         let mut t = self.0.lock().unwrap();
//!         if t.sessions.contains_key(key) { return Ok(false); }
//!         let fields = fields.iter().map(|(n, v)| (n.to_string(), (v.clone(), 0))).collect();
//!         t.sessions.insert(*key, (session, fields));
//!         Ok(true)
//!     }
//!     async fn save(&self, key: &StoreKey, changes: &Changes, at: Validity) -> Result<Saved> {
//!         let mut t = self.0.lock().unwrap();
//!         if !t.sessions.get(key).is_some_and(|(s, _)| alive(s, at)) {
//!             let moved = t.previous.get(key).is_some_and(|p| p.1 > at.now);
//!             return Ok(if moved { Saved::Moved } else { Saved::Gone });
//!         }
//!         let stored = &t.sessions[key].1;
//!         if changes.expect.iter().any(|e| stored.get(e.name).map(|(_, v)| *v) != e.version) {
//!             return Ok(Saved::Conflict);
//!         }
//!         let mut key = *key;
//!         if let Some(rename) = changes.rename {
//!             let session = t.sessions.remove(&key).unwrap();
//!             t.sessions.insert(rename.to, session);
//!             t.previous.insert(key, (rename.to, rename.previous_until, rename.reason));
//!             key = rename.to;
//!         }
//!         let (s, fields) = t.sessions.get_mut(&key).unwrap();
//!         if changes.clear { fields.clear(); }
//!         for (n, v) in &changes.upsert {
//!             let version = match changes.expectation(n) {
//!                 Some(e) => e.next(),
//!                 None => fields.get(*n).map_or(0, |(_, ver)| *ver),
//!             };
//!             fields.insert(n.to_string(), (v.clone(), version));
//!         }
//!         for n in &changes.remove { fields.remove(*n); }
//!         match changes.expiry {
//!             Some(ExpiryUpdate::Extend(at)) => s.expires_at = s.expires_at.max(at),
//!             Some(ExpiryUpdate::Set { expires_at, idle_timeout, persistent }) => {
//!                 s.expires_at = expires_at;
//!                 s.idle_timeout = idle_timeout;
//!                 s.persistent = persistent;
//!             }
//!             None => {}
//!         }
//!         Ok(Saved::Saved)
//!     }
//!     async fn previous(&self, key: &StoreKey, now: i64) -> Result<Option<PreviousKey>> {
//!         let t = self.0.lock().unwrap();
//!         let Some(&(mut current, until, reason)) = t.previous.get(key) else { return Ok(None) };
//!         // Follow the later renames to the session's key today.
//!         while let Some(&(next, _, _)) = t.previous.get(&current) { current = next; }
//!         let within_grace = until > now;
//!         let answers = within_grace || reason == Replaced::Rotated;
//!         Ok((answers && t.sessions.contains_key(&current))
//!             .then_some(PreviousKey { current, reason, within_grace }))
//!     }
//!     async fn destroy(&self, key: &StoreKey, now: i64) -> Result<bool> {
//!         let mut t = self.0.lock().unwrap();
//!         // Follow the keys that replaced this one within their grace.
//!         let mut key = *key;
//!         while t.sessions.remove(&key).is_none() {
//!             match t.previous.get(&key) {
//!                 Some(&(next, until, _)) if until > now => key = next,
//!                 _ => return Ok(false),
//!             }
//!         }
//!         Ok(true)
//!     }
//!     async fn delete_expired(&self, at: Validity, batch: u32) -> Result<Vec<Ended>> {
//!         let mut t = self.0.lock().unwrap();
//!         let dead: Vec<StoreKey> = t.sessions.iter().filter(|(_, (s, _))| !alive(s, at))
//!             .map(|(k, _)| *k).take(batch as usize).collect();
//!         // The same lock claims and deletes: each dead session is reported once.
//!         Ok(dead.into_iter().map(|key| {
//!             let (_, fields) = t.sessions.remove(&key).unwrap();
//!             Ended { key, fields: fields.into_iter().map(|(n, (v, _))| (n, v)).collect() }
//!         }).collect())
//!     }
//! }
//! ```

use std::fmt::Debug;

use async_trait::async_trait;

use crate::error::Result;
use crate::token::StoreKey;

#[cfg(feature = "memory")]
#[cfg_attr(docsrs, doc(cfg(feature = "memory")))]
pub mod memory;
mod stats;

#[cfg(feature = "sql")]
mod sql;

/// What the workspace's benchmark measures the store against (the floor
/// runs on the store's own pool type). Not public API.
#[cfg(feature = "sql")]
#[doc(hidden)]
pub mod __bench {
    pub use super::sql::pool::ConnPool;
}

#[cfg(feature = "mysql")]
#[cfg_attr(docsrs, doc(cfg(feature = "mysql")))]
pub mod mysql;

#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub mod sqlite;

#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub mod postgres;

#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis;

#[cfg(feature = "sql")]
#[cfg_attr(
    docsrs,
    doc(cfg(any(feature = "mysql", feature = "sqlite", feature = "postgres")))
)]
pub use sql::{SqlStore, TableNames};

pub use stats::StoreStats;
pub(crate) use stats::{counting_statements, Counters};

/// Runs one store call within `limit` (`statement_timeout`): past it, the
/// call is dropped (closing its connection) and the request answers 503, so
/// a server that stopped answering costs a bounded wait.
#[cfg(any(feature = "sql", feature = "redis"))]
pub(crate) async fn within<T>(
    limit: Option<std::time::Duration>,
    call: impl std::future::Future<Output = T>,
) -> Result<T> {
    match limit {
        None => Ok(call.await),
        Some(limit) => tokio::time::timeout(limit, call).await.map_err(|_| {
            crate::error::Error::Unavailable(
                format!(
                    "the session store did not answer within {} ms",
                    limit.as_millis()
                )
                .into(),
            )
        }),
    }
}

/// A store being opened from its URL (see [`open`]): what each store
/// module's `open_url` returns to the registry.
pub(crate) type Opening<'a> = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<std::sync::Arc<dyn SessionStore>>> + Send + 'a>,
>;

/// Seconds since the Unix epoch, UTC.
pub type Timestamp = i64;

/// How long a regenerated session's previous key still reaches it, for
/// [`destroy`](SessionStore::destroy) only: a logout sent by a tab that did
/// not yet see the new cookie still ends the session. Reads and writes with
/// the previous key are refused at once, so a token planted before login
/// (session fixation) is worthless after it.
pub const PREVIOUS_KEY_GRACE: Timestamp = 60;

/// How many regenerates in a row within [`PREVIOUS_KEY_GRACE`] a store
/// follows from a replaced key to its session: past that many, the oldest
/// key reaches nothing (no app regenerates that often; the bound keeps a
/// logout's work bounded).
pub const MAX_REGENERATES_IN_GRACE: usize = 16;

/// How many renames in a row a store follows from a rotated key to its
/// session's current key (for [`SessionStore::previous`]): with
/// `rotate_after` at five minutes, three and a half days of rotations. A
/// replay of a key older than that is not recognised (it reaches nothing).
pub(crate) const MAX_RENAMES_FOLLOWED: usize = 1024;

/// The instant a request runs at and the oldest creation time still allowed
/// (`now - max_lifetime`). A session is alive when
/// `expires_at > now && created_at > created_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    /// The request's time.
    pub now: Timestamp,
    /// Sessions created at or before this are past `max_lifetime`.
    pub created_after: Timestamp,
}

impl Validity {
    /// Whether a session with these timestamps is alive.
    pub fn admits(&self, created_at: Timestamp, expires_at: Timestamp) -> bool {
        expires_at > self.now && created_at > self.created_after
    }

    /// The absolute lifetime, `now - created_after`: no expiry a store
    /// writes may pass `created_at + max_lifetime()`.
    pub fn max_lifetime(&self) -> Timestamp {
        self.now - self.created_after
    }

    /// What is alive at `now` under `config`'s `max_lifetime`.
    pub(crate) fn at(config: &crate::config::Config, now: Timestamp) -> Self {
        let max_lifetime = i64::try_from(config.max_lifetime).unwrap_or(i64::MAX / 2);
        Validity {
            now,
            created_after: now.saturating_sub(max_lifetime),
        }
    }
}

/// A loaded session: its timestamps and the raw bytes of its non-deferred
/// fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    /// When the session was created.
    pub created_at: Timestamp,
    /// When the session expires unless touched.
    pub expires_at: Timestamp,
    /// The session's own idle timeout in seconds: `ttl` unless the app
    /// chose another with `set_expiry`. A touch slides the expiry by it.
    pub idle_timeout: Timestamp,
    /// The session's own cookie choice: `Some(true)` a persistent cookie
    /// (`set_expiry`), `Some(false)` a browser-session one
    /// (`expire_on_close`), `None` the configuration's `persistent`.
    pub persistent: Option<bool>,
    /// `(stored name, bytes)` of every stored field the load did not skip.
    pub fields: Vec<(String, Vec<u8>)>,
    /// `(stored name, version)` of the loaded fields that have a version
    /// (were ever written with an [`Expect`]ation); any other field's
    /// version is 0.
    pub versions: Vec<(String, u64)>,
}

/// The prefix of the reserved field that holds, as decimal Unix seconds,
/// when the field named after it expires: `@ttl:cart` for `cart`
/// (`#[session(ttl = …)]`). The typed layer writes and removes it with its
/// field, in the same save; a store keeps it as any other field, and its
/// loads never return a field whose time has come ([`Record::drop_expired`]
/// does that to a loaded record).
pub const LIFETIME_PREFIX: &str = "@ttl:";

impl Record {
    /// Drops from a loaded record every field whose lifetime
    /// ([`LIFETIME_PREFIX`]) is over at `now` (`expires <= now`), as every
    /// load must; the lifetime entry and the version stay, so the typed
    /// layer can tell an expired field (whose next write must expect that
    /// version) from one never written. Stores call it on what they load.
    pub fn drop_expired(&mut self, now: Timestamp) {
        if !self
            .fields
            .iter()
            .any(|(n, _)| n.starts_with(LIFETIME_PREFIX))
        {
            return;
        }
        let expired: Vec<String> = self
            .fields
            .iter()
            .filter_map(|(name, value)| {
                let field = name.strip_prefix(LIFETIME_PREFIX)?;
                let until: Timestamp = std::str::from_utf8(value).ok()?.parse().ok()?;
                (until <= now).then(|| field.to_string())
            })
            .collect();
        if !expired.is_empty() {
            self.fields.retain(|(name, _)| !expired.contains(name));
        }
    }
}

/// A session [`delete_expired`](SessionStore::delete_expired) ended.
#[derive(Clone, PartialEq, Eq)]
pub struct Ended {
    /// Its key.
    pub key: StoreKey,
    /// `(stored name, bytes)` of the fields the store read as it deleted
    /// the session (possibly none).
    pub fields: Vec<(String, Vec<u8>)>,
}

impl std::fmt::Debug for Ended {
    // Field values never reach a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ended")
            .field("key", &self.key)
            .field("fields", &self.fields.len())
            .finish()
    }
}

/// A condition on one field for a [`save`](SessionStore::save) to apply:
/// the compare half of a compare-and-set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expect {
    /// The field's stored name. It is also in [`Changes::upsert`] or
    /// [`Changes::remove`].
    pub name: &'static str,
    /// `None`: the field must be absent. `Some(v)`: it must be stored with
    /// version `v` (0 for a field never written with an expectation). When
    /// the save applies, an upserted field is stored with version `v + 1`
    /// (1 when it was absent).
    pub version: Option<u64>,
}

impl Expect {
    /// The version the field has after the save applies.
    pub fn next(&self) -> u64 {
        self.version.map_or(1, |v| v + 1)
    }
}

/// A keyed digest of an indexed field's value (`#[session(index)]`): what
/// an index holds and is searched by. Stores compare it for equality only.
pub type IndexTag = [u8; 32];

/// A change to one session's entry in one index, made by a
/// [`save`](SessionStore::save) along with the field's own write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexUpdate {
    /// The indexed field's stored name: the index's name.
    pub name: &'static str,
    /// The session's entry from now on; `None` removes it.
    pub tag: Option<IndexTag>,
}

/// The timestamps a new session is created with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewSession {
    /// When the session is created.
    pub created_at: Timestamp,
    /// When it expires unless touched.
    pub expires_at: Timestamp,
    /// Its idle timeout in seconds (see [`Record::idle_timeout`]).
    pub idle_timeout: Timestamp,
    /// Its cookie choice (see [`Record::persistent`]).
    pub persistent: Option<bool>,
}

/// How a save moves the session's expiry. Every expiry a store writes is
/// capped at `created_at + max_lifetime` ([`Validity::max_lifetime`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpiryUpdate {
    /// Move `expires_at` to this instant if that is later (a touch): a touch
    /// never shortens a session.
    Extend(Timestamp),
    /// Set `expires_at` to exactly this and make `idle_timeout` and
    /// `persistent` the session's own from now on (an explicit
    /// `set_expiry` or `expire_on_close`).
    Set {
        /// The new expiry.
        expires_at: Timestamp,
        /// The session's idle timeout in seconds from now on.
        idle_timeout: Timestamp,
        /// The session's cookie choice from now on (see
        /// [`Record::persistent`]).
        persistent: Option<bool>,
    },
}

impl ExpiryUpdate {
    /// The expiry this update asks for, before the `max_lifetime` cap.
    pub fn expires_at(&self) -> Timestamp {
        match *self {
            ExpiryUpdate::Extend(at) | ExpiryUpdate::Set { expires_at: at, .. } => at,
        }
    }
}

/// A regenerate or a rotation: the session moves to a new key before the
/// rest of the save is applied, in the same transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rename {
    /// The key the session lives under from now on.
    pub to: StoreKey,
    /// Until when the previous key still reaches the session: for
    /// [`destroy`](SessionStore::destroy) after a regenerate; after a
    /// rotation, for [`previous`](SessionStore::previous) to follow (the
    /// grace of requests already in flight).
    pub previous_until: Timestamp,
    /// Why the key changed, which says what the previous key may still do.
    pub reason: Replaced,
}

/// Why a session's key was replaced: what its previous key may still do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replaced {
    /// `regenerate()` (a login): the previous key reaches the session for
    /// [`destroy`](SessionStore::destroy) until its `previous_until`, and
    /// for nothing else, so a token planted before login is worthless
    /// after it. The store may forget it after `previous_until`.
    Regenerated,
    /// Automatic rotation (`rotate_after`): until `previous_until` (the
    /// grace), [`previous`](SessionStore::previous) names the session's
    /// current key, which requests still carrying the previous one follow.
    /// After the grace the store keeps the key while the session lives
    /// (at least until `created_at + max_lifetime`, or the session's next
    /// regenerate), so a replay of it is recognised as a stolen token.
    Rotated,
}

/// What a replaced key still names: the answer of
/// [`SessionStore::previous`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PreviousKey {
    /// The key the session lives under now (after every later rename).
    pub current: StoreKey,
    /// Why the key was replaced.
    pub reason: Replaced,
    /// Whether the key's `previous_until` is still ahead.
    pub within_grace: bool,
}

/// What one request changed in an existing session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// Move the session to a new key first (regenerate).
    pub rename: Option<Rename>,
    /// Delete every stored field before the upserts (`clear()`).
    pub clear: bool,
    /// Fields to write: `(stored name, encoded bytes)`.
    pub upsert: Vec<(&'static str, Vec<u8>)>,
    /// A hint: the request read every field in `upsert` and found it
    /// stored, so a store may try a plain update first (it must still
    /// create a field that turns out to be missing).
    pub upsert_existing: bool,
    /// Fields to delete.
    pub remove: Vec<&'static str>,
    /// Versions the save depends on (versioned fields it writes or
    /// removes): all are checked before anything is written.
    pub expect: Vec<Expect>,
    /// A new expiry, if any.
    pub expiry: Option<ExpiryUpdate>,
    /// The session's index entries to set or remove, after the fields
    /// (a [`clear`](Changes::clear) removes every entry first).
    pub index: Vec<IndexUpdate>,
}

impl Changes {
    /// The expectation on field `name`, if any.
    pub fn expectation(&self, name: &str) -> Option<&Expect> {
        self.expect.iter().find(|e| e.name == name)
    }

    /// Nothing to write.
    pub fn is_empty(&self) -> bool {
        self.rename.is_none()
            && !self.clear
            && self.upsert.is_empty()
            && self.remove.is_empty()
            && self.expiry.is_none()
            && self.index.is_empty()
    }
}

/// The outcome of [`SessionStore::save`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Saved {
    /// The changes are stored.
    Saved,
    /// The session no longer exists (destroyed or expired, or the key never
    /// named one); nothing was written.
    Gone,
    /// The key was replaced by a regenerate or a rotation in another
    /// request moments ago (within its `previous_until`); nothing was
    /// written.
    Moved,
    /// The session is alive but a field's version is not the
    /// [`Expect`]ed one (another request changed it meanwhile); nothing
    /// was written.
    Conflict,
}

/// A session store. Object-safe: the runtime holds it as
/// `Arc<dyn SessionStore>`.
///
/// Stores report outages as [`Error::Unavailable`](crate::Error::Unavailable)
/// and other failures as [`Error::Backend`](crate::Error::Backend), keeping
/// the driver's error as the source.
#[async_trait]
pub trait SessionStore: Debug + Send + Sync + 'static {
    /// Loads a live session without the fields named in `skip` (the deferred
    /// ones). `None` when there is no such session, it has expired, or `key`
    /// is only its previous key.
    async fn load(&self, key: &StoreKey, skip: &[&str], at: Validity) -> Result<Option<Record>>;

    /// Loads a live session with only the fields named in `only` (those
    /// the request is expected to use: see "loads learned per route" in
    /// the crate docs), in one call, with the same answer as
    /// [`load`](Self::load) otherwise: `None` when there is no live
    /// session under `key`, whatever `only` names. The default loads
    /// everything and keeps the named fields: correct, not cheaper; a
    /// store that can fetch less overrides it.
    async fn load_only(
        &self,
        key: &StoreKey,
        only: &[&str],
        at: Validity,
    ) -> Result<Option<Record>> {
        let mut record = self.load(key, &[], at).await?;
        if let Some(record) = &mut record {
            record
                .fields
                .retain(|(name, _)| only.contains(&name.as_str()));
            record
                .versions
                .retain(|(name, _)| only.contains(&name.as_str()));
        }
        Ok(record)
    }

    /// Loads one field of a live session (a deferred field's own query).
    async fn load_field(&self, key: &StoreKey, name: &str, at: Validity)
        -> Result<Option<Vec<u8>>>;

    /// Inserts a new session with its first fields. `Ok(false)` when the
    /// key is taken (the caller retries with a fresh token); never
    /// overwrites. On an error, a session row without fields may remain:
    /// its token was never sent to anyone.
    async fn create(
        &self,
        key: &StoreKey,
        session: NewSession,
        fields: &[(&'static str, Vec<u8>)],
    ) -> Result<bool>;

    /// Applies a request's changes to a live session, all or nothing, and
    /// only if the session is still alive under `key` and every
    /// [`expect`](Changes::expect)ation holds: first the
    /// [`rename`](Changes::rename), then the expiry, the
    /// [`clear`](Changes::clear), the upserts and the removals, under the
    /// new key. Reports [`Saved::Gone`], [`Saved::Moved`] or
    /// [`Saved::Conflict`] when nothing was written.
    async fn save(&self, key: &StoreKey, changes: &Changes, at: Validity) -> Result<Saved>;

    /// What `key` names if a [`Rename`] replaced it: the session's current
    /// key, why it was replaced and whether its grace
    /// (`previous_until > now`) still runs. `None` when `key` is no
    /// previous key of a live session: never one, a
    /// [`Replaced::Regenerated`] key past its grace, or the session ended.
    /// A [`Replaced::Rotated`] key answers while its session lives, with
    /// `within_grace: false` after the grace.
    ///
    /// Asked only off the common path: when a cookie named no live session
    /// and the request goes on to write (so a request racing a login
    /// neither starts a session of its own nor writes to the moved one),
    /// and, with rotation on, when a load or a save missed.
    async fn previous(&self, key: &StoreKey, now: Timestamp) -> Result<Option<PreviousKey>>;

    /// Deletes the session under `key`, or the one that `key` named before a
    /// regenerate or rotation still within its grace (`previous_until > now`), with all
    /// its fields. `true` when this call deleted a session: of several
    /// calls racing to end one session, exactly one answers `true` (what
    /// the `destroyed` event is reported from). Deleting a missing session
    /// is not an error.
    async fn destroy(&self, key: &StoreKey, now: Timestamp) -> Result<bool>;

    /// Deletes at most `batch` sessions that are no longer alive at `at`
    /// (idle-expired or past `max_lifetime`) and returns them: each with
    /// the fields the store read in the same step (what it keeps with the
    /// session itself; a store may return none), from which the `expired`
    /// event names whose session it was. Safe to run from several
    /// processes at once, and the statement that deletes is the one that
    /// reports: of several cleanups racing, each dead session is returned
    /// by exactly one.
    async fn delete_expired(&self, at: Validity, batch: u32) -> Result<Vec<Ended>>;

    /// How many sessions are alive at `at`, when the store can count them
    /// without reading them (the `sessions_live` gauge, set after each
    /// cleanup pass); `None` when it cannot. The default: `None`.
    async fn count_live(&self, at: Validity) -> Result<Option<u64>> {
        let _ = at;
        Ok(None)
    }

    /// Why this store cannot rotate tokens (`rotate_after`), if it
    /// cannot: a manager with `rotate_after` over it is refused, with this
    /// reason. The default: `None`; every store that keeps replaced keys
    /// as [`previous`](Self::previous) says can.
    fn cannot_rotate(&self) -> Option<&'static str> {
        None
    }

    /// The store's kind, as metrics and logs name it: `"mysql"`,
    /// `"postgres"`, `"sqlite"`, `"redis"`, `"redis-cluster"`, `"memory"`.
    /// The default:
    /// `"custom"`.
    fn name(&self) -> &'static str {
        "custom"
    }

    /// The store's indexes of sessions by field, when it keeps them:
    /// `#[session(index)]` fields need a store that does, and a session
    /// type with one is refused at launch by a store that does not. The
    /// default: none.
    fn indexes(&self) -> Option<&dyn SessionIndexes> {
        None
    }

    /// Work counters since the store was built.
    fn stats(&self) -> StoreStats {
        StoreStats::default()
    }

    /// Gets the store ready at startup: with `config.create_tables`,
    /// create what is missing; either way, check that what exists is usable
    /// (a table of another layout is an error naming it) and that the
    /// configured limits fit the server. The default does nothing.
    async fn prepare(&self, config: &crate::config::Config) -> Result<()> {
        let _ = config;
        Ok(())
    }

    /// Closes the connections the store opened itself, at shutdown. The
    /// default does nothing.
    async fn close(&self) {}
}

/// A store's indexes: the sessions whose `#[session(index)]` field holds a
/// value, found and ended without knowing their tokens. A store that keeps
/// them implements this and returns itself from
/// [`SessionStore::indexes`].
///
/// Entries are written by [`SessionStore::save`] ([`Changes::index`]) and
/// live and die with their session: a rename keeps them, a `clear` removes
/// them, and expired or destroyed sessions are never found.
#[async_trait]
pub trait SessionIndexes: Send + Sync {
    /// The keys of the live sessions whose entry in index `name` is one of
    /// `tags` (several when the tag's key was rotated).
    async fn find(&self, name: &str, tags: &[IndexTag], at: Validity) -> Result<Vec<StoreKey>>;

    /// Deletes, with all their fields and index entries, every session
    /// whose entry in index `name` is one of `tags`, except the one under
    /// `except`; returns the keys of those this call deleted (of two calls
    /// racing, each session is returned by one). A deleted session is gone
    /// as after [`destroy`](SessionStore::destroy): no save brings it back.
    async fn destroy_found(
        &self,
        name: &str,
        tags: &[IndexTag],
        except: Option<&StoreKey>,
    ) -> Result<Vec<StoreKey>>;

    /// Deletes the session under `key`, as [`destroy_found`](Self::destroy_found)
    /// would, if its entry in index `name` is one of `tags` at that moment
    /// (checked and deleted in one step: a session that changed hands
    /// meanwhile is left alone); returns whether this call deleted it. A
    /// user signing out one of their devices.
    async fn destroy_one(&self, name: &str, tags: &[IndexTag], key: &StoreKey) -> Result<bool>;
}
