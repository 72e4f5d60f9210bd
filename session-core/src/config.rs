//! Session configuration, with the safe choice as every default.
//!
//! In a Rocket app this is read from `[default.sessions]` in `Rocket.toml`
//! (or `ROCKET_SESSIONS='{ttl=3600}'`, or `ROCKET_SESSIONS_TTL=3600`); see
//! `session-rocket`. Durations are whole seconds.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The largest field any store accepts: MySQL's `MEDIUMBLOB` holds
/// 16 MiB - 1 bytes, and a larger value would be refused (or, without
/// strict mode, truncated) by the server.
pub const MAX_FIELD_BYTES: usize = (1 << 24) - 1;

/// The default of [`Config::memory_max_sessions`].
pub const DEFAULT_MEMORY_MAX_SESSIONS: usize = 100_000;

/// What to do when a stored field no longer decodes into its type (after a
/// deploy changed the type, say).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnDecodeError {
    /// Log a warning and use the field's default. The stored bytes are left
    /// alone until the app really changes the value: a mutable borrow that
    /// leaves the default as it is writes nothing, and overwriting the old
    /// bytes logs a second warning. The default: a deploy never locks users
    /// out.
    #[default]
    Default,
    /// Return [`Error::Decode`] to the handler.
    Error,
}

/// The cookie's `SameSite` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SameSite {
    /// Sent only on same-site requests.
    Strict,
    /// Sent on same-site requests and top-level navigations (the default:
    /// blocks cross-site POSTs, keeps links from other sites working).
    #[default]
    Lax,
    /// Sent on every request; browsers require `secure = true` with it.
    None,
}

