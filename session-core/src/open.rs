//! Opening sessions from the configuration's URL: one registry of
//! schemes, so a web integration never names a driver, and a new store is
//! one module plus one line in its registry of schemes.

use crate::config::Config;
use crate::error::{Error, Result};
use crate::manager::SessionManager;
use crate::store::Opening;

/// Opens a store of one scheme from its URL and the configuration.
type OpenFn = for<'a> fn(&'a str, &'a Config) -> Opening<'a>;

/// Where a scheme keeps sessions.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Keeper {
    /// In a store, opened from the URL.
    Store(OpenFn),
    /// In their cookies: no store (`SessionManager::in_cookies`).
    #[cfg_attr(not(feature = "cookie"), allow(dead_code))]
    Cookies,
}

/// One kind of store that a URL can name.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scheme {
    /// The URL schemes it answers to.
    names: &'static [&'static str],
    /// Its name in logs.
    kind: &'static str,
    /// The cargo feature that compiles it in.
    feature: &'static str,
    /// `None` when the feature is off.
    open: Option<Keeper>,
}

/// Every store a URL can name.
pub(crate) const SCHEMES: &[Scheme] = &[
    Scheme {
        names: &["cookie"],
        kind: "cookie",
        feature: "cookie",
        #[cfg(feature = "cookie")]
        open: Some(Keeper::Cookies),
        #[cfg(not(feature = "cookie"))]
        open: None,
    },
    Scheme {
        names: &["memory"],
        kind: "memory",
        feature: "memory",
        #[cfg(feature = "memory")]
        open: Some(Keeper::Store(crate::store::memory::open_url)),
        #[cfg(not(feature = "memory"))]
        open: None,
    },
    Scheme {
        names: &["mysql", "mariadb"],
        kind: "mysql",
        feature: "mysql",
        #[cfg(feature = "mysql")]
        open: Some(Keeper::Store(crate::store::mysql::open_url)),
        #[cfg(not(feature = "mysql"))]
        open: None,
    },
    Scheme {
        names: &["postgres", "postgresql"],
        kind: "postgres",
        feature: "postgres",
        #[cfg(feature = "postgres")]
        open: Some(Keeper::Store(crate::store::postgres::open_url)),
        #[cfg(not(feature = "postgres"))]
        open: None,
    },
    Scheme {
        names: &["redis", "rediss", "redis+cluster", "rediss+cluster"],
        kind: "redis",
        feature: "redis",
        #[cfg(feature = "redis")]
        open: Some(Keeper::Store(crate::store::redis::open_url)),
        #[cfg(not(feature = "redis"))]
        open: None,
    },
    Scheme {
        names: &["sqlite"],
        kind: "sqlite",
        feature: "sqlite",
        #[cfg(feature = "sqlite")]
        open: Some(Keeper::Store(crate::store::sqlite::open_url)),
        #[cfg(not(feature = "sqlite"))]
        open: None,
    },
];

/// The warning given when the memory store stands in for a missing `url`.
pub(crate) const MEMORY_WARNING: &str =
    "sessions use the in-memory store because no `url` is configured: \
     for development only (sessions vanish on restart and are not shared between instances); \
     set `url` in [default.sessions] to a mysql://, postgres://, redis:// or sqlite:// URL";

/// Sessions opened from the configuration's `url`.
#[derive(Debug)]
#[non_exhaustive]
pub struct Opened {
    /// The manager over the store (or the cookies) the `url` names.
    pub manager: SessionManager,
    /// Which kind: `"mysql"`, `"sqlite"`, `"cookie"`, `"memory"`….
    pub kind: &'static str,
    /// Where it lives, with any password masked (for logs).
    pub location: String,
    /// A warning to show at startup: the memory store stands in for a
    /// missing `url`.
    pub warning: Option<&'static str>,
}

/// Where the configuration's `url` may be missing: only in development,
/// where the memory store then stands in with a warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile<'a> {
    /// A development profile: a missing `url` means memory, with a warning.
    Development,
    /// Any other profile, by name (for the error message): a missing `url`
    /// refuses to open.
    Other(&'a str),
}

