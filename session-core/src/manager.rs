//! The per-application half of sessions, as applications see it: a store
//! (or cookies) and a configuration, from which each request's session is
//! begun.

use std::fmt;
use std::sync::Arc;

use crate::carrier;
use crate::config::Config;
use crate::context::Context;
pub use crate::context::SessionTypeInfo;
use crate::error::Result;
use crate::schema::SessionData;
use crate::sealing::Sealer;
use crate::state::RequestSession;
use crate::store::{SessionStore, Timestamp};

/// The store and configuration every request's session is begun from.
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
    ctx: Arc<Context>,
}

impl fmt::Debug for SessionManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionManager")
            .field("store", &self.ctx.store)
            .field("cookie_name", &self.ctx.config.cookie_name)
            .finish_non_exhaustive()
    }
}

impl SessionManager {
    /// Pairs a store with a validated configuration. The cookie carries
    /// the token, signed when `signing_keys` are set.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) when the configuration is invalid.
    pub fn new(store: Arc<dyn SessionStore>, config: Config) -> Result<Self> {
        config.validate()?;
        if let (Some(_), Some(why)) = (config.rotate_after, store.cannot_rotate()) {
            return Err(crate::Error::config(format!(
                "`rotate_after` is not available on this store ({}): {why}",
                store.name()
            )));
        }
        let carrier = carrier::select(&config, false)?;
        let sealer = Sealer::new(&config.encryption_keys)?;
        Ok(Self::from(Context::new(
            Some(store),
            carrier,
            config,
            sealer,
        )))
    }

    /// Sessions kept whole in their cookies, sealed with the first of
    /// `encryption_keys` (every key opens): no server-side store (see
    /// [`carrier::sealed`](crate::carrier::sealed) for what that mode
    /// cannot do). What `url = "cookie"` selects.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) when the configuration is
    /// invalid or has no `encryption_keys`.
    #[cfg(feature = "cookie")]
    #[cfg_attr(docsrs, doc(cfg(feature = "cookie")))]
    pub fn in_cookies(config: Config) -> Result<Self> {
        config.validate()?;
        if config.rotate_after.is_some() {
            return Err(crate::Error::config(
                "`rotate_after` needs a server-side store: a session kept whole in its cookie \
                 has no state on the server that could tell a replaced token, or a copied \
                 cookie, from the current one (remove `rotate_after`, or keep sessions in a \
                 database or Redis)",
            ));
        }
        let carrier = carrier::select(&config, true)?;
        Ok(Self::from(Context::new(None, carrier, config, None)))
    }

    #[cfg(test)]
    pub(crate) fn context(&self) -> Arc<Context> {
        self.ctx.clone()
    }

    fn from(ctx: Context) -> Self {
        crate::observe::describe();
        SessionManager { ctx: Arc::new(ctx) }
    }

    /// Delivers lifecycle events to `events`' handlers (see
    /// [`events`](crate::events)), on a thread of their own. Call it
    /// before the manager is cloned or used: it is part of building it.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) when the manager was
    /// already cloned, or the delivery thread could not start.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use session_core::events::Events;
    /// use session_core::{store::memory::MemoryStore, Config, SessionManager};
    ///
    /// let manager = SessionManager::new(Arc::new(MemoryStore::new()), Config::default())
    ///     .unwrap()
    ///     .with_events(Events::new().on(|event| println!("{:?}", event.kind)))
    ///     .unwrap();
    /// ```
    pub fn with_events(mut self, events: crate::events::Events) -> Result<Self> {
        if events.is_empty() {
            return Ok(self);
        }
        let ctx = Arc::get_mut(&mut self.ctx).ok_or_else(|| {
            crate::Error::config("`with_events` must be called before the manager is cloned")
        })?;
        let hub = crate::events::Hub::start(events).map_err(|e| {
            crate::Error::config(format!("could not start the session event thread: {e}"))
        })?;
        ctx.events = Some(hub);
        Ok(self)
    }

    /// Events queued and not yet handled (tests wait for 0).
    #[doc(hidden)]
    pub fn pending_events(&self) -> usize {
        self.ctx.events().map_or(0, crate::events::Hub::pending)
    }

    /// Waits until every queued event was handled, at most `grace` (at
    /// shutdown, after the last requests).
    pub async fn drain_events(&self, grace: std::time::Duration) {
        if let Some(hub) = self.ctx.events() {
            hub.drain(grace).await;
        }
    }