/// Every session setting. `Config::default()` is the safe configuration.
///
/// ```
/// use session_core::Config;
///
/// let config = Config { ttl: 3600, ..Config::default() };
/// config.validate().unwrap();
/// assert!(config.secure);
/// ```
///
/// Its `Debug` output masks the password in `url` (`mysql://user:***@…`);
/// the keys are redacted by their own `Debug`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    // ---- Where sessions are kept, and the connections to it.
    /// Where sessions are kept: `mysql://user:pass@host/db` (or
    /// `mariadb://`), `postgres://user@host/db`, `redis://host:6379/0`,
    /// `sqlite://path/sessions.db`, `memory`, or `cookie` (in the cookies
    /// themselves, sealed). `None` means the memory store with a warning
    /// (and, in Rocket's release profile, a refusal to launch).
    pub url: Option<String>,
    /// Create the tables at launch when they are missing. Default `true`.
    /// Users without the CREATE privilege set `false` and run the shipped
    /// `.sql` file.
    pub create_tables: bool,
    /// Prefix for the table names (`{prefix}sessions`,
    /// `{prefix}session_fields`). Letters, digits and `_` only. Default empty.
    pub table_prefix: String,
    /// Largest number of connections the store's own pool opens (SQL stores).
    /// Default 10.
    pub max_connections: u32,
    /// Seconds to wait for a pooled connection before the request fails with
    /// 503. Default 5.
    pub connect_timeout: u64,
    /// Seconds one statement (or one write transaction) may take before the
    /// request answers 503 and its connection is closed: a server that
    /// stopped answering costs a bounded wait, not a stuck request. `0`
    /// waits forever. Default 5.
    pub statement_timeout: u64,
    /// Milliseconds past which a store call is logged at warn level (its
    /// store, operation, outcome and duration; never a key or a value).
    /// `0` logs none. Default 1000.
    pub slow_store_call_ms: u64,
    /// On a MariaDB Galera Cluster node (detected when the MySQL store
    /// connects: `wsrep_on = ON`), make every statement of the store wait
    /// until the node has applied every write committed anywhere in the
    /// cluster before it (`wsrep_sync_wait = 7` on its connections): a
    /// request served by one node then sees what the previous request
    /// wrote through another, as on a single server. `false` skips the
    /// wait, and a read on one node may miss a write made a moment before
    /// on another (a lost update, a login not yet seen). Ignored elsewhere.
    /// Default `true`.
    pub causal_reads: bool,
    /// The most sessions the memory store holds (`url = "memory"`). At the
    /// cap, dead sessions are dropped first; if it is still full, a new
    /// session is refused with a 503 and existing ones are kept. Default
    /// 100 000.
    pub memory_max_sessions: usize,
    /// Keep, with each new session, the client's user agent (its first
    /// 200 characters) and a coarse address (an IPv4 /24, an IPv6 /48), as
    /// a devices page shows them ([`SessionInfo::device`]); the web
    /// integration passes what the request says (Rocket: the `User-Agent`
    /// header and `client_ip()`, which follows Rocket's `ip_header` behind a
    /// proxy). Stores with indexes only; sealed with the values under
    /// `encryption_keys`. Costs about 100 bytes per session, written with
    /// it. Default `false`.
    ///
    /// [`SessionInfo::device`]: crate::SessionInfo::device
    pub device_info: bool,

    // ---- How long a session lives, and the cleanup of the dead.
    /// Idle timeout in seconds: a session unused this long is gone.
    /// Default one day.
    pub ttl: u64,
    /// Absolute lifetime in seconds, however active the session is.
    /// Default 30 days.
    pub max_lifetime: u64,
    /// A session's expiry is pushed forward at most once per this many
    /// seconds, so reads do not turn into writes. Default 60.
    pub touch_after: u64,
    /// Seconds between runs of the expired-session cleanup; `0` disables it.
    /// Default 300.
    pub cleanup_interval: u64,
    /// Sessions deleted per cleanup statement. Default 500.
    pub cleanup_batch: u32,

    // ---- Tokens that rotate.
    /// Seconds a session's token is used before the session gets a new
    /// one: the first request that reads the session after that moves it
    /// to a fresh token (its data kept, in the same store call as the
    /// request's writes) and sets the new cookie. A copied cookie then
    /// works for at most this long, and a replay of a replaced token after
    /// [`rotation_grace`](Self::rotation_grace) ends the session for every
    /// holder (a `Destroyed { cause: TheftSuspected }` event). Server-side
    /// stores only; not on Redis Cluster. Default `None`: tokens live as
    /// long as their session.
    pub rotate_after: Option<u64>,
    /// Seconds a replaced token still works after a rotation, for the
    /// requests already in flight with it (the parallel requests of one
    /// page): they read and write the session under its new token and set
    /// no cookie. Past it, the replaced token is a stolen one. Default 10.
    pub rotation_grace: u64,

    // ---- The cookie.
    /// Cookie name. Default `"session"`.
    pub cookie_name: String,
    /// `true` (the default) gives the cookie a `Max-Age` that follows the
    /// session's expiry; `false` makes it a browser-session cookie that the
    /// browser forgets when it closes (the server-side expiry still applies).
    pub persistent: bool,
    /// Send the cookie on every response that used the session, not only
    /// when it changes. Default `false`.
    pub rolling: bool,
    /// `Secure` cookie attribute. Default `true`: the cookie is sent over
    /// HTTPS only. Browsers treat `http://localhost` as secure, so local
    /// development works; set `false` for plain HTTP on other hosts.
    pub secure: bool,
    /// `SameSite` cookie attribute. Default `lax`.
    pub same_site: SameSite,
    /// `Domain` cookie attribute. Default none (host-only cookie).
    pub domain: Option<String>,
    /// `Path` cookie attribute. Default `"/"`.
    pub path: String,

    // ---- Keys: signed cookies and values encrypted at rest.
    /// Keys that sign the session cookie (base64 of at least 32 random
    /// bytes each): the first signs, all verify. A cookie without a valid
    /// signature is treated as no cookie, before any store call. Empty (the
    /// default): unsigned cookies, whose unknown tokens cost one indexed
    /// lookup each.
    pub signing_keys: Vec<crate::signing::SigningKey>,
    /// Sign the cookie with a key derived from the web framework's own
    /// secret (Rocket's `secret_key`) instead of `signing_keys`: the web
    /// integration derives the key and puts it in `signing_keys`. Default
    /// `false`.
    pub sign_with_secret_key: bool,
    /// Keys that encrypt every stored field value (base64 of exactly 32
    /// random bytes each; AES-256-GCM): the first seals, all open, and a
    /// value is re-sealed with the first when next written. A value that
    /// does not open (another key, copied from another session or field,
    /// altered) is an undecodable field (`on_decode_error`). Empty (the
    /// default): values are stored as encoded.
    pub encryption_keys: Vec<crate::sealing::EncryptionKey>,

    // ---- Fields: sizes and values that no longer decode.
    /// Largest encoded field in bytes. Default 64 KiB.
    pub max_field_bytes: usize,
    /// Largest session (sum of its known fields) in bytes. Default 1 MiB.
    pub max_session_bytes: usize,
    /// What to do with a field that no longer decodes. Default `default`.
    pub on_decode_error: OnDecodeError,

    // ---- Requests.
    /// Do not persist changes made by a request whose response is a 5xx
    /// (the handler's own or a catcher's). A 4xx the handler returns
    /// itself (a 409, a 403) is a handled answer and does persist its
    /// changes: return a 5xx or skip the writes if that is not wanted.
    /// What the handler already stored itself (`update_x`, `save()`,
    /// `destroy()`, `start_over()`) stays stored whatever the answer.
    /// Default `true`.
    pub skip_on_server_error: bool,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Destructured, so a new setting cannot be left out by accident.
        let Config {
            url,
            cookie_name,
            ttl,
            max_lifetime,
            touch_after,
            rolling,
            secure,
            same_site,
            domain,
            path,
            persistent,
            create_tables,
            table_prefix,
            cleanup_interval,
            cleanup_batch,
            rotate_after,
            rotation_grace,
            max_field_bytes,
            max_session_bytes,
            on_decode_error,
            max_connections,
            connect_timeout,
            skip_on_server_error,
            statement_timeout,
            slow_store_call_ms,
            causal_reads,
            memory_max_sessions,
            device_info,
            signing_keys,
            sign_with_secret_key,
            encryption_keys,
        } = self;
        let url = url.as_deref().map(redact_url);
        f.debug_struct("Config")
            .field("url", &url)
            .field("cookie_name", cookie_name)
            .field("ttl", ttl)
            .field("max_lifetime", max_lifetime)
            .field("touch_after", touch_after)
            .field("rolling", rolling)
            .field("secure", secure)
            .field("same_site", same_site)
            .field("domain", domain)
            .field("path", path)
            .field("persistent", persistent)
            .field("create_tables", create_tables)
            .field("table_prefix", table_prefix)
            .field("cleanup_interval", cleanup_interval)
            .field("cleanup_batch", cleanup_batch)
            .field("rotate_after", rotate_after)
            .field("rotation_grace", rotation_grace)
            .field("max_field_bytes", max_field_bytes)
            .field("max_session_bytes", max_session_bytes)
            .field("on_decode_error", on_decode_error)
            .field("max_connections", max_connections)
            .field("connect_timeout", connect_timeout)
            .field("skip_on_server_error", skip_on_server_error)
            .field("statement_timeout", statement_timeout)
            .field("slow_store_call_ms", slow_store_call_ms)
            .field("causal_reads", causal_reads)
            .field("memory_max_sessions", memory_max_sessions)
            .field("device_info", device_info)
            .field("signing_keys", signing_keys)
            .field("sign_with_secret_key", sign_with_secret_key)
            .field("encryption_keys", encryption_keys)
            .finish()
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            url: None,
            cookie_name: "session".into(),
            ttl: 24 * 60 * 60,
            max_lifetime: 30 * 24 * 60 * 60,
            touch_after: 60,
            rolling: false,
            secure: true,
            same_site: SameSite::Lax,
            domain: None,
            path: "/".into(),
            persistent: true,
            create_tables: true,
            table_prefix: String::new(),
            cleanup_interval: 300,
            cleanup_batch: 500,
            rotate_after: None,
            rotation_grace: 10,
            max_field_bytes: 64 * 1024,
            max_session_bytes: 1024 * 1024,
            on_decode_error: OnDecodeError::Default,
            max_connections: 10,
            connect_timeout: 5,
            skip_on_server_error: true,
            statement_timeout: 5,
            slow_store_call_ms: 1000,
            causal_reads: true,
            memory_max_sessions: DEFAULT_MEMORY_MAX_SESSIONS,
            device_info: false,
            signing_keys: Vec::new(),
            sign_with_secret_key: false,
            encryption_keys: Vec::new(),
        }
    }
}

