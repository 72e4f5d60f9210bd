//! The in-memory store: for tests and development.
//!
//! Everything lives in one process and vanishes on restart; it is not shared
//! between instances. A `std` mutex guards the map: it is never held across
//! an `.await`, and every operation is a few map lookups.
//!
//! The store holds at most [`capacity`](MemoryStore::with_capacity)
//! sessions (`memory_max_sessions` in the configuration, default
//! [`DEFAULT_CAPACITY`]). When a new session would pass it, the sessions
//! that are no longer alive are dropped first; if the store is still full,
//! the new session is refused with [`Error::Unavailable`] (a 503 in a web
//! app) and nothing else is touched: existing sessions are never evicted to
//! make room.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::store::LIFETIME_PREFIX;
use crate::store::{
    Changes, Counters, Ended, ExpiryUpdate, IndexTag, NewSession, PreviousKey, Record, Replaced,
    Saved, SessionIndexes, SessionStore, StoreStats, Timestamp, Validity,
};
use crate::token::StoreKey;

/// The default cap on the number of sessions a [`MemoryStore`] holds.
pub const DEFAULT_CAPACITY: usize = crate::config::DEFAULT_MEMORY_MAX_SESSIONS;

#[derive(Debug)]
struct Entry {
    created_at: Timestamp,
    expires_at: Timestamp,
    idle_timeout: Timestamp,
    persistent: Option<bool>,
    fields: HashMap<String, Vec<u8>>,
    /// Versions of the fields ever written with an expectation; a field
    /// not here has version 0.
    versions: HashMap<String, u64>,
    /// The session's index entries: index name → tag.
    index: HashMap<String, IndexTag>,
}

impl Entry {
    fn alive(&self, at: Validity) -> bool {
        at.admits(self.created_at, self.expires_at)
    }

    fn cap(&self, at: Validity, expires_at: Timestamp) -> Timestamp {
        expires_at.min(self.created_at.saturating_add(at.max_lifetime()))
    }
}

#[derive(Debug, Default)]
struct Map {
    sessions: HashMap<StoreKey, Entry>,
    /// Previous key → the key that replaced it.
    previous: HashMap<StoreKey, Marker>,
}

/// A replaced key's record.
#[derive(Debug, Clone, Copy)]
struct Marker {
    /// The key that replaced it.
    to: StoreKey,
    /// Its grace: until when it reaches the session.
    until: Timestamp,
    reason: Replaced,
    /// Until when it is kept: a rotated key while its session may live,
    /// so a replay is recognised.
    kept_until: Timestamp,
}

impl Marker {
    fn kept(&self, now: Timestamp) -> bool {
        self.until > now || self.kept_until > now
    }
}

impl Map {
    /// The key of the session `key` names now, following every rename
    /// after it (bounded: see `MAX_RENAMES_FOLLOWED`).
    fn current(&self, key: &StoreKey, now: Timestamp) -> Option<StoreKey> {
        let mut key = *key;
        for _ in 0..=super::MAX_RENAMES_FOLLOWED {
            if self.sessions.contains_key(&key) {
                return Some(key);
            }
            key = self.previous.get(&key).filter(|m| m.kept(now))?.to;
        }
        None
    }
}

/// Sessions in a `HashMap`, honouring expiry, safe under concurrent use.
///
/// ```
/// use std::sync::Arc;
/// use session_core::store::{memory::MemoryStore, SessionStore};
///
/// let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::with_capacity(1_000));
/// ```
#[derive(Debug)]
pub struct MemoryStore {
    map: Mutex<Map>,
    capacity: usize,
    counters: Counters,
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::with_capacity(DEFAULT_CAPACITY)
    }
}

impl MemoryStore {
    /// An empty store holding at most [`DEFAULT_CAPACITY`] sessions.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store holding at most `capacity` sessions (see the module
    /// docs for what happens at the cap).
    pub fn with_capacity(capacity: usize) -> Self {
        MemoryStore {
            map: Mutex::new(Map::default()),
            capacity,
            counters: Counters::default(),
        }
    }

