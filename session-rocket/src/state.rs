//! What the fairing keeps while Rocket runs: the manager, which store it
//! is, and the cleanup task.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use session_core::SessionManager;

/// Sessions ready for requests.
pub(crate) struct Ready {
    pub(crate) manager: SessionManager,
    pub(crate) kind: &'static str,
    pub(crate) location: String,
    pub(crate) warning: Option<&'static str>,
    /// How many lifecycle event handlers are registered.
    pub(crate) handlers: usize,
}

/// What the fairing set up at ignite: available as managed state and
/// through [`Sessions::state`](crate::Sessions::state).
pub struct SessionsState {
    manager: SessionManager,
    kind: &'static str,
    location: String,
    warning: Option<&'static str>,
    handlers: usize,
    cleanup: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Requests that opened a session and have not been answered yet.
    in_flight: AtomicUsize,
    all_answered: tokio::sync::Notify,
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
    pub(crate) fn new(opened: Ready) -> Self {
        SessionsState {
            manager: opened.manager,
            kind: opened.kind,
            location: opened.location,
            warning: opened.warning,
            handlers: opened.handlers,
            cleanup: Mutex::new(None),
            in_flight: AtomicUsize::new(0),
            all_answered: tokio::sync::Notify::new(),
        }
    }

    /// The manager: store plus configuration.
    pub(crate) fn manager(&self) -> &SessionManager {
        &self.manager
    }

    /// The configuration in use.
    pub fn config(&self) -> &session_core::Config {
        self.manager.config()
    }

    /// The store sessions are kept in (for its
    /// [`stats`](session_core::store::SessionStore::stats), or to share
    /// it with a second app); `None` when they are kept in their cookies
    /// (`url = "cookie"`).
    pub fn store(&self) -> Option<&std::sync::Arc<dyn session_core::store::SessionStore>> {
        self.manager.store()
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

    /// What launch logs say is on, one line each: the store and its
    /// table or key prefix (never credentials), whether cookies are signed
    /// and values encrypted and with how many keys, the indexed and
    /// versioned fields of each session type in use (known once the
    /// routes' guards were checked, at ignite), and the event handlers.
    pub fn summary(&self) -> Vec<String> {
        launch_summary(self, self.handlers)
    }

    /// The warning shown at liftoff: the memory store was chosen for lack
    /// of a `url` (development only).
    pub fn warning(&self) -> Option<&'static str> {
        self.warning
    }

    fn cleanup(&self) -> std::sync::MutexGuard<'_, Option<tokio::task::JoinHandle<()>>> {
        self.cleanup.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn start_cleanup(&self) {
        *self.cleanup() = self.manager.spawn_cleanup();
    }

    /// A request opened its session.
    pub(crate) fn request_started(&self) {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
    }

    /// A request that opened its session was answered (its save is done).
    pub(crate) fn request_answered(&self) {
        if self.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.all_answered.notify_waiters();
        }
    }

    /// Waits until every request that opened a session was answered, at
    /// most `grace`: the store is closed after them, not under them.
    pub(crate) async fn drain(&self, grace: Duration) {
        let wait = async {
            loop {
                let answered = self.all_answered.notified();
                if self.in_flight.load(Ordering::SeqCst) == 0 {
                    return;
                }
                answered.await;
            }
        };
        if tokio::time::timeout(grace, wait).await.is_err() {
            rocket::warn!(
                "{} request(s) with a session still running after the shutdown grace; closing the store",
                self.in_flight.load(Ordering::SeqCst)
            );
        }
    }

    pub(crate) fn stop_cleanup(&self) {
        if let Some(task) = self.cleanup().take() {
            task.abort();
        }
    }
}

/// What launch logs say is on, one line each: where sessions are kept
/// (prefix, never credentials), how cookies and values are protected, the
/// indexed and versioned fields of each session type, and the event
/// handlers (a new user should not have to read the database to know
/// encryption is on).
fn launch_summary(state: &SessionsState, handlers: usize) -> Vec<String> {
    let config = state.config();
    let mut lines = Vec::new();
    if state.store().is_some() {
        let prefix = if config.table_prefix.is_empty() {
            "none".to_string()
        } else {
            format!("`{}`", config.table_prefix)
        };
        lines.push(format!(
            "{} store, table / key prefix {prefix}",
            state.store_kind()
        ));
    } else {
        lines.push("sessions kept whole in sealed cookies (no server-side store)".into());
    }
    let signed = match (config.signing_keys.len(), config.sign_with_secret_key) {
        (0, false) => "not signed".to_string(),
        (0, true) => "signed with Rocket's secret_key".to_string(),
        (n, _) => format!("signed ({n} key{})", if n == 1 { "" } else { "s" }),
    };
    let encrypted = match config.encryption_keys.len() {
        0 => "values not encrypted".to_string(),
        n => format!(
            "values encrypted (AES-256-GCM, {n} key{})",
            if n == 1 { "" } else { "s" }
        ),
    };
    lines.push(format!("cookies {signed}; {encrypted}"));
    for info in state.manager().session_types() {
        let list = |names: &[&str]| {
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        };
        lines.push(format!(
            "session type {}: indexed {}, versioned {}",
            info.name,
            list(&info.indexed),
            list(&info.versioned)
        ));
    }
    lines.push(match handlers {
        0 => "lifecycle events: no handlers".to_string(),
        n => format!("lifecycle events: {n} handler(s)"),
    });
    lines
}