impl Config {
    /// [`statement_timeout`](Self::statement_timeout) as a duration; `None`
    /// for no limit.
    pub fn statement_timeout(&self) -> Option<std::time::Duration> {
        (self.statement_timeout > 0).then(|| std::time::Duration::from_secs(self.statement_timeout))
    }

    /// [`slow_store_call_ms`](Self::slow_store_call_ms) as a duration;
    /// `None` when slow calls are not logged.
    pub fn slow_store_call(&self) -> Option<std::time::Duration> {
        (self.slow_store_call_ms > 0)
            .then(|| std::time::Duration::from_millis(self.slow_store_call_ms))
    }

    /// Checks the values that have a valid range.
    ///
    /// # Errors
    /// [`Error::Config`] naming the setting and what it must be.
    pub fn validate(&self) -> Result<()> {
        crate::signing::CookieSigner::new(&self.signing_keys)?;
        if self.sign_with_secret_key && self.signing_keys.is_empty() {
            return Err(Error::config(
                "`sign_with_secret_key = true` needs the web framework's secret key, which \
                 its integration turns into the signing key; without one, set `signing_keys`",
            ));
        }
        crate::sealing::Sealer::new(&self.encryption_keys)?;
        let cookie_ok = !self.cookie_name.is_empty()
            && self
                .cookie_name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !cookie_ok {
            return Err(Error::config(format!(
                "`cookie_name` must be non-empty ASCII letters, digits, `-`, `_` or `.`, got {:?}",
                self.cookie_name
            )));
        }
        if let Some(rest) = self.cookie_name.strip_prefix("__Host-") {
            if rest.is_empty() || !self.secure || self.path != "/" || self.domain.is_some() {
                return Err(Error::config(format!(
                    "a `__Host-` cookie (`cookie_name = {:?}`) requires `secure = true`, \
                     `path = \"/\"` and no `domain` (browsers refuse it otherwise)",
                    self.cookie_name
                )));
            }
        }
        if self.cookie_name.starts_with("__Secure-") && !self.secure {
            return Err(Error::config(format!(
                "a `__Secure-` cookie (`cookie_name = {:?}`) requires `secure = true`",
                self.cookie_name
            )));
        }
        if self.ttl == 0 {
            return Err(Error::config("`ttl` must be at least 1 second"));
        }
        if self.touch_after >= self.ttl {
            return Err(Error::config(format!(
                "`touch_after` ({}) must be less than `ttl` ({}): a session is touched at most \
                 once per `touch_after`, so an active session would expire between touches",
                self.touch_after, self.ttl
            )));
        }
        if self.max_lifetime == 0 {
            return Err(Error::config("`max_lifetime` must be at least 1 second"));
        }
        if let Some(after) = self.rotate_after {
            if self.rotation_grace == 0 || self.rotation_grace > 300 {
                return Err(Error::config(format!(
                    "`rotation_grace` must be between 1 and 300 seconds (the longest a request \
                     in flight may still use a replaced token), got {}",
                    self.rotation_grace
                )));
            }
            if after <= self.rotation_grace {
                return Err(Error::config(format!(
                    "`rotate_after` ({after}) must be more than `rotation_grace` ({}): a token \
                     must outlive the grace of the one it replaced",
                    self.rotation_grace
                )));
            }
        }
        if self.max_field_bytes == 0 || self.max_session_bytes == 0 {
            return Err(Error::config(
                "`max_field_bytes` and `max_session_bytes` must be positive",
            ));
        }
        if self.max_field_bytes > MAX_FIELD_BYTES {
            return Err(Error::config(format!(
                "`max_field_bytes` must be at most {MAX_FIELD_BYTES} (a MySQL MEDIUMBLOB); got {}",
                self.max_field_bytes
            )));
        }
        if !self.path.starts_with('/') {
            return Err(Error::config(format!(
                "`path` must start with `/`, got {:?}",
                self.path
            )));
        }
        if self.same_site == SameSite::None && !self.secure {
            return Err(Error::config(
                "`same_site = \"none\"` requires `secure = true` (browsers drop such cookies otherwise)",
            ));
        }
        validate_prefix(&self.table_prefix)?;
        Ok(())
    }
}

