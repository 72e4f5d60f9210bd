//! What every request of one application shares: where sessions are
//! kept, how they ride in their cookies, the configuration, the sealer
//! of stored values and the per-field update locks. The
//! [`SessionManager`](crate::SessionManager) is its public face; the
//! per-request state holds it directly, so it knows nothing of requests.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use crate::carrier::Carrier;
use crate::config::Config;
use crate::sealing::Sealer;
use crate::store::SessionStore;
use crate::token::StoreKey;

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
        }
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
