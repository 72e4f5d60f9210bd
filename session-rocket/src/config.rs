//! Reading `[default.sessions]` from Rocket's figment.

use rocket::figment::providers::{Env, Serialized};
use rocket::figment::Figment;
use session_core::Config;

/// Extracts the session [`Config`] from a Rocket figment: the `sessions`
/// table (`[default.sessions]` in `Rocket.toml`, or
/// `ROCKET_SESSIONS='{ttl=3600}'`), then `ROCKET_SESSIONS_*` variables
/// (`ROCKET_SESSIONS_TTL=3600`), over the safe defaults of
/// [`Config::default`].
///
/// Rocket's own figment reads `ROCKET_*` variables without splitting on `_`,
/// so `ROCKET_SESSIONS_TTL` would arrive as a key `sessions_ttl` that nothing
/// reads; merging `Env::prefixed("ROCKET_SESSIONS_")` here makes that form
/// work too.
///
/// # Errors
/// A figment error naming the bad key (unknown keys are errors, so a typo
/// does not silently fall back to a default).
///
/// ```
/// use rocket::figment::{Figment, providers::{Format, Toml}};
///
/// let toml = Toml::string("[default.sessions]\nttl = 600\nsecure = false").nested();
/// let figment = Figment::from(toml);
/// let config = session_rocket::config::extract(&figment).unwrap();
/// assert_eq!(config.ttl, 600);
/// assert!(!config.secure);
/// assert_eq!(config.cookie_name, "session");
/// ```
// figment's own error type, returned as figment returns it, so callers can
// hand it to `rocket::config::pretty_print_error`.
#[allow(clippy::result_large_err)]
pub fn extract(figment: &Figment) -> Result<Config, rocket::figment::Error> {
    figment
        .focus("sessions")
        .join(Serialized::defaults(Config::default()))
        .merge(Env::prefixed("ROCKET_SESSIONS_").global())
        .extract()
}