/// Opens the store the configuration's `url` names, prepares it
/// ([`SessionStore::prepare`](crate::store::SessionStore::prepare): tables
/// created unless `create_tables = false`, layout checked) and pairs it
/// with the configuration; `url = "cookie"` keeps sessions in their
/// cookies instead ([`SessionManager::in_cookies`]).
///
/// # Errors
/// [`Error::Config`] for a missing `url` outside development, an unknown
/// scheme, a store whose feature is off (each message names the fix) or
/// an invalid configuration; the store's own error when it cannot be
/// reached or prepared, with the location (password masked) in the
/// message.
///
/// ```
/// # async fn run() -> session_core::Result<()> {
/// use session_core::Config;
/// use session_core::open::{open, Profile};
///
/// let config = Config { url: Some("memory".into()), ..Config::default() };
/// let opened = open(&config, Profile::Other("release")).await?;
/// assert_eq!(opened.kind, "memory");
/// # Ok(()) }
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(run()).unwrap();
/// ```
pub async fn open(config: &Config, profile: Profile<'_>) -> Result<Opened> {
    let (scheme, warning) = select(config, profile, SCHEMES)?;
    let url = config.url.as_deref().unwrap_or("memory");
    let location = locate(url);
    let manager = match scheme.open {
        Some(Keeper::Store(open)) => {
            config.validate()?;
            let store = open(url, config).await.map_err(|e| {
                Error::Open(
                    format!("cannot open the session store at {location}"),
                    Box::new(e),
                )
            })?;
            store.prepare(config).await.map_err(|e| {
                let what = if config.create_tables {
                    "could not prepare the session tables"
                } else {
                    "the session tables are not usable (`create_tables = false`: create them first)"
                };
                Error::Open(format!("{what} at {location}"), Box::new(e))
            })?;
            SessionManager::new(store, config.clone())?
        }
        #[cfg(feature = "cookie")]
        Some(Keeper::Cookies) => SessionManager::in_cookies(config.clone())?,
        _ => unreachable!("`select` refuses what is not compiled in"),
    };
    Ok(Opened {
        manager,
        kind: scheme.kind,
        location,
        warning,
    })
}

/// Whether what `config.url` names cannot work without
/// `encryption_keys`: sessions kept in their cookies are sealed with them
/// (a web integration derives one from its own secret then, as Rocket
/// seals its private cookies).
pub fn needs_encryption_key(config: &Config) -> bool {
    let url = config.url.as_deref().unwrap_or_default();
    let name = url.split_once(':').map_or(url, |(scheme, _)| scheme);
    SCHEMES
        .iter()
        .any(|s| s.names.contains(&name) && matches!(s.open, Some(Keeper::Cookies)))
}

/// Which store a `url` selects, before anything is opened.
fn select<'s>(
    config: &Config,
    profile: Profile<'_>,
    schemes: &'s [Scheme],
) -> Result<(&'s Scheme, Option<&'static str>)> {
    let memory = || schemes.iter().find(|s| s.kind == "memory");
    let (scheme, warning) = match (config.url.as_deref(), profile) {
        (None, Profile::Other(profile)) => {
            return Err(Error::config(format!(
                "no session store `url` is configured and the `{profile}` profile is not for \
                 development: the in-memory store loses every session on restart, so it is \
                 refused unless written out as `url = \"memory\"`; set `url` in \
                 [{profile}.sessions] (mysql://… or sqlite://…)"
            )))
        }
        (None, Profile::Development) => (memory(), Some(MEMORY_WARNING)),
        (Some(url), _) => {
            let name = url.split_once(':').map_or(url, |(scheme, _)| scheme);
            let scheme = schemes.iter().find(|s| s.names.contains(&name));
            if scheme.is_none() {
                let known: Vec<String> = schemes
                    .iter()
                    .map(|s| format!("`{}`", s.names[0]))
                    .collect();
                return Err(Error::config(format!(
                    "unknown session store url scheme `{name}` in {}: expected one of {}",
                    redact(url),
                    known.join(", ")
                )));
            }
            (scheme, None)
        }
    };
    let scheme = scheme.ok_or_else(|| Error::config("no memory store is registered"))?;
    if scheme.open.is_none() {
        return Err(Error::config(format!(
            "the `{0}` session store is not compiled in: enable the `{0}` feature of session-rocket",
            scheme.feature
        )));
    }
    Ok((scheme, warning))
}