    /// Number of sessions held, expired ones included (until cleanup).
    pub fn len(&self) -> usize {
        self.lock().sessions.len()
    }

    /// Whether the store holds no session.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Map> {
        // A panic while holding this lock cannot leave the map half-updated
        // (every mutation completes before anything can panic), so
        // poisoning is ignored.
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Opens the memory store for `url = "memory"` (see [`open`](super::open)).
pub(crate) fn open_url<'a>(_url: &'a str, config: &'a Config) -> super::Opening<'a> {
    let store: Arc<dyn SessionStore> =
        Arc::new(MemoryStore::with_capacity(config.memory_max_sessions));
    Box::pin(std::future::ready(Ok(store)))
}

#[async_trait]
impl SessionIndexes for MemoryStore {
    /// A scan of every session: the memory store keeps no reverse map, as
    /// it serves tests and development.
    async fn find(&self, name: &str, tags: &[IndexTag], at: Validity) -> Result<Vec<StoreKey>> {
        self.counters.statement();
        let map = self.lock();
        Ok(map
            .sessions
            .iter()
            .filter(|(_, e)| e.alive(at) && e.index.get(name).is_some_and(|t| tags.contains(t)))
            .map(|(k, _)| *k)
            .collect())
    }

    async fn destroy_found(
        &self,
        name: &str,
        tags: &[IndexTag],
        except: Option<&StoreKey>,
    ) -> Result<Vec<StoreKey>> {
        self.counters.statement();
        let mut map = self.lock();
        let found: Vec<StoreKey> = map
            .sessions
            .iter()
            .filter(|(k, e)| {
                Some(*k) != except && e.index.get(name).is_some_and(|t| tags.contains(t))
            })
            .map(|(k, _)| *k)
            .collect();
        for key in &found {
            map.sessions.remove(key);
        }
        Ok(found)
    }