/// The longest prefix we accept: MySQL identifiers are at most 64
/// characters, and the longest table name we append is `session_fields`
/// plus a constraint suffix.
const MAX_PREFIX: usize = 32;

/// Accepts a table prefix made of ASCII letters, digits and `_` that does not
/// start with a digit, so it can be spliced into SQL without quoting
/// surprises.
///
/// # Errors
/// [`Error::Config`] naming `table_prefix` and the rule.
pub(crate) fn validate_prefix(prefix: &str) -> Result<()> {
    let ok = prefix.len() <= MAX_PREFIX
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !prefix.starts_with(|c: char| c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(Error::config(format!(
            "`table_prefix` must be at most {MAX_PREFIX} ASCII letters, digits or `_` and not start with a digit, got {prefix:?}"
        )))
    }
}

/// One of `variants` (the serialized names), case-insensitively: `"Lax"`
/// and `"lax"` are the same.
fn one_of<'de, D, T>(
    deserializer: D,
    variants: &'static [(&'static str, T)],
) -> std::result::Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Copy,
{
    let text = String::deserialize(deserializer)?;
    let wanted = text.to_ascii_lowercase();
    match variants.iter().find(|(name, _)| *name == wanted) {
        Some((_, value)) => Ok(*value),
        None => {
            let names: Vec<String> = variants
                .iter()
                .map(|(name, _)| format!("`{name}`"))
                .collect();
            Err(serde::de::Error::custom(format!(
                "unknown variant `{text}`, expected one of {}",
                names.join(", ")
            )))
        }
    }
}

