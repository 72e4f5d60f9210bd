//! `Sessions`: the fairing that opens the store, starts cleanup and flushes
//! each request's changes. It runs Rocket's phases only: which store a URL
//! names, and how it is opened, prepared and closed, is `session-core`'s
//! business ([`session_core::open`]).

use std::fmt;
use std::sync::Arc;

use rocket::fairing::{self, Fairing, Info, Kind};
use rocket::http::{ContentType, Status};
use rocket::{Build, Orbit, Request, Response, Rocket};
use session_core::store::SessionStore;

use crate::cookie;
use crate::error::log_error;
use crate::guard::Registry;
use crate::source::{Source, StoreBuilder};
use crate::state::SessionsState;

/// The fairing's name, which launch failures and logs show.
const NAME: &str = "Sessions";

/// The sessions fairing: attach it once.
///
/// - **Ignite**: reads `[default.sessions]` (see [`config::extract`](crate::config::extract)),
///   opens the store, makes one round trip to it, and creates the tables
///   unless `create_tables = false`. Any failure refuses launch with a
///   message naming the cause.
/// - **Liftoff**: logs the store in use (never a password) and starts the
///   expired-session cleanup task.
/// - **Response**: writes each request's changed fields and sets the cookie.
///   Nothing is persisted for a 5xx response unless
///   `skip_on_server_error = false`. If the write fails, the response becomes
///   a 503 (store unreachable) or 500, and the cause is logged; if a
///   concurrent request ended the session (a logout in another tab) and this
///   request's changes were dropped, it becomes a 409. The client is never
///   told a change worked when it did not; and the response still carries
///   the cookie of what the request did commit before the failure (a
///   `save()` after `regenerate()` moved the session to a new token: the
///   browser gets that token, so the login is not lost with the error).
/// - **Shutdown**: stops the cleanup task, lets requests in flight finish
///   their save (within Rocket's shutdown grace), then closes the store's
///   own connections.
///
/// ```no_run
/// use session_rocket::Sessions;
///
/// #[rocket::launch]
/// fn rocket() -> _ {
///     rocket::build().attach(Sessions::fairing())
/// }
/// ```
pub struct Sessions {
    source: Source,
    events: session_core::events::Events,
}

impl fmt::Debug for Sessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = match &self.source {
            Source::Config => "config",
            Source::Store(_) => "store",
            Source::Build(kind, _) => kind,
        };
        f.debug_struct("Sessions")
            .field("source", &source)
            .field("events", &self.events)
            .finish()
    }
}

impl Sessions {
    /// The fairing, with the store chosen by `url` in `[default.sessions]`.
    pub fn fairing() -> Self {
        Self::from_source(Source::Config)
    }

    fn from_source(source: Source) -> Self {
        Sessions {
            source,
            events: session_core::events::Events::new(),
        }
    }

    /// Calls `handler` for every lifecycle event: a session created,
    /// regenerated, destroyed (by its request or by "log out
    /// everywhere"), expired (found by cleanup), or a save refused by a
    /// concurrent change (409). Each event fires once for its cause, even
    /// with several instances of the app.
    ///
    /// Handlers run on a thread of their own, fed by a bounded queue
    /// ([`event_queue`](Self::event_queue)): a slow or panicking handler
    /// never delays or fails a request; when the queue is full, a
    /// request's event is dropped (counted in
    /// `session_events_dropped_total` and warned), while cleanup waits for
    /// room. A handler that needs async work sends the event on to a task
    /// of its own (a `tokio::sync::mpsc` channel).
    ///
    /// ```
    /// use session_rocket::events::{EventKind, SessionEvent};
    /// use session_rocket::Sessions;
    ///
    /// let fairing = Sessions::fairing().on_event(|event: &SessionEvent| {
    ///     if let EventKind::Expired = event.kind {
    ///         let user: Option<u64> = event.value("user_id");
    ///         println!("session {} of {user:?} expired", event.session);
    ///     }
    /// });
    /// ```
    pub fn on_event(
        mut self,
        handler: impl Fn(&session_core::events::SessionEvent) + Send + Sync + 'static,
    ) -> Self {
        self.events = std::mem::take(&mut self.events).on(handler);
        self
    }

    /// How many events may wait for the handlers (default 1,024).
    pub fn event_queue(mut self, capacity: usize) -> Self {
        self.events = std::mem::take(&mut self.events).queue(capacity);
        self
    }

    /// The fairing with a store built in code; `url` is then ignored, the
    /// other settings still apply. Preparing it (its tables) is the app's
    /// business: call [`SessionStore::prepare`] (or the store's own
    /// `create_tables`) before attaching.
    ///
    /// ```
    /// use session_rocket::{Sessions, store::memory::MemoryStore};
    ///
    /// let fairing = Sessions::with_store(MemoryStore::new());
    /// ```
    pub fn with_store(store: impl SessionStore) -> Self {
        Self::with_shared_store(Arc::new(store))
    }

    /// [`with_store`](Self::with_store) for a store the app keeps a handle
    /// to (to read its [`stats`](SessionStore::stats), say).
    pub fn with_shared_store(store: Arc<dyn SessionStore>) -> Self {
        Self::from_source(Source::Store(store))
    }

    pub(crate) fn build_with(kind: &'static str, build: StoreBuilder) -> Self {
        Self::from_source(Source::Build(kind, build))
    }

