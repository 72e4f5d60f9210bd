//! Where the fairing's store comes from, and opening it at ignite: the
//! store `url` names (through `session-core`'s registry), one built in code,
//! or one built from a pool the app shares.

use std::sync::Arc;

use session_core::open::{open, Profile};
use session_core::store::SessionStore;
use session_core::{Config, SessionManager};

use crate::error::chain;
use crate::state::Ready;

/// Builds a store from the configuration (a pool the app shares).
pub(crate) type StoreBuilder =
    Arc<dyn Fn(&Config) -> session_core::Result<Arc<dyn SessionStore>> + Send + Sync>;

#[derive(Clone)]
pub(crate) enum Source {
    /// The store `url` names.
    Config,
    /// A store built in code.
    Store(Arc<dyn SessionStore>),
    /// A store built from the configuration at ignite.
    Build(&'static str, StoreBuilder),
}

impl Source {
    /// Opens and prepares the store and pairs it with `config`; the
    /// message names what failed.
    pub(crate) async fn open(&self, config: Config, profile: &str) -> Result<Ready, String> {
        let (store, kind) = match self {
            Source::Config => {
                let profile = if profile == rocket::Config::DEBUG_PROFILE.as_str() {
                    Profile::Development
                } else {
                    Profile::Other(profile)
                };
                let opened = open(&config, profile).await.map_err(|e| chain(&e))?;
                return Ok(Ready {
                    manager: opened.manager,
                    kind: opened.kind,
                    location: opened.location,
                    warning: opened.warning,
                    handlers: 0,
                });
            }
            Source::Store(store) => (store.clone(), "custom"),
            Source::Build(kind, build) => (build(&config).map_err(|e| chain(&e))?, *kind),
        };
        let location = "(provided in code)";
        if !matches!(self, Source::Store(_)) {
            store.prepare(&config).await.map_err(|e| {
                format!(
                    "could not prepare the session store {location}: {}",
                    chain(&e)
                )
            })?;
        }
        let manager = SessionManager::new(store, config).map_err(|e| chain(&e))?;
        Ok(Ready {
            manager,
            kind,
            location: location.into(),
            warning: None,
            handlers: 0,
        })
    }
}
