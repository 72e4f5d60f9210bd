//! The store contract: field-level, async, object-safe.
//!
//! A store keeps sessions under their [`StoreKey`] (the SHA-256 of the
//! token) as a set of named byte strings plus two timestamps. It never
//! decodes a value; the typed layer above does.
//!
//! # The contract
//! - [`load`](SessionStore::load) returns every field except the deferred
//!   ones, and never returns an expired session, whether or not cleanup has
//!   run.
//! - New sessions are [`create`](SessionStore::create)d with a plain insert
//!   that reports a taken key; existing ones are only ever updated by
//!   [`save`](SessionStore::save), never upserted. If the session is gone when
//!   a save arrives (a concurrent logout), the save writes nothing and
//!   returns [`Saved::Gone`]: a logout is never undone by a slower request.
//! - Two saves that change different fields of one session both keep their
//!   change; two that add the same new field do not fail.
//!
//! The behaviour suite in `session_core::testing` (feature `testing`) checks all of
//! this; run it against any store you write.
//!
//! # A custom store
//! ```
//! use std::collections::HashMap;
//! use std::sync::Mutex;
//! use session_core::store::{Changes, Record, Saved, SessionStore, Validity, ExpiryUpdate};
//! use session_core::{Result, StoreKey};
//!
//! #[derive(Debug, Default)]
//! struct TinyStore(Mutex<HashMap<StoreKey, (i64, i64, HashMap<String, Vec<u8>>)>>);
//!
//! #[session_core::async_trait]
//! impl SessionStore for TinyStore {
//!     async fn load(&self, key: &StoreKey, skip: &[&str], at: Validity) -> Result<Option<Record>> {
//!         let map = self.0.lock().unwrap();
//!         Ok(map.get(key).filter(|s| at.admits(s.0, s.1)).map(|(created_at, expires_at, fields)| Record {
//!             created_at: *created_at,
//!             expires_at: *expires_at,
//!             fields: fields.iter().filter(|(n, _)| !skip.contains(&n.as_str()))
//!                 .map(|(n, v)| (n.clone(), v.clone())).collect(),
//!         }))
//!     }
//!     async fn load_field(&self, key: &StoreKey, name: &str, at: Validity) -> Result<Option<Vec<u8>>> {
//!         let map = self.0.lock().unwrap();
//!         Ok(map.get(key).filter(|s| at.admits(s.0, s.1)).and_then(|s| s.2.get(name).cloned()))
//!     }
//!     async fn create(&self, key: &StoreKey, created_at: i64, expires_at: i64, fields: &[(&'static str, Vec<u8>)]) -> Result<bool> {
//!         let mut map = self.0.lock().unwrap();
//!         if map.contains_key(key) { return Ok(false); }
//!         let fields = fields.iter().map(|(n, v)| (n.to_string(), v.clone())).collect();
//!         map.insert(*key, (created_at, expires_at, fields));
//!         Ok(true)
//!     }
//!     async fn save(&self, key: &StoreKey, changes: &Changes, at: Validity) -> Result<Saved> {
//!         let mut map = self.0.lock().unwrap();
//!         let Some(s) = map.get_mut(key).filter(|s| at.admits(s.0, s.1)) else { return Ok(Saved::Gone) };
//!         for (n, v) in &changes.upsert { s.2.insert(n.to_string(), v.clone()); }
//!         for n in &changes.remove { s.2.remove(*n); }
//!         match changes.expiry {
//!             Some(ExpiryUpdate::Extend(t)) => s.1 = s.1.max(t),
//!             Some(ExpiryUpdate::Set(t)) => s.1 = t,
//!             None => {}
//!         }
//!         Ok(Saved::Saved)
//!     }
//!     async fn rename(&self, from: &StoreKey, to: &StoreKey, at: Validity) -> Result<bool> {
//!         let mut map = self.0.lock().unwrap();
//!         match map.remove(from) {
//!             Some(s) if at.admits(s.0, s.1) => { map.insert(*to, s); Ok(true) }
//!             _ => Ok(false),
//!         }
//!     }
//!     async fn destroy(&self, key: &StoreKey) -> Result<()> {
//!         self.0.lock().unwrap().remove(key);
//!         Ok(())
//!     }
//!     async fn delete_expired(&self, now: i64, _batch: u32) -> Result<u64> {
//!         let mut map = self.0.lock().unwrap();
//!         let before = map.len();
//!         map.retain(|_, s| s.1 > now);
//!         Ok((before - map.len()) as u64)
//!     }
//! }
//! ```