    /// The running sessions of a launched (or ignited) Rocket: the manager,
    /// its store and which store it is.
    pub fn state<P: rocket::Phase>(rocket: &Rocket<P>) -> Option<&SessionsState> {
        rocket.state::<SessionsState>()
    }
}

#[rocket::async_trait]
impl Fairing for Sessions {
    fn info(&self) -> Info {
        Info {
            name: NAME,
            kind: Kind::Ignite | Kind::Liftoff | Kind::Response | Kind::Shutdown,
        }
    }

    async fn on_ignite(&self, rocket: Rocket<Build>) -> fairing::Result {
        let profile = rocket.figment().profile().as_str().to_string();
        for section in crate::config::misspelt_sections(rocket.figment()) {
            rocket::warn!(
                "[{profile}.{section}] is not read by the sessions fairing: did you mean \
                 [{profile}.sessions]? (its settings are ignored; the defaults apply)"
            );
        }
        for (found, meant) in crate::config::misspelt_env_vars(std::env::vars().map(|(k, _)| k)) {
            rocket::warn!(
                "the environment variable `{found}` is not read by the sessions fairing: did you \
                 mean `{meant}`? (its setting is ignored)"
            );
        }
        let config = match crate::config::extract(rocket.figment()) {
            Ok(config) => config,
            Err(e) => {
                rocket::error!("invalid [sessions] configuration");
                rocket::config::pretty_print_error(e);
                return Err(rocket);
            }
        };
        if let Err(e) = config.validate() {
            rocket::error!("{e}");
            return Err(rocket);
        }
        let opened = self
            .source
            .open(config, &profile)
            .await
            .and_then(|mut opened| {
                opened.manager = opened
                    .manager
                    .with_events(self.events.clone())
                    .map_err(|e| e.to_string())?;
                opened.handlers = self.events.handlers();
                Ok(opened)
            });
        match opened {
            Ok(opened) => Ok(rocket.manage(SessionsState::new(opened))),
            Err(message) => {
                rocket::error!("{message}");
                Err(rocket)
            }
        }
    }

    async fn on_liftoff(&self, rocket: &Rocket<Orbit>) {
        let Some(state) = rocket.state::<SessionsState>() else {
            return;
        };
        let config = state.manager().config();
        rocket::info!(
            "{NAME}: {} store at {}",
            state.store_kind(),
            state.location()
        );
        rocket::info_!(
            "cookie `{}`: ttl {} s, secure {}, same_site {:?}",
            config.cookie_name,
            config.ttl,
            config.secure,
            config.same_site
        );
        for line in state.summary() {
            rocket::info_!("{line}");
        }
        if let Some(warning) = state.warning() {
            rocket::warn!("{warning}");
        }
        let address = rocket.config().address;
        if config.secure && !rocket.config().tls_enabled() && !address.is_loopback() {
            rocket::warn!(
                "session cookies are `Secure` but {address} serves plain HTTP: browsers will not send \
                 them back except to localhost, so every request would start a new session; \
                 serve HTTPS (or terminate TLS in front), or set `secure = false` for a trusted network"
            );
        }
        state.start_cleanup();
    }

    async fn on_response<'r>(&self, req: &'r Request<'_>, res: &mut Response<'r>) {
        let Some(state) = req.rocket().state::<SessionsState>() else {
            return;
        };
        let config = state.manager().config();
        let persist = !(config.skip_on_server_error && res.status().class().is_server_error());
        let registry = Registry::of(req);
        let finished = registry.finish(persist).await;
        if registry.started() {
            state.request_answered();
        }
        if let Some(error) = finished.error {
            log_error("could not save the session", &error);
            let (status, body) = if error.is_unavailable() {
                (Status::ServiceUnavailable, "the session could not be saved")
            } else if error.is_conflict() {
                (
                    Status::Conflict,
                    "a concurrent request changed this session; this request's changes were not saved",
                )
            } else {
                (
                    Status::InternalServerError,
                    "the session could not be saved",
                )
            };
            replace_body(res, status, body);
        } else if finished.interrupted {
            rocket::warn!(
                "the session ended while this request ran (a concurrent logout, expiry or \
                 regenerate); its changes were not saved"
            );
            replace_body(
                res,
                Status::Conflict,
                "the session ended while this request ran; its changes were not saved",
            );
        }
        // The cookie of what this request committed, even when a later
        // write failed: after `regenerate(); save()`, the session lives
        // under the new token only, and a response without its cookie
        // would leave the browser with a token that reads nothing.
        if let Some(action) = &finished.cookie {
            res.adjoin_header(cookie::render(state.manager(), action));
        }
    }

    async fn on_shutdown(&self, rocket: &Rocket<Orbit>) {
        let Some(state) = rocket.state::<SessionsState>() else {
            return;
        };
        state.stop_cleanup();
        // Shutdown fairings run as shutdown begins, while requests are
        // still finishing: close the store after they have saved.
        let grace = std::time::Duration::from_secs(rocket.config().shutdown.grace.into());
        state.drain(grace).await;
        state.manager().drain_events(grace).await;
        if let Some(store) = state.manager().store() {
            store.close().await;
        }
    }
}

/// Replaces a response by a short plain-text error: the client is never
/// told a change worked when it did not.
fn replace_body(res: &mut Response<'_>, status: Status, message: &str) {
    let body = format!("{status}: {message}");
    res.set_status(status);
    res.remove_header("Set-Cookie");
    res.set_header(ContentType::Plain);
    res.set_sized_body(body.len(), std::io::Cursor::new(body));
}
