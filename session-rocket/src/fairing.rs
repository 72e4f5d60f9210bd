//! `Sessions`: the fairing that opens the store, starts cleanup and flushes
//! each request's changes.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rocket::fairing::{self, Fairing, Info, Kind};
use rocket::http::{ContentType, Status};
use rocket::{Build, Orbit, Request, Response, Rocket};
use session_core::store::SessionStore;
use session_core::{Config, SessionManager};

use crate::cookie;
use crate::error::log_error;
use crate::guard::Registry;

/// The fairing's name, which launch failures and logs show.
const NAME: &str = "Sessions";

/// The warning shown at liftoff when no `url` is configured.
pub const MEMORY_WARNING: &str =
    "sessions use the in-memory store because no `url` is configured: \
     for development only (sessions vanish on restart and are not shared between instances); \
     set `url` in [default.sessions] to a mysql:// or sqlite:// URL";

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
///   told a change worked when it did not.
/// - **Shutdown**: stops the cleanup task and closes any pool it opened.
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
}

#[derive(Clone)]
enum Source {
    Config,
    Store(Arc<dyn SessionStore>),
    #[cfg(feature = "mysql")]
    MySqlPool(sqlx::MySqlPool),
    #[cfg(feature = "sqlite")]
    SqlitePool(sqlx::SqlitePool),
}

impl fmt::Debug for Sessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = match &self.source {
            Source::Config => "config",
            Source::Store(_) => "store",
            #[cfg(feature = "mysql")]
            Source::MySqlPool(_) => "mysql pool",
            #[cfg(feature = "sqlite")]
            Source::SqlitePool(_) => "sqlite pool",
        };
        f.debug_struct("Sessions").field("source", &source).finish()
    }
}

impl Sessions {
    /// The fairing, with the store chosen by `url` in `[default.sessions]`.
    pub fn fairing() -> Self {
        Sessions {
            source: Source::Config,
        }
    }

    /// The fairing with a store built in code; `url` is then ignored, the
    /// other settings still apply. Tables are the store's business.
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
        Sessions {
            source: Source::Store(store),
        }
    }

    /// The fairing on an existing MySQL pool, shared with the app. The
    /// tables (with `table_prefix`) are created at ignite unless
    /// `create_tables = false`. The pool must come from the same sqlx as
    /// [`crate::sqlx`].
    #[cfg(feature = "mysql")]
    pub fn with_mysql_pool(pool: sqlx::MySqlPool) -> Self {
        Sessions {
            source: Source::MySqlPool(pool),
        }
    }

    /// The fairing on an existing SQLite pool, shared with the app.
    #[cfg(feature = "sqlite")]
    pub fn with_sqlite_pool(pool: sqlx::SqlitePool) -> Self {
        Sessions {
            source: Source::SqlitePool(pool),
        }
    }

    /// The running sessions of a launched (or ignited) Rocket: the manager,
    /// its store and which store it is.
    pub fn state<P: rocket::Phase>(rocket: &Rocket<P>) -> Option<&SessionsState> {
        rocket.state::<SessionsState>()
    }
}

/// What the fairing set up at ignite: available as managed state and
/// through [`Sessions::state`].
pub struct SessionsState {
    manager: SessionManager,
    kind: &'static str,
    location: String,
    development_only: bool,
    closer: Closer,
    cleanup: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl fmt::Debug for SessionsState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionsState")
            .field("kind", &self.kind)
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

impl SessionsState {
    /// The manager: store plus configuration.
    pub fn manager(&self) -> &SessionManager {
        &self.manager
    }

    /// Which store is in use: `"mysql"`, `"sqlite"`, `"memory"` or
    /// `"custom"`.
    pub fn store_kind(&self) -> &'static str {
        self.kind
    }

    /// Where the store lives, with any password masked.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// The development-only warning, when the memory store was chosen for
    /// lack of a `url`.
    pub fn warning(&self) -> Option<&'static str> {
        self.development_only.then_some(MEMORY_WARNING)
    }
}

/// Pools the fairing opened, closed at shutdown.
enum Closer {
    None,
    #[cfg(feature = "mysql")]
    MySql(Arc<session_core::store::mysql::MySqlStore>),
    #[cfg(feature = "sqlite")]
    Sqlite(Arc<session_core::store::sqlite::SqliteStore>),
}

