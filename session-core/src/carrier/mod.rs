//! How a session rides in its cookie: the one place that reads a
//! request's cookie and writes the response's.
//!
//! A carrier turns a request's cookie value into what the request starts
//! from, and a session back into a cookie value. There are three, chosen
//! by the configuration (`select`):
//!
//! - **bare**: the cookie is the token (43 characters of unpadded
//!   URL-safe base64), and the store keeps the session under its hash;
//! - **signed** (`signing_keys`): the token and an HMAC of it, so a forged
//!   or random cookie is refused before any store call;
//! - **sealed** (`url = "cookie"`): the whole session, sealed with
//!   AES-256-GCM; the server keeps nothing, and each request gets a store
//!   of its own holding the one session its cookie carried. See the
//!   [`sealed`] module for what that mode cannot do.
//!
//! A new carrier is one module implementing the crate-private `Carrier`
//! trait and one row in `select`; the manager, the request state and the
//! web integration never name one.

use std::fmt;
use std::sync::Arc;

use crate::config::Config;
use crate::error::Result;
use crate::store::{SessionStore, Timestamp, Validity};
use crate::token::{StoreKey, Token};

#[cfg(feature = "cookie")]
#[cfg_attr(docsrs, doc(cfg(feature = "cookie")))]
pub mod sealed;
mod token;

/// The most bytes a session cookie may take, its name and `=` included:
/// the 4096 bytes per cookie that browsers keep (RFC 6265 §6.1 asks for
/// at least that; Chrome, Firefox and Safari stop there). A session kept
/// in its cookie that would pass it is refused with
/// [`Error::CookieTooLarge`](crate::Error::CookieTooLarge) when it is saved.
pub const COOKIE_LIMIT: usize = 4096;

/// How sessions travel between the browser and the server.
pub(crate) trait Carrier: Send + Sync + fmt::Debug {
    /// Reads a request's cookie value (`None`: the request has none) at
    /// `at`: a malformed, forged or dead cookie is no cookie.
    fn read(&self, value: Option<&str>, at: Validity) -> Arrival;

    /// The cookie value that carries the token of a session kept on the
    /// server; `None` when this carrier carries whole sessions instead
    /// (their value comes from [`Carried::seal`]).
    fn value(&self, token: &Token) -> Option<String>;

    /// Why a field that is `#[session(index)]` or `#[session(versioned)]`
    /// cannot ride this carrier (the attribute and the reason), or `None`
    /// when it can.
    fn refuses(&self, indexed: bool, versioned: bool) -> Option<(&'static str, &'static str)> {
        let _ = (indexed, versioned);
        None
    }
}

/// What a request's cookie brought.
#[derive(Default)]
pub(crate) struct Arrival {
    /// The session's token, and its store key when the carrier already
    /// hashed it.
    pub(crate) token: Option<(Token, Option<StoreKey>)>,
    /// With a carrier of whole sessions, the request's own store: the
    /// session the cookie carried.
    pub(crate) carried: Option<Arc<dyn Carried>>,
}

/// A session a cookie carried whole, kept as one request's store and
/// sealed back into the response's cookie after each flush.
pub(crate) trait Carried: Send + Sync {
    /// The same object, as the store every call of the request goes to.
    fn store(self: Arc<Self>) -> Arc<dyn SessionStore>;

    /// Whether the request changed the session (the cookie must follow).
    fn changed(&self) -> bool;

    /// The cookie carrying the session under `token` now; `None` when no
    /// session lives under `key`.
    ///
    /// # Errors
    /// [`Error::CookieTooLarge`](crate::Error::CookieTooLarge) is raised
    /// by the writes; this fails only when the OS has no randomness.
    fn seal(&self, token: &Token, key: &StoreKey) -> Result<Option<SealedCookie>>;
}

/// A session sealed into a cookie value.
pub(crate) struct SealedCookie {
    pub(crate) value: String,
    pub(crate) expires_at: Timestamp,
    /// The session's own cookie choice, if it made one.
    pub(crate) persistent: Option<bool>,
}

/// The carrier a configuration selects: sealed whole sessions for `url =
/// "cookie"`, signed tokens with `signing_keys`, bare tokens otherwise.
/// `in_cookies` says the manager was built for sessions kept in cookies.
///
/// # Errors
/// [`Error::Config`](crate::Error::Config) for a key that is not usable,
/// or cookie-kept sessions without `encryption_keys`.
pub(crate) fn select(config: &Config, in_cookies: bool) -> Result<Box<dyn Carrier>> {
    #[cfg(feature = "cookie")]
    if in_cookies {
        return Ok(Box::new(sealed::SealedCarrier::new(config)?));
    }
    debug_assert!(!in_cookies, "only built with the `cookie` feature");
    Ok(Box::new(token::TokenCarrier::new(config)?))
}
