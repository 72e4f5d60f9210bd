//! The shared, per-application half of sessions: the store and the config.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use crate::config::Config;
use crate::error::Result;
use crate::sealing::Sealer;
use crate::signing::CookieSigner;
use crate::store::SessionStore;
use crate::token::{StoreKey, Token};

/// The store and configuration every request's session state is built from.
/// Cheap to clone (one `Arc`).
///
/// ```
/// use std::sync::Arc;
/// use session_core::{Config, SessionManager, store::memory::MemoryStore};
///
/// let manager = SessionManager::new(Arc::new(MemoryStore::new()), Config::default()).unwrap();
/// assert_eq!(manager.config().cookie_name, "session");
/// ```
#[derive(Clone)]
pub struct SessionManager {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn SessionStore>,
    config: Config,
    locks: FieldLocks,
    /// Signs and checks cookie values when `signing_keys` are set.
    signer: Option<CookieSigner>,
    /// Seals and opens stored values when `encryption_keys` are set.
    sealer: Option<Sealer>,
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

impl fmt::Debug for SessionManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionManager")
            .field("store", &self.inner.store)
            .field("cookie_name", &self.inner.config.cookie_name)
            .finish_non_exhaustive()
    }
}

impl SessionManager {
    /// Pairs a store with a validated configuration.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) when the configuration is invalid.
    pub fn new(store: Arc<dyn SessionStore>, config: Config) -> Result<Self> {
        config.validate()?;
        let signer = CookieSigner::new(&config.signing_keys)?;
        let sealer = Sealer::new(&config.encryption_keys)?;
        Ok(SessionManager {
            inner: Arc::new(Inner {
                store,
                config,
                locks: FieldLocks::default(),
                signer,
                sealer,
            }),
        })
    }

    /// The token a request's cookie value carries: with `signing_keys`,
    /// only a value signed by one of them; `None` for anything else (the
    /// request then has no session yet).
    pub fn parse_cookie(&self, value: &str) -> Option<Token> {
        match &self.inner.signer {
            Some(signer) => signer.verify(value),
            None => Token::parse(value),
        }
    }

    /// The cookie value for `token`: signed with the first of
    /// `signing_keys`, or the bare token.
    pub fn cookie_value(&self, token: &Token) -> String {
        match &self.inner.signer {
            Some(signer) => signer.sign(token),
            None => token.to_cookie_value(),
        }
    }

    /// The sealer, when stored values are encrypted.
    pub(crate) fn sealer(&self) -> Option<&Sealer> {
        self.inner.sealer.as_ref()
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn SessionStore> {
        &self.inner.store
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Waits for this process's turn to update field `name` of session
    /// `key` (see `FieldLocks`).
    pub(crate) async fn lock_field(&self, key: StoreKey, name: &'static str) -> FieldGuard<'_> {
        let locks = &self.inner.locks;
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

impl SessionManager {
    /// Starts the expired-session cleanup on the current Tokio runtime:
    /// every `cleanup_interval` seconds (the first pass after one
    /// interval), `cleanup_batch` sessions per statement, sessions past
    /// `max_lifetime` included. `None` when `cleanup_interval = 0`. Abort
    /// the task at shutdown; errors are logged and the next pass retries.
    pub fn spawn_cleanup(&self) -> Option<tokio::task::JoinHandle<()>> {
        let config = self.config();
        (config.cleanup_interval > 0).then(|| {
            tokio::spawn(crate::store::cleanup::run(
                self.store().clone(),
                std::time::Duration::from_secs(config.cleanup_interval),
                config.cleanup_batch.max(1),
                config.max_lifetime,
            ))
        })
    }
}