struct Opened {
    store: Arc<dyn SessionStore>,
    kind: &'static str,
    location: String,
    development_only: bool,
    closer: Closer,
}

/// Masks the password of a `scheme://user:password@host/…` URL.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => {
            let userinfo = &rest[..at];
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            let masked = if userinfo.contains(':') {
                format!("{user}:***")
            } else {
                user.to_string()
            };
            format!("{scheme}://{masked}{}", &rest[at..])
        }
        None => url.to_string(),
    }
}

#[cfg(any(feature = "mysql", feature = "sqlite"))]
async fn prepare<B: session_core::store::sql::Backend>(
    store: &session_core::store::sql::SqlStore<B>,
    config: &Config,
    location: &str,
) -> Result<(), String> {
    let result = if config.create_tables {
        store.create_tables().await
    } else {
        store.check().await
    };
    result.map_err(|e| {
        let what = if config.create_tables {
            "could not create the session tables"
        } else {
            "the session tables are not usable (`create_tables = false`: run the shipped .sql file first)"
        };
        format!("{what} at {location}: {}", chain(&e))
    })
}

#[cfg(any(feature = "mysql", feature = "sqlite"))]
/// Finishes opening a SQL store from its `connect`: tables, then the
/// closer that shuts its connections at shutdown.
#[cfg(any(feature = "mysql", feature = "sqlite"))]
async fn open_sql<B: session_core::store::sql::Backend>(
    connected: session_core::Result<session_core::store::sql::SqlStore<B>>,
    config: &Config,
    location: String,
    kind: &'static str,
    closer: fn(Arc<session_core::store::sql::SqlStore<B>>) -> Closer,
) -> Result<Opened, String> {
    let store = connected
        .map_err(|e| format!("cannot open the session store at {location}: {}", chain(&e)))?;
    prepare(&store, config, &location).await?;
    let store = Arc::new(store);
    Ok(Opened {
        store: store.clone(),
        kind,
        location,
        development_only: false,
        closer: closer(store),
    })
}

fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

async fn open(source: Source, config: &Config, profile: &str) -> Result<Opened, String> {
    let custom = |store, kind: &'static str, closer| Opened {
        store,
        kind,
        location: "(provided in code)".into(),
        development_only: false,
        closer,
    };
    match source {
        Source::Store(store) => Ok(custom(store, "custom", Closer::None)),
        #[cfg(feature = "mysql")]
        Source::MySqlPool(pool) => {
            let store = session_core::store::mysql::MySqlStore::new(pool)
                .with_table_prefix(&config.table_prefix)
                .map_err(|e| e.to_string())?;
            prepare(&store, config, "the provided MySQL pool").await?;
            Ok(custom(Arc::new(store), "mysql", Closer::None))
        }
        #[cfg(feature = "sqlite")]
        Source::SqlitePool(pool) => {
            let store = session_core::store::sqlite::SqliteStore::new(pool)
                .with_table_prefix(&config.table_prefix)
                .map_err(|e| e.to_string())?;
            prepare(&store, config, "the provided SQLite pool").await?;
            Ok(custom(Arc::new(store), "sqlite", Closer::None))
        }
        Source::Config => open_url(config, profile).await,
    }
}

/// Which stores this build of the crate contains. A parameter rather than
/// bare `cfg!`s so the refusal for a missing feature is testable in any
/// build.
#[derive(Debug, Clone, Copy)]
struct Compiled {
    memory: bool,
    mysql: bool,
    sqlite: bool,
}

const COMPILED: Compiled = Compiled {
    memory: cfg!(feature = "memory"),
    mysql: cfg!(feature = "mysql"),
    sqlite: cfg!(feature = "sqlite"),
};

/// Which store a `url` selects, before anything is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StoreChoice {
    Memory { development_only: bool },
    MySql,
    Sqlite,
}