    /// The `#[session(index)]` and `#[session(versioned)]` fields of the
    /// session types checked by [`supports`](Self::supports) so far, by
    /// type: what launch logs say is in use.
    pub fn session_types(&self) -> Vec<SessionTypeInfo> {
        self.ctx
            .types
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|(_, info)| info.clone())
            .collect()
    }

    /// Whether session type `T` can be kept here: every store keeps every
    /// type, except that `#[session(index)]` fields need a store with
    /// [indexes](crate::store::SessionStore::indexes), and sessions kept in
    /// cookies keep no `#[session(index)]` field (there is no server-side
    /// record to find sessions by) and no `#[session(versioned)]` one
    /// (concurrent requests each send back the whole cookie, so no version
    /// can hold across them). Web integrations ask once per type, before a
    /// handler runs.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) naming the type, the field
    /// and why.
    ///
    /// ```
    /// # use session_core::{Config, sealing::EncryptionKey, SessionManager};
    /// # let config = Config {
    /// #     encryption_keys: vec![EncryptionKey::new("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")],
    /// #     ..Config::default()
    /// # };
    /// let manager = SessionManager::in_cookies(config).unwrap();
    /// // `Cart` has plain fields; `Account` has `#[session(index)] user_id`.
    /// use session_core::testing::{Account, Cart};
    ///
    /// assert!(manager.supports::<Cart>().is_ok());
    /// let error = manager.supports::<Account>().unwrap_err();
    /// assert!(error.to_string().contains("`user_id`"));
    /// ```
    pub fn supports<T: SessionData>(&self) -> Result<()> {
        let names = |pick: fn(&crate::schema::FieldDef) -> bool| {
            T::FIELDS
                .iter()
                .filter(|f| pick(f))
                .map(|f| f.name)
                .collect::<Vec<_>>()
        };
        self.ctx
            .register_type(T::FIELDS.as_ptr() as usize, || SessionTypeInfo {
                name: std::any::type_name::<T>(),
                indexed: names(|f| f.indexed),
                versioned: names(|f| f.versioned),
            });
        let refusal = T::FIELDS.iter().find_map(|field| {
            if let Some((attribute, why)) = self.ctx.carrier.refuses(field.indexed, field.versioned)
            {
                // A flash field is versioned for its take: name what the
                // app wrote.
                let attribute = if field.flash { "flash" } else { attribute };
                return Some((field, attribute, why, "sessions kept in cookies"));
            }
            let indexes = self.store().is_some_and(|s| s.indexes().is_some());
            (field.indexed && !indexes).then_some((
                field,
                "index",
                "finding a user's sessions needs a store with indexes",
                "this store",
            ))
        });
        let Some((field, attribute, why, what)) = refusal else {
            return Ok(());
        };
        Err(crate::Error::config(format!(
            "`{}` cannot be kept by {what}: its field `{}` is `#[session({attribute})]`, \
             and {why}; use a server-side store (mysql://, postgres://, redis://, sqlite://) or \
             drop the attribute",
            std::any::type_name::<T>(),
            field.name,
        )))
    }

    /// The store sessions are kept in; `None` when they are kept in their
    /// cookies.
    pub fn store(&self) -> Option<&Arc<dyn SessionStore>> {
        self.ctx.store.as_ref()
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.ctx.config
    }

    /// The session of one request, from the request's cookie value (if
    /// any); every session type the request uses opens from it
    /// ([`RequestSession::open`]), so they share one token. Never touches
    /// a store: a malformed, forged or dead cookie is treated as no
    /// cookie, and an unknown one is found out on first use.
    pub fn begin(&self, cookie: Option<&str>) -> RequestSession {
        self.begin_at(cookie, crate::clock::now())
    }

    /// [`begin`](Self::begin) for a request to `route`: a stable id of
    /// the handler it goes to (web integrations pass one per route). The
    /// first load of each session type then fetches only the fields that
    /// earlier requests of the route used, and a read of any other field
    /// loads the rest (one more statement, at most once per request and
    /// type): fewer rows and bytes for the same one statement once a route
    /// has settled. What a request reads and writes is the same either way.
    pub fn begin_for(&self, cookie: Option<&str>, route: u64) -> RequestSession {
        self.begin_with(cookie, Some(route), crate::clock::now())
    }

    /// [`begin`](Self::begin) at a given instant (for tests of expiry).
    #[doc(hidden)]
    pub fn begin_at(&self, cookie: Option<&str>, now: Timestamp) -> RequestSession {
        self.begin_with(cookie, None, now)
    }

    /// [`begin_for`](Self::begin_for) at a given instant (for tests).
    #[doc(hidden)]
    pub fn begin_with(
        &self,
        cookie: Option<&str>,
        route: Option<u64>,
        now: Timestamp,
    ) -> RequestSession {
        let at = crate::store::Validity::at(&self.ctx.config, now);
        let arrival = self.ctx.carrier.read(cookie, at);
        RequestSession::new(self.ctx.clone(), arrival, route, now)
    }

    /// A typed handle for a request that uses one session type:
    /// [`begin`](Self::begin) then [`RequestSession::open`].
    pub fn open<T: SessionData>(&self, cookie: Option<&str>) -> T::Handle {
        self.begin(cookie).open::<T>()
    }

    /// [`open`](Self::open) at a given instant (for tests of expiry).
    #[doc(hidden)]
    pub fn open_at<T: SessionData>(&self, cookie: Option<&str>, now: Timestamp) -> T::Handle {
        self.begin_at(cookie, now).open::<T>()
    }

    /// Starts the expired-session cleanup on the current Tokio runtime:
    /// every `cleanup_interval` seconds (the first pass after one
    /// interval), `cleanup_batch` sessions per statement, sessions past
    /// `max_lifetime` included. `None` when `cleanup_interval = 0`. Abort
    /// the task at shutdown; errors are logged and the next pass retries.
    /// Sessions kept in cookies need none: an expired cookie opens to no
    /// session.
    pub fn spawn_cleanup(&self) -> Option<tokio::task::JoinHandle<()>> {
        let config = self.config();
        let store = self.store().filter(|_| config.cleanup_interval > 0)?;
        Some(tokio::spawn(crate::cleanup::run(
            self.ctx.clone(),
            store.clone(),
            std::time::Duration::from_secs(config.cleanup_interval),
            config.cleanup_batch.max(1),
            config.max_lifetime,
        )))
    }
}