    async fn destroy_one(&self, name: &str, tags: &[IndexTag], key: &StoreKey) -> Result<bool> {
        self.counters.statement();
        let mut map = self.lock();
        let owned = map
            .sessions
            .get(key)
            .is_some_and(|e| e.index.get(name).is_some_and(|t| tags.contains(t)));
        Ok(owned && map.sessions.remove(key).is_some())
    }
}

impl MemoryStore {
    /// A live session with the fields whose names `wanted` keeps.
    fn load_where(
        &self,
        key: &StoreKey,
        at: Validity,
        wanted: impl Fn(&str) -> bool,
    ) -> Result<Option<Record>> {
        self.counters.statement();
        let map = self.lock();
        let record = map.sessions.get(key).filter(|e| e.alive(at)).map(|e| {
            let mut record = Record {
                created_at: e.created_at,
                expires_at: e.expires_at,
                idle_timeout: e.idle_timeout,
                persistent: e.persistent,
                fields: e
                    .fields
                    .iter()
                    .map(|(name, value)| (name.clone(), value.clone()))
                    .collect(),
                versions: e
                    .versions
                    .iter()
                    .filter(|(name, _)| wanted(name) && e.fields.contains_key(*name))
                    .map(|(name, version)| (name.clone(), *version))
                    .collect(),
            };
            record.drop_expired(at.now);
            record.fields.retain(|(name, _)| wanted(name));
            record
        });
        if let Some(r) = &record {
            self.counters.loaded(r.fields.len());
        }
        Ok(record)
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn load(&self, key: &StoreKey, skip: &[&str], at: Validity) -> Result<Option<Record>> {
        self.load_where(key, at, |name| !skip.contains(&name))
    }

    async fn load_only(
        &self,
        key: &StoreKey,
        only: &[&str],
        at: Validity,
    ) -> Result<Option<Record>> {
        self.load_where(key, at, |name| only.contains(&name))
    }

    async fn load_field(
        &self,
        key: &StoreKey,
        name: &str,
        at: Validity,
    ) -> Result<Option<Vec<u8>>> {
        self.counters.statement();
        let map = self.lock();
        Ok(map
            .sessions
            .get(key)
            .filter(|e| e.alive(at))
            .filter(|e| {
                let lifetime = e.fields.get(&format!("{LIFETIME_PREFIX}{name}"));
                let until = lifetime.and_then(|v| std::str::from_utf8(v).ok()?.parse::<i64>().ok());
                until.is_none_or(|until| until > at.now)
            })
            .and_then(|e| e.fields.get(name).cloned())
            .inspect(|_| self.counters.loaded(1)))
    }

    async fn create(
        &self,
        key: &StoreKey,
        session: NewSession,
        fields: &[(&'static str, Vec<u8>)],
    ) -> Result<bool> {
        self.counters.statement();
        let mut map = self.lock();
        if map.sessions.contains_key(key) {
            return Ok(false);
        }
        if map.sessions.len() >= self.capacity {
            let now = session.created_at;
            map.sessions.retain(|_, e| e.expires_at > now);
            map.previous.retain(|_, m| m.kept(now));
            if map.sessions.len() >= self.capacity {
                return Err(Error::Unavailable(
                    format!(
                        "the memory session store is full ({} sessions, `memory_max_sessions`); \
                         use a mysql:// or sqlite:// store for real traffic",
                        self.capacity
                    )
                    .into(),
                ));
            }
        }
        self.counters
            .wrote(fields.iter().map(|(_, v)| v.as_slice()));
        let fields = fields
            .iter()
            .map(|(name, value)| (name.to_string(), value.clone()))
            .collect();
        map.sessions.insert(
            *key,
            Entry {
                created_at: session.created_at,
                expires_at: session.expires_at,
                idle_timeout: session.idle_timeout,
                persistent: session.persistent,
                fields,
                versions: HashMap::new(),
                index: HashMap::new(),
            },
        );
        Ok(true)
    }

    async fn save(&self, key: &StoreKey, changes: &Changes, at: Validity) -> Result<Saved> {
        self.counters.statement();
        let mut guard = self.lock();
        let map = &mut *guard;
        if !map.sessions.get(key).is_some_and(|e| e.alive(at)) {
            let moved = map.previous.get(key).is_some_and(|m| m.until > at.now);
            return Ok(if moved { Saved::Moved } else { Saved::Gone });
        }
        if let Some(entry) = map.sessions.get(key) {
            let holds = |e: &crate::store::Expect| {
                let stored = entry
                    .fields
                    .contains_key(e.name)
                    .then(|| entry.versions.get(e.name).copied().unwrap_or(0));
                stored == e.version
            };
            if !changes.expect.iter().all(holds) {
                return Ok(Saved::Conflict);
            }
        }
        let mut key = *key;
        if let Some(rename) = changes.rename {
            if map.sessions.contains_key(&rename.to) {
                return Err(Error::Backend("the new session key is taken".into()));
            }
            let mut kept_until = rename.previous_until;
            if let Some(entry) = map.sessions.remove(&key) {
                if rename.reason == Replaced::Rotated {
                    kept_until = entry.created_at.saturating_add(at.max_lifetime());
                }
                map.sessions.insert(rename.to, entry);
            }
            let marker = Marker {
                to: rename.to,
                until: rename.previous_until,
                reason: rename.reason,
                kept_until,
            };
            map.previous.insert(key, marker);
            key = rename.to;
        }
        let Some(entry) = map.sessions.get_mut(&key) else {
            return Ok(Saved::Gone);
        };
        self.counters
            .wrote(changes.upsert.iter().map(|(_, v)| v.as_slice()));
        if changes.clear {
            entry.fields.clear();
            entry.versions.clear();
            entry.index.clear();
        }
        for (name, value) in &changes.upsert {
            entry.fields.insert((*name).to_string(), value.clone());
            if let Some(expect) = changes.expectation(name) {
                entry.versions.insert((*name).to_string(), expect.next());
            }
        }
        for name in &changes.remove {
            entry.fields.remove(*name);
            entry.versions.remove(*name);
        }
        for update in &changes.index {
            match update.tag {
                Some(tag) => entry.index.insert(update.name.to_string(), tag),
                None => entry.index.remove(update.name),
            };
        }
        match changes.expiry {
            Some(ExpiryUpdate::Extend(t)) => {
                entry.expires_at = entry.cap(at, entry.expires_at.max(t));
            }
            Some(ExpiryUpdate::Set {
                expires_at,
                idle_timeout,
                persistent,
            }) => {
                entry.expires_at = entry.cap(at, expires_at);
                entry.idle_timeout = idle_timeout;
                entry.persistent = persistent;
            }
            None => {}
        }
        Ok(Saved::Saved)
    }

    async fn previous(&self, key: &StoreKey, now: Timestamp) -> Result<Option<PreviousKey>> {
        self.counters.statement();
        let map = self.lock();
        let Some(marker) = map.previous.get(key).copied() else {
            return Ok(None);
        };
        let within_grace = marker.until > now;
        if !within_grace && marker.reason == Replaced::Regenerated {
            return Ok(None);
        }
        Ok(map
            .current(&marker.to, now)
            .filter(|current| {
                map.sessions
                    .get(current)
                    .is_some_and(|e| e.expires_at > now)
            })
            .map(|current| PreviousKey {
                current,
                reason: marker.reason,
                within_grace,
            }))
    }

    async fn destroy(&self, key: &StoreKey, now: Timestamp) -> Result<bool> {
        self.counters.statement();
        let mut map = self.lock();
        // A key replaced by several regenerates within their grace leads
        // to the session through each key that replaced it.
        let mut key = *key;
        for _ in 0..=super::MAX_REGENERATES_IN_GRACE {
            if map.sessions.remove(&key).is_some() {
                return Ok(true);
            }
            match map.previous.get(&key).copied() {
                Some(marker) if marker.until > now => key = marker.to,
                _ => break,
            }
        }
        Ok(false)
    }

    async fn delete_expired(&self, at: Validity, batch: u32) -> Result<Vec<Ended>> {
        self.counters.statement();
        let mut map = self.lock();
        let expired: Vec<StoreKey> = map
            .sessions
            .iter()
            .filter(|(_, e)| !e.alive(at))
            .map(|(k, _)| *k)
            .take(batch as usize)
            .collect();
        let ended = expired
            .into_iter()
            .filter_map(|key| {
                let entry = map.sessions.remove(&key)?;
                Some(Ended {
                    key,
                    fields: entry.fields.into_iter().collect(),
                })
            })
            .collect();
        map.previous.retain(|_, m| m.kept(at.now));
        Ok(ended)
    }

    async fn count_live(&self, at: Validity) -> Result<Option<u64>> {
        let map = self.lock();
        Ok(Some(
            map.sessions.values().filter(|e| e.alive(at)).count() as u64
        ))
    }

    fn name(&self) -> &'static str {
        "memory"
    }

    fn indexes(&self) -> Option<&dyn SessionIndexes> {
        Some(self)
    }

    fn stats(&self) -> StoreStats {
        self.counters.snapshot()
    }
}

#[cfg(test)]
mod tests {
    use super::MemoryStore;
    use crate::store::{NewSession, SessionStore};
    use crate::token::Token;

    fn key() -> crate::token::StoreKey {
        Token::generate().unwrap().store_key()
    }

    #[tokio::test]
    async fn at_the_cap_dead_sessions_go_first_then_new_ones_are_refused() {
        let store = MemoryStore::with_capacity(2);
        let t = crate::clock::now();
        let dead = NewSession {
            created_at: t - 10,
            expires_at: t - 1,
            idle_timeout: 9,
            persistent: None,
        };
        let live = NewSession {
            created_at: t,
            expires_at: t + 60,
            idle_timeout: 60,
            persistent: None,
        };
        assert!(store.create(&key(), dead, &[]).await.unwrap());
        assert!(store.create(&key(), live, &[]).await.unwrap());
        assert!(
            store.create(&key(), live, &[]).await.unwrap(),
            "the dead one made room"
        );
        let err = store.create(&key(), live, &[]).await.unwrap_err();
        assert!(err.is_unavailable(), "a 503");
        assert!(err.to_string().contains("unavailable"));
        assert_eq!(store.len(), 2, "no live session was evicted");
    }
}