fn select(config: &Config, profile: &str, compiled: Compiled) -> Result<StoreChoice, String> {
    let kind = match config.url.as_deref() {
        None if profile != rocket::Config::DEBUG_PROFILE.as_str() => {
            return Err(format!(
                "no session store `url` is configured and the `{profile}` profile is not `debug`: \
                 the in-memory store loses every session on restart, so it is refused outside debug \
                 unless written out as `url = \"memory\"`; set `url` in [{profile}.sessions] \
                 (mysql://… or sqlite://…)"
            ));
        }
        None => StoreChoice::Memory {
            development_only: true,
        },
        Some(url) => match url.split_once(':').map_or(url, |(scheme, _)| scheme) {
            "memory" => StoreChoice::Memory {
                development_only: false,
            },
            "mysql" | "mariadb" => StoreChoice::MySql,
            "sqlite" => StoreChoice::Sqlite,
            other => {
                return Err(format!(
                    "unknown session store url scheme `{other}` in {}: expected `mysql://…`, `sqlite://…` or `memory`",
                    redact(url)
                ))
            }
        },
    };
    let (feature, on) = match kind {
        StoreChoice::Memory { .. } => ("memory", compiled.memory),
        StoreChoice::MySql => ("mysql", compiled.mysql),
        StoreChoice::Sqlite => ("sqlite", compiled.sqlite),
    };
    if !on {
        return Err(format!(
            "the `{feature}` session store is not compiled in: enable the `{feature}` feature of session-rocket"
        ));
    }
    Ok(kind)
}