/// Where a store lives, for logs: the URL with its password masked, and a
/// SQLite file as an absolute path (a relative one depends on the working
/// directory the app happened to start in).
fn locate(url: &str) -> String {
    match url.strip_prefix("sqlite://") {
        Some(rest) => {
            let (path, query) = rest
                .split_once('?')
                .map_or((rest, None), |(p, q)| (p, Some(q)));
            let path = std::path::Path::new(path);
            let absolute = if path.is_absolute() {
                path.to_path_buf()
            } else {
                std::env::current_dir().map_or_else(|_| path.to_path_buf(), |dir| dir.join(path))
            };
            match query {
                Some(query) => format!("sqlite://{}?{query}", absolute.display()),
                None => format!("sqlite://{}", absolute.display()),
            }
        }
        None => redact(url),
    }
}

/// Masks the password of a `scheme://user:password@host/…` URL.
pub fn redact(url: &str) -> String {
    crate::config::redact_url(url)
}

#[cfg(test)]
mod tests {
    use super::{redact, select, Profile, Scheme, MEMORY_WARNING, SCHEMES};
    use crate::config::Config;

    fn url(url: Option<&str>) -> Config {
        Config {
            url: url.map(str::to_string),
            ..Config::default()
        }
    }

    fn kind(
        config: &Config,
        profile: Profile<'_>,
    ) -> Result<(&'static str, Option<&'static str>), String> {
        select(config, profile, SCHEMES)
            .map(|(s, w)| (s.kind, w))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn the_url_selects_the_store() {
        let release = Profile::Other("release");
        assert_eq!(kind(&url(Some("memory")), release), Ok(("memory", None)));
        assert_eq!(
            kind(&url(None), Profile::Development),
            Ok(("memory", Some(MEMORY_WARNING)))
        );
        assert_eq!(
            kind(&url(Some("mysql://root@h/db")), release),
            Ok(("mysql", None))
        );
        assert_eq!(
            kind(&url(Some("mariadb://root@h/db")), release),
            Ok(("mysql", None))
        );
        assert_eq!(
            kind(&url(Some("sqlite://s.db")), release),
            Ok(("sqlite", None))
        );
        assert_eq!(
            kind(&url(Some("postgres://root@h/db")), release),
            Ok(("postgres", None))
        );
        assert_eq!(
            kind(&url(Some("redis://h:6379")), release),
            Ok(("redis", None))
        );
        assert_eq!(
            kind(&url(Some("redis+cluster://a:7001,b:7002")), release),
            Ok(("redis", None))
        );
        let err = kind(&url(Some("mongodb://u:secret@h/db")), release).unwrap_err();
        assert!(
            err.contains("unknown session store url scheme `mongodb`"),
            "{err}"
        );
        assert!(err.contains("`mysql`") && err.contains("`sqlite`"), "{err}");
        assert!(
            !err.contains("secret"),
            "passwords never reach the log: {err}"
        );
    }

    #[test]
    fn outside_development_the_implicit_memory_store_is_refused() {
        let err = kind(&url(None), Profile::Other("release")).unwrap_err();
        assert!(err.contains("url = \"memory\""), "{err}");
        assert!(err.contains("[release.sessions]"), "{err}");
    }

    #[test]
    fn a_store_whose_feature_is_off_names_the_feature() {
        let off: Vec<Scheme> = SCHEMES
            .iter()
            .map(|s| Scheme { open: None, ..*s })
            .collect();
        for (u, feature) in [
            (Some("mysql://root@h/db"), "mysql"),
            (Some("sqlite://x.db"), "sqlite"),
            (None, "memory"),
        ] {
            let err = select(&url(u), Profile::Development, &off)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(&format!("enable the `{feature}` feature of session-rocket")),
                "{err}"
            );
        }
    }

    #[test]
    fn a_sqlite_location_is_absolute() {
        let here = std::env::current_dir().unwrap();
        assert_eq!(
            super::locate("sqlite://data/s.db"),
            format!("sqlite://{}", here.join("data/s.db").display())
        );
        assert_eq!(
            super::locate("sqlite:///var/s.db?mode=rwc"),
            "sqlite:///var/s.db?mode=rwc"
        );
        assert_eq!(super::locate("mysql://u:p@h/d"), "mysql://u:***@h/d");
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
        assert_eq!(
            redact("redis+cluster://u:secret@a:7001,b:7002"),
            "redis+cluster://u:***@a:7001,b:7002"
        );
    }
}
