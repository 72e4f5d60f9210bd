//! The in-memory store: for tests and development.
//!
//! Everything lives in one process and vanishes on restart; it is not shared
//! between instances. A `std` mutex guards the map: it is never held across
//! an `.await`, and every operation is a few map lookups.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::error::Result;
use crate::store::{
    Changes, Counters, ExpiryUpdate, Record, Saved, SessionStore, StoreStats, Timestamp, Validity,
};
use crate::token::StoreKey;

#[derive(Debug)]
struct Entry {
    created_at: Timestamp,
    expires_at: Timestamp,
    fields: HashMap<String, Vec<u8>>,
}

impl Entry {
    fn alive(&self, at: Validity) -> bool {
        at.admits(self.created_at, self.expires_at)
    }
}

/// Sessions in a `HashMap`, honouring expiry, safe under concurrent use.
///
/// ```
/// use std::sync::Arc;
/// use session_core::store::{memory::MemoryStore, SessionStore};
///
/// let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
/// ```
#[derive(Debug, Default)]
pub struct MemoryStore {
    sessions: Mutex<HashMap<StoreKey, Entry>>,
    counters: Counters,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of sessions held, expired ones included (until cleanup).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether the store holds no session.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<StoreKey, Entry>> {
        // A panic while holding this lock cannot leave the map half-updated
        // (every mutation is a single insert/remove), so poisoning is ignored.
        self.sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn load(&self, key: &StoreKey, skip: &[&str], at: Validity) -> Result<Option<Record>> {
        self.counters.statement();
        let map = self.lock();
        Ok(map.get(key).filter(|e| e.alive(at)).map(|e| Record {
            created_at: e.created_at,
            expires_at: e.expires_at,
            fields: e
                .fields
                .iter()
                .filter(|(name, _)| !skip.contains(&name.as_str()))
                .map(|(name, value)| (name.clone(), value.clone()))
                .collect(),
        }))
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
            .get(key)
            .filter(|e| e.alive(at))
            .and_then(|e| e.fields.get(name).cloned()))
    }

    async fn create(
        &self,
        key: &StoreKey,
        created_at: Timestamp,
        expires_at: Timestamp,
        fields: &[(&'static str, Vec<u8>)],
    ) -> Result<bool> {
        self.counters.statement();
        let mut map = self.lock();
        if map.contains_key(key) {
            return Ok(false);
        }
        self.counters
            .wrote(fields.iter().map(|(_, v)| v.as_slice()));
        let fields = fields
            .iter()
            .map(|(name, value)| (name.to_string(), value.clone()))
            .collect();
        map.insert(
            *key,
            Entry {
                created_at,
                expires_at,
                fields,
            },
        );
        Ok(true)
    }

    async fn save(&self, key: &StoreKey, changes: &Changes, at: Validity) -> Result<Saved> {
        self.counters.statement();
        let mut map = self.lock();
        let Some(entry) = map.get_mut(key).filter(|e| e.alive(at)) else {
            return Ok(Saved::Gone);
        };
        self.counters
            .wrote(changes.upsert.iter().map(|(_, v)| v.as_slice()));
        for (name, value) in &changes.upsert {
            entry.fields.insert((*name).to_string(), value.clone());
        }
        for name in &changes.remove {
            entry.fields.remove(*name);
        }
        match changes.expiry {
            Some(ExpiryUpdate::Extend(t)) => entry.expires_at = entry.expires_at.max(t),
            Some(ExpiryUpdate::Set(t)) => entry.expires_at = t,
            None => {}
        }
        Ok(Saved::Saved)
    }

    async fn rename(&self, from: &StoreKey, to: &StoreKey, at: Validity) -> Result<bool> {
        self.counters.statement();
        let mut map = self.lock();
        if map.contains_key(to) || !map.get(from).is_some_and(|e| e.alive(at)) {
            return Ok(false);
        }
        match map.remove(from) {
            Some(entry) => {
                map.insert(*to, entry);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn destroy(&self, key: &StoreKey) -> Result<()> {
        self.counters.statement();
        self.lock().remove(key);
        Ok(())
    }

    async fn delete_expired(&self, now: Timestamp, batch: u32) -> Result<u64> {
        self.counters.statement();
        let mut map = self.lock();
        let expired: Vec<StoreKey> = map
            .iter()
            .filter(|(_, e)| e.expires_at <= now)
            .map(|(k, _)| *k)
            .take(batch as usize)
            .collect();
        for key in &expired {
            map.remove(key);
        }
        Ok(expired.len() as u64)
    }

    fn stats(&self) -> StoreStats {
        self.counters.snapshot()
    }
}