impl<'de> Deserialize<'de> for OnDecodeError {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        one_of(
            deserializer,
            &[
                ("default", OnDecodeError::Default),
                ("error", OnDecodeError::Error),
            ],
        )
    }
}

impl<'de> Deserialize<'de> for SameSite {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        one_of(
            deserializer,
            &[
                ("strict", SameSite::Strict),
                ("lax", SameSite::Lax),
                ("none", SameSite::None),
            ],
        )
    }
}

/// Masks the password of a `scheme://user:password@host/…` URL (for
/// logs and `Debug`).
pub(crate) fn redact_url(url: &str) -> String {
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

#[cfg(test)]
mod rotation_tests {
    use super::Config;

    fn rotating(after: u64, grace: u64) -> Config {
        Config {
            rotate_after: Some(after),
            rotation_grace: grace,
            ..Config::default()
        }
    }

    #[test]
    fn the_grace_is_short_and_shorter_than_the_rotation() {
        assert!(rotating(900, 10).validate().is_ok());
        let zero = rotating(900, 0).validate().unwrap_err().to_string();
        assert!(
            zero.contains("`rotation_grace` must be between 1 and 300"),
            "{zero}"
        );
        assert!(rotating(900, 301).validate().is_err());
        let short = rotating(10, 10).validate().unwrap_err().to_string();
        assert!(
            short.contains("must be more than `rotation_grace`"),
            "{short}"
        );
        // Off: the grace is not looked at.
        let off = Config {
            rotation_grace: 0,
            ..Config::default()
        };
        assert!(off.validate().is_ok());
    }
}

#[cfg(test)]
mod prefix_tests {
    use super::validate_prefix;

    #[test]
    fn prefixes_are_identifiers() {
        assert!(validate_prefix("app_").is_ok());
        assert!(validate_prefix("").is_ok());
        assert!(validate_prefix("x`; DROP TABLE users; --").is_err());
        assert!(validate_prefix("1app").is_err());
    }
}
