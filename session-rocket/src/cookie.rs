//! The session cookie: read from the request, built from the configuration.

use rocket::http::{Cookie, SameSite as RocketSameSite};
use rocket::time::{Duration, OffsetDateTime};
use rocket::Request;
use session_core::config::SameSite;
use session_core::state::CookieAction;
use session_core::SessionManager;

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
pub(crate) fn render(manager: &SessionManager, action: &CookieAction) -> Cookie<'static> {
    let config = manager.config();
    let (value, max_age) = match action {
        CookieAction::Set { value, max_age, .. } => (value.clone(), *max_age),
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

/// The session cookie's value, from every `Cookie` header of the request.
///
/// Rocket's cookie jar keeps the last of several cookies with one name; a
/// sibling subdomain can plant such a second cookie (`Domain=.example.com`),
/// and the browser sends both in an order the server cannot trust. So when
/// the request carries several different values under the session's name,
/// none is used: the request starts a fresh session, and a warning names
/// the fix (a `__Host-` cookie name, which no other host can set).
pub(crate) fn read(req: &Request<'_>, name: &str) -> Option<String> {
    let mut found: Option<&str> = None;
    let from_headers = req.headers().get("Cookie").flat_map(|h| h.split(';'));
    // Rocket's jar holds one of the header values (or, for a local client,
    // the only one).
    let from_jar = req.cookies().get(name).map(|c| c.value());
    let values = from_headers
        .filter_map(|pair| pair.split_once('='))
        .filter(|(n, _)| n.trim() == name)
        .map(|(_, v)| v.trim().trim_matches('"'))
        .chain(from_jar);
    for v in values {
        {
            match found {
                Some(seen) if seen != v => {
                    rocket::warn!(
                        "the request carries several `{name}` cookies with different values \
                         (one may have been set by another subdomain); none is used. Name the \
                         cookie `__Host-{name}` so no other host can set it"
                    );
                    return None;
                }
                _ => found = Some(v),
            }
        }
    }
    found.map(str::to_string)
}
