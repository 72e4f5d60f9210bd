//! What every request of one application shares: where sessions are
//! kept, how they ride in their cookies, the configuration, the sealer
//! of stored values and the per-field update locks. The
//! [`SessionManager`](crate::SessionManager) is its public face; the
//! per-request state holds it directly, so it knows nothing of requests.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, RwLock};

use crate::carrier::Carrier;
use crate::config::Config;
use crate::sealing::Sealer;
use crate::store::SessionStore;
use crate::token::StoreKey;

/// A session type in use, as launch logs describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionTypeInfo {
    /// The type's name.
    pub name: &'static str,
    /// The stored names of its `#[session(index)]` fields.
    pub indexed: Vec<&'static str>,
    /// The stored names of its `#[session(versioned)]` fields.
    pub versioned: Vec<&'static str>,
}

pub(crate) struct Context {
    /// Where sessions are kept; `None` when they are kept in their
    /// cookies (each request then gets a store of its own from the
    /// carrier).
    pub(crate) store: Option<Arc<dyn SessionStore>>,
    /// How a session rides in its cookie.
    pub(crate) carrier: Box<dyn Carrier>,
    pub(crate) config: Config,
    locks: FieldLocks,
    /// Seals and opens stored values when `encryption_keys` are set (not
    /// with sessions kept in cookies: the whole cookie is sealed).
    sealer: Option<Sealer>,
    /// What each route's requests used of each session type.
    learned: RwLock<HashMap<(usize, u64), Arc<Learned>>>,
    /// Where lifecycle events go, when the app registered handlers.
    pub(crate) events: Option<crate::events::Hub>,
    /// The session types in use, by the address of their field list.
    pub(crate) types: RwLock<Vec<(usize, SessionTypeInfo)>>,
}

/// The fields that requests of one route used of one session type: the
/// first load of a later request of that route fetches only these (one
/// statement, as before, but fewer rows and bytes), and a read of any
/// other field loads the rest (one more statement, once per request). It
/// only grows, so a route settles after its first requests.
#[derive(Debug)]
pub(crate) struct Learned {
    /// A first request of the route has loaded: the set below is in use.
    ready: AtomicBool,
    /// By field index: used by some request of the route.
    used: Box<[AtomicBool]>,
}

impl Learned {
    /// Whether the set is in use yet; marks it in use from now on.
    pub(crate) fn take_ready(&self) -> bool {
        self.ready.swap(true, Relaxed)
    }

    pub(crate) fn used(&self, index: usize) -> bool {
        self.used[index].load(Relaxed)
    }

    pub(crate) fn learn(&self, index: usize) {
        if !self.used[index].load(Relaxed) {
            self.used[index].store(true, Relaxed);
        }
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("store", &self.store)
            .field("carrier", &self.carrier)
            .field("cookie_name", &self.config.cookie_name)
            .finish_non_exhaustive()
    }
}

impl Context {
    pub(crate) fn new(
        store: Option<Arc<dyn SessionStore>>,
        carrier: Box<dyn Carrier>,
        config: Config,
        sealer: Option<Sealer>,
    ) -> Self {
        Context {
            store,
            carrier,
            config,
            locks: FieldLocks::default(),
            sealer,
            learned: RwLock::default(),
            events: None,
            types: RwLock::default(),
        }
    }

    /// Notes a session type as in use, by the address of its field list
    /// (`kind`); `info` describes it the first time (its indexed fields
    /// describe the sessions cleanup reports). Cheap when it is known
    /// already: asked on every request.
    pub(crate) fn register_type(&self, kind: usize, info: impl FnOnce() -> SessionTypeInfo) {
        let known = |types: &[(usize, SessionTypeInfo)]| types.iter().any(|(k, _)| *k == kind);
        if known(
            &self
                .types
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        ) {
            return;
        }
        let mut types = self
            .types
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if known(&types) {
            return;
        }
        let info = info();
        if let Some(hub) = &self.events {
            hub.register_indexed(info.indexed.iter().copied());
        }
        types.push((kind, info));
    }

    /// The event delivery, when handlers are registered.
    pub(crate) fn events(&self) -> Option<&crate::events::Hub> {
        self.events.as_ref()
    }

    /// What requests of `route` used of the session type `kind` (the
    /// address of its field list: one `static` per type) of `fields`
    /// fields.
    pub(crate) fn learned(&self, kind: usize, fields: usize, route: u64) -> Arc<Learned> {
        let id = (kind, route);
        if let Some(found) = self
            .learned
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&id)
        {
            return found.clone();
        }
        self.learned
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(id)
            .or_insert_with(|| {
                Arc::new(Learned {
                    ready: AtomicBool::new(false),
                    used: (0..fields).map(|_| AtomicBool::new(false)).collect(),
                })
            })
            .clone()
    }

    /// The configuration.
    pub(crate) fn config(&self) -> &Config {
        &self.config
    }

    /// The sealer, when stored values are encrypted.
    pub(crate) fn sealer(&self) -> Option<&Sealer> {
        self.sealer.as_ref()
    }

    /// Waits for this process's turn to update field `name` of session
    /// `key` (see `FieldLocks`).
    pub(crate) async fn lock_field(&self, key: StoreKey, name: &'static str) -> FieldGuard<'_> {
        let locks = &self.locks;
        let id = (key, name);
        let lock = {
            let mut map = locks
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            map.entry(id).or_default().clone()
        };
        let (lock, waited) = match lock.clone().try_lock_owned() {
            Ok(held) => (held, false),
            Err(_) => (lock.lock_owned().await, true),
        };
        FieldGuard {
            locks,
            id,
            lock: Some(lock),
            waited,
        }
    }
}

/// One FIFO lock per (session, versioned field) being updated in this
/// process: `update_x` calls of one field queue here instead of racing
/// each other's compare-and-set, which would let some lose again and
/// again. Other processes still race through the store's
/// compare-and-set. An entry lives while someone holds or awaits it.
#[derive(Default)]
struct FieldLocks(std::sync::Mutex<HashMap<FieldId, Arc<tokio::sync::Mutex<()>>>>);

/// A session's key and a field's stored name.
type FieldId = (StoreKey, &'static str);

/// A held field lock; dropping it releases the lock and forgets the entry
/// when no one else wants it.
pub(crate) struct FieldGuard<'a> {
    locks: &'a FieldLocks,
    id: FieldId,
    lock: Option<tokio::sync::OwnedMutexGuard<()>>,
    waited: bool,
}

impl FieldGuard<'_> {
    /// Whether another update of the field held the turn first.
    pub(crate) fn waited(&self) -> bool {
        self.waited
    }
}

impl Drop for FieldGuard<'_> {
    fn drop(&mut self) {
        drop(self.lock.take());
        let mut map = self
            .locks
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.get(&self.id).is_some_and(|l| Arc::strong_count(l) == 1) {
            map.remove(&self.id);
        }
    }
}
