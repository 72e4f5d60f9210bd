//! The shared, per-application half of sessions: the store and the config.

use std::fmt;
use std::sync::Arc;

use crate::config::Config;
use crate::error::Result;
use crate::store::SessionStore;

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
        Ok(SessionManager {
            inner: Arc::new(Inner { store, config }),
        })
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn SessionStore> {
        &self.inner.store
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
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