async fn open_url(config: &Config, profile: &str) -> Result<Opened, String> {
    let kind = select(config, profile, COMPILED)?;
    let url = config.url.as_deref().unwrap_or("memory");
    let location = redact(url);
    match kind {
        #[cfg(feature = "memory")]
        StoreChoice::Memory { development_only } => Ok(Opened {
            store: Arc::new(session_core::store::memory::MemoryStore::with_capacity(
                config.memory_max_sessions,
            )),
            kind: "memory",
            location,
            development_only,
            closer: Closer::None,
        }),
        #[cfg(feature = "mysql")]
        StoreChoice::MySql => {
            let store = session_core::store::mysql::MySqlStore::connect(url, config).await;
            open_sql(store, config, location, "mysql", Closer::MySql).await
        }
        #[cfg(feature = "sqlite")]
        StoreChoice::Sqlite => {
            let store = session_core::store::sqlite::SqliteStore::connect(url, config).await;
            open_sql(store, config, location, "sqlite", Closer::Sqlite).await
        }
        #[allow(unreachable_patterns)]
        _ => unreachable!("`select` refuses stores that are not compiled in"),
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
        let profile = rocket.figment().profile().as_str().to_string();
        let opened = match open(self.source.clone(), &config, &profile).await {
            Ok(opened) => opened,
            Err(message) => {
                rocket::error!("{message}");
                return Err(rocket);
            }
        };
        let manager = match SessionManager::new(opened.store, config) {
            Ok(manager) => manager,
            Err(e) => {
                rocket::error!("{e}");
                return Err(rocket);
            }
        };
        Ok(rocket.manage(SessionsState {
            manager,
            kind: opened.kind,
            location: opened.location,
            development_only: opened.development_only,
            closer: opened.closer,
            cleanup: Mutex::new(None),
        }))
    }

    async fn on_liftoff(&self, rocket: &Rocket<Orbit>) {
        let Some(state) = rocket.state::<SessionsState>() else {
            return;
        };
        let config = state.manager.config();
        rocket::info!("{NAME}: {} store at {}", state.kind, state.location);
        rocket::info_!(
            "cookie `{}`: ttl {} s, secure {}, same_site {:?}",
            config.cookie_name,
            config.ttl,
            config.secure,
            config.same_site
        );
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
        if config.cleanup_interval > 0 {
            let task = tokio::spawn(session_core::store::cleanup::run(
                state.manager.store().clone(),
                Duration::from_secs(config.cleanup_interval),
                config.cleanup_batch.max(1),
                config.max_lifetime,
            ));
            *state.cleanup.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
        }
    }

    async fn on_response<'r>(&self, req: &'r Request<'_>, res: &mut Response<'r>) {
        let Some(state) = req.rocket().state::<SessionsState>() else {
            return;
        };
        let config = state.manager.config();
        let persist = !(config.skip_on_server_error && res.status().class().is_server_error());
        let finished = Registry::of(req).finish(persist).await;
        if let Some(error) = finished.error {
            log_error("could not save the session", &error);
            let status = if error.is_unavailable() {
                Status::ServiceUnavailable
            } else {
                Status::InternalServerError
            };
            replace_body(res, status, "the session could not be saved");
            return;
        }
        if finished.interrupted {
            rocket::warn!(
                "the session ended while this request ran (a concurrent logout, expiry or \
                 regenerate); its changes were not saved"
            );
            replace_body(
                res,
                Status::Conflict,
                "the session ended while this request ran; its changes were not saved",
            );
            return;
        }
        if let Some(action) = &finished.cookie {
            res.adjoin_header(cookie::render(config, action));
        }
    }

    async fn on_shutdown(&self, rocket: &Rocket<Orbit>) {
        let Some(state) = rocket.state::<SessionsState>() else {
            return;
        };
        if let Some(task) = state
            .cleanup
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            task.abort();
        }
        match &state.closer {
            Closer::None => {}
            #[cfg(feature = "mysql")]
            Closer::MySql(store) => store.close().await,
            #[cfg(feature = "sqlite")]
            Closer::Sqlite(store) => store.close().await,
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

#[cfg(test)]
mod tests {
    use super::{redact, select, Compiled, StoreChoice};
    use session_core::Config;

    const ALL: Compiled = Compiled {
        memory: true,
        mysql: true,
        sqlite: true,
    };

    fn url(url: Option<&str>) -> Config {
        Config {
            url: url.map(str::to_string),
            ..Config::default()
        }
    }

    #[test]
    fn the_url_selects_the_store() {
        assert_eq!(
            select(&url(Some("memory")), "release", ALL),
            Ok(StoreChoice::Memory {
                development_only: false
            })
        );
        assert_eq!(
            select(&url(None), "debug", ALL),
            Ok(StoreChoice::Memory {
                development_only: true
            })
        );
        assert_eq!(
            select(&url(Some("mysql://root@h/db")), "debug", ALL),
            Ok(StoreChoice::MySql)
        );
        assert_eq!(
            select(&url(Some("sqlite://s.db")), "debug", ALL),
            Ok(StoreChoice::Sqlite)
        );
        let err = select(&url(Some("postgres://u:secret@h/db")), "debug", ALL).unwrap_err();
        assert!(
            err.contains("unknown session store url scheme `postgres`"),
            "{err}"
        );
        assert!(
            !err.contains("secret"),
            "passwords never reach the log: {err}"
        );
    }

    #[test]
    fn release_refuses_the_implicit_memory_store() {
        let err = select(&url(None), "release", ALL).unwrap_err();
        assert!(err.contains("url = \"memory\""), "{err}");
        assert!(err.contains("[release.sessions]"), "{err}");
    }

    #[test]
    fn a_store_whose_feature_is_off_names_the_feature() {
        let no_mysql = Compiled {
            mysql: false,
            ..ALL
        };
        let err = select(&url(Some("mysql://root@h/db")), "debug", no_mysql).unwrap_err();
        assert_eq!(err, "the `mysql` session store is not compiled in: enable the `mysql` feature of session-rocket");
        let no_sqlite = Compiled {
            sqlite: false,
            ..ALL
        };
        let err = select(&url(Some("sqlite://x.db")), "debug", no_sqlite).unwrap_err();
        assert!(err.contains("enable the `sqlite` feature"), "{err}");
        let no_memory = Compiled {
            memory: false,
            ..ALL
        };
        assert!(select(&url(None), "debug", no_memory)
            .unwrap_err()
            .contains("`memory` feature"));
    }

    #[test]
    fn passwords_are_masked() {
        assert_eq!(
            redact("mysql://root:hunter2@db:3306/app"),
            "mysql://root:***@db:3306/app"
        );
        assert_eq!(redact("mysql://root@db/app"), "mysql://root@db/app");
        assert_eq!(redact("sqlite://data/s.db"), "sqlite://data/s.db");
        assert_eq!(redact("mysql://u:p@ss@h/d"), "mysql://u:***@h/d");
        assert_eq!(redact("memory"), "memory");
    }
}
