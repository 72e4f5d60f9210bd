//! Where the fairing's store comes from, and opening it at ignite: the
//! store `url` names (through `session-core`'s registry), one built in code,
//! or one built from a pool the app shares.

use std::sync::Arc;

use session_core::store::open::{open, Profile};
use session_core::store::SessionStore;
use session_core::Config;

use crate::error::chain;
use crate::state::Opened;

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
    /// Opens and prepares the store; the message names what failed.
    pub(crate) async fn open(&self, config: &Config, profile: &str) -> Result<Opened, String> {
        let custom = |store: Arc<dyn SessionStore>, kind| Opened {
            store,
            kind,
            location: "(provided in code)".into(),
            warning: None,
        };
        let opened = match self {
            Source::Config => {
                let profile = if profile == rocket::Config::DEBUG_PROFILE.as_str() {
                    Profile::Development
                } else {
                    Profile::Other(profile)
                };
                let opened = open(config, profile).await.map_err(|e| chain(&e))?;
                return Ok(Opened {
                    store: opened.store,
                    kind: opened.kind,
                    location: opened.location,
                    warning: opened.warning,
                });
            }
            Source::Store(store) => return Ok(custom(store.clone(), "custom")),
            Source::Build(kind, build) => custom(build(config).map_err(|e| chain(&e))?, kind),
        };
        opened.store.prepare(config).await.map_err(|e| {
            format!(
                "could not prepare the session store {}: {}",
                opened.location,
                chain(&e)
            )
        })?;
        Ok(opened)
    }
}