use std::fmt::Debug;

use async_trait::async_trait;

use crate::error::Result;
use crate::token::StoreKey;

pub mod cleanup;
#[cfg(feature = "memory")]
pub mod memory;
mod names;
mod stats;

#[cfg(feature = "sql")]
pub mod sql;

#[cfg(feature = "mysql")]
pub mod mysql;

#[cfg(feature = "sqlite")]
pub mod sqlite;

pub use names::validate_prefix;
pub use stats::{Counters, StoreStats};

/// Seconds since the Unix epoch, UTC.
pub type Timestamp = i64;

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
}

/// A loaded session: its timestamps and the raw bytes of its non-deferred
/// fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    /// When the session was created.
    pub created_at: Timestamp,
    /// When the session expires unless touched.
    pub expires_at: Timestamp,
    /// `(stored name, bytes)` of every stored field the load did not skip.
    pub fields: Vec<(String, Vec<u8>)>,
}

/// How a save moves the session's expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpiryUpdate {
    /// Move `expires_at` to this instant if that is later (a touch): a touch
    /// never shortens a session.
    Extend(Timestamp),
    /// Set `expires_at` to exactly this (an explicit `set_expiry`).
    Set(Timestamp),
}

/// What one request changed in an existing session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// Fields to write: `(stored name, encoded bytes)`.
    pub upsert: Vec<(&'static str, Vec<u8>)>,
    /// Fields to delete.
    pub remove: Vec<&'static str>,
    /// A new expiry, if any.
    pub expiry: Option<ExpiryUpdate>,
}

impl Changes {
    /// Nothing to write.
    pub fn is_empty(&self) -> bool {
        self.upsert.is_empty() && self.remove.is_empty() && self.expiry.is_none()
    }
}

/// The outcome of [`SessionStore::save`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Saved {
    /// The changes are stored.
    Saved,
    /// The session no longer exists (destroyed or expired); nothing was
    /// written.
    Gone,
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
    /// ones). `None` when there is no such session or it has expired.
    async fn load(&self, key: &StoreKey, skip: &[&str], at: Validity) -> Result<Option<Record>>;

    /// Loads one field of a live session (a deferred field's own query).
    async fn load_field(&self, key: &StoreKey, name: &str, at: Validity)
        -> Result<Option<Vec<u8>>>;

    /// Inserts a new session with its first fields. `Ok(false)` when the key
    /// is taken (the caller retries with a fresh token); never overwrites.
    async fn create(
        &self,
        key: &StoreKey,
        created_at: Timestamp,
        expires_at: Timestamp,
        fields: &[(&'static str, Vec<u8>)],
    ) -> Result<bool>;

    /// Applies a request's changes to a live session, atomically per
    /// statement and only if the session still exists.
    async fn save(&self, key: &StoreKey, changes: &Changes, at: Validity) -> Result<Saved>;

    /// Moves a live session to a new key, keeping its data (regenerate).
    /// `Ok(false)` when there was no live session under `from`.
    async fn rename(&self, from: &StoreKey, to: &StoreKey, at: Validity) -> Result<bool>;

    /// Deletes a session and all its fields. Deleting a missing session is
    /// not an error.
    async fn destroy(&self, key: &StoreKey) -> Result<()>;

    /// Deletes at most `batch` sessions that expired at or before `now`;
    /// returns how many. Safe to run from several processes at once.
    async fn delete_expired(&self, now: Timestamp, batch: u32) -> Result<u64>;

    /// Work counters since the store was built.
    fn stats(&self) -> StoreStats {
        StoreStats::default()
    }
}
