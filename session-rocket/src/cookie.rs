//! The session cookie, built from the configuration.

use rocket::http::{Cookie, SameSite as RocketSameSite};
use rocket::time::{Duration, OffsetDateTime};
use session_core::config::{Config, SameSite};
use session_core::state::CookieAction;

fn same_site(value: SameSite) -> RocketSameSite {
    match value {
        SameSite::Strict => RocketSameSite::Strict,
        SameSite::Lax => RocketSameSite::Lax,
        SameSite::None => RocketSameSite::None,
    }
}

/// The `Set-Cookie` for an action: the token with the configured flags, or
/// a removal with the same name, path, domain and flags (browsers only
/// drop a cookie when those match). `HttpOnly` is always on.
pub(crate) fn render(config: &Config, action: &CookieAction) -> Cookie<'static> {
    let (value, max_age) = match action {
        CookieAction::Set { token, max_age } => (
            token.to_cookie_value(),
            config.persistent.then_some(*max_age),
        ),
        CookieAction::Remove => (String::new(), Some(0)),
    };
    let mut cookie = Cookie::build((config.cookie_name.clone(), value))
        .path(config.path.clone())
        .http_only(true)
        .secure(config.secure)
        .same_site(same_site(config.same_site));
    if let Some(domain) = &config.domain {
        cookie = cookie.domain(domain.clone());
    }
    if let Some(seconds) = max_age {
        cookie = cookie.max_age(Duration::seconds(seconds.max(0)));
        if seconds <= 0 {
            cookie = cookie.expires(OffsetDateTime::UNIX_EPOCH);
        }
    }
    cookie.build()
}
