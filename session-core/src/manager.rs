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
    /// Seals and opens whole sessions in cookies (the cookie store).
    cookie_sealer: Option<Sealer>,
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
    ///
    /// With the [cookie store](crate::store::cookie), `encryption_keys`
    /// seal the whole session into the cookie (each value is not sealed
    /// again inside it) and `signing_keys` are not used: the seal
    /// authenticates the cookie.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) when the configuration is
    /// invalid, or the cookie store has no `encryption_keys`.
    pub fn new(store: Arc<dyn SessionStore>, config: Config) -> Result<Self> {
        config.validate()?;
        let signer = CookieSigner::new(&config.signing_keys)?;
        let mut sealer = Sealer::new(&config.encryption_keys)?;
        let mut cookie_sealer = None;
        if store.in_cookie() {
            cookie_sealer = Some(sealer.take().ok_or_else(|| {
                crate::Error::config(
                    "the cookie store seals each session into its cookie with `encryption_keys`, \
                     and none is set: add one (`openssl rand -base64 32`)",
                )
            })?);
        }
        Ok(SessionManager {
            inner: Arc::new(Inner {
                store,
                config,
                locks: FieldLocks::default(),
                signer,
                sealer,
                cookie_sealer,
            }),
        })
    }

    /// Whether this manager's store can keep session type `T`: every store
    /// can, except the [cookie store](crate::store::cookie), which keeps no
    /// `#[session(index)]` field (there is no server-side record to find
    /// sessions by) and no `#[session(versioned)]` one (concurrent requests
    /// each send back the whole cookie, so no version can hold across
    /// them). Web integrations ask once per type, before a handler runs.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) naming the type, the field
    /// and why.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use session_core::{Config, sealing::EncryptionKey, SessionManager, store::cookie::CookieStore};
    /// # let config = Config {
    /// #     encryption_keys: vec![EncryptionKey::new("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")],
    /// #     ..Config::default()
    /// # };
    /// # let manager = SessionManager::new(Arc::new(CookieStore::new()), config).unwrap();
    /// // `Cart` has plain fields; `Account` has `#[session(index)] user_id`.
    /// use session_core::testing::{Account, Cart};
    ///
    /// assert!(manager.supports::<Cart>().is_ok());
    /// let error = manager.supports::<Account>().unwrap_err();
    /// assert!(error.to_string().contains("`user_id`"));
    /// ```
    pub fn supports<T: crate::SessionData>(&self) -> Result<()> {
        if self.inner.cookie_sealer.is_none() {
            return Ok(());
        }
        let Some(field) = T::FIELDS.iter().find(|f| f.indexed || f.versioned) else {
            return Ok(());
        };
        let (attribute, why) = if field.indexed {
            (
                "index",
                "finding a user's sessions needs a server-side store",
            )
        } else {
            (
                "versioned",
                "concurrent requests each send back the whole cookie, so no version holds across them",
            )
        };
        Err(crate::Error::config(format!(
            "`{}` cannot be kept by the cookie store: its field `{}` is `#[session({attribute})]`, \
             and {why}; use a server-side store (mysql://, postgres://, redis://, sqlite://) or \
             drop the attribute",
            std::any::type_name::<T>(),
            field.name,
        )))
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

    /// The sealer of whole sessions, with the cookie store.
    pub(crate) fn cookie_sealer(&self) -> Option<&Sealer> {
        self.inner.cookie_sealer.as_ref()
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
        (config.cleanup_interval > 0 && !self.store().in_cookie()).then(|| {
            tokio::spawn(crate::store::cleanup::run(
                self.store().clone(),
                std::time::Duration::from_secs(config.cleanup_interval),
                config.cleanup_batch.max(1),
                config.max_lifetime,
            ))
        })
    }
}
