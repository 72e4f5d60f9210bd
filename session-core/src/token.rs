//! Session tokens and the keys they are stored under.
//!
//! A [`Token`] is 256 bits from the operating system's random source; the
//! cookie carries it as 43 characters of unpadded URL-safe base64. A store
//! never sees a token: it sees the token's [`StoreKey`], its SHA-256, so a
//! copy of the session table lets no one log in.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

pub(crate) const TOKEN_BYTES: usize = 32;
/// Length of a token's text form: `ceil(32 * 8 / 6)`.
const TOKEN_CHARS: usize = 43;

/// A secret session token: what the cookie carries.
///
/// Its `Debug` output is redacted so it never lands in a log by accident.
///
/// ```
/// use session_core::Token;
///
/// let token = Token::generate().unwrap();
/// let text = token.to_cookie_value();
/// assert_eq!(text.len(), 43);
/// assert_eq!(Token::parse(&text), Some(token.clone()));
/// assert_eq!(Token::parse("not a token"), None);
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Token([u8; TOKEN_BYTES]);

impl Token {
    /// A fresh token of 256 bits from the operating system's random source.
    ///
    /// # Errors
    /// [`Error::Random`] when the OS random source fails, which on a working
    /// system does not happen.
    pub fn generate() -> Result<Token> {
        let mut bytes = [0u8; TOKEN_BYTES];
        getrandom::getrandom(&mut bytes).map_err(Error::Random)?;
        Ok(Token(bytes))
    }

    /// Parses a cookie value. Anything that is not exactly 43 characters of
    /// unpadded URL-safe base64 encoding 32 bytes is `None`: a malformed
    /// cookie is treated as no cookie.
    pub fn parse(text: &str) -> Option<Token> {
        if text.len() != TOKEN_CHARS {
            return None;
        }
        let mut bytes = [0u8; TOKEN_BYTES];
        match URL_SAFE_NO_PAD.decode_slice(text, &mut bytes) {
            Ok(TOKEN_BYTES) => Some(Token(bytes)),
            _ => None,
        }
    }

    /// The cookie value: 43 characters of unpadded URL-safe base64.
    pub fn to_cookie_value(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    /// The token's bytes (the cookie store seals them into the cookie).
    pub(crate) fn as_bytes(&self) -> &[u8; TOKEN_BYTES] {
        &self.0
    }

    pub(crate) fn from_bytes(bytes: [u8; TOKEN_BYTES]) -> Token {
        Token(bytes)
    }

    /// The key a store keeps this session under: the SHA-256 of the token.
    pub fn store_key(&self) -> StoreKey {
        StoreKey(Sha256::digest(self.0).into())
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// The SHA-256 of a [`Token`]: what stores index sessions by.
///
/// Knowing a key does not let anyone present the token; still, its
/// `Debug` form shows only its [`SessionId`], so logs do not hold what
/// finds a row in the store.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StoreKey([u8; 32]);

impl StoreKey {
    /// The 32 bytes of the hash.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Builds a key from stored bytes (stores use this when reading keys back).
    pub fn from_bytes(bytes: [u8; 32]) -> StoreKey {
        StoreKey(bytes)
    }
}

impl StoreKey {
    /// The session's [`SessionId`]: what events and logs name it by.
    pub fn id(&self) -> SessionId {
        let digest = Sha256::new()
            .chain_update(b"session-id\0")
            .chain_update(self.0)
            .finalize();
        let mut id = [0; 16];
        id.copy_from_slice(&digest[..16]);
        SessionId(id)
    }
}

impl fmt::Debug for StoreKey {
    // Its session id, not its bytes: a log holds nothing a database row
    // can be found by.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoreKey({})", self.id())
    }
}

/// A session's printable name in events, metrics-free logs and audit
/// trails: 128 bits of a SHA-256 over its [`StoreKey`], shown as 32 hex
/// digits. It names one session under one token (a regenerate gives the
/// session a new one, and its `regenerated` event carries both), and it
/// leads neither to the token nor to the stored row: an audit log that
/// keeps it lets no one log in or look the session up in the database.
///
/// ```
/// use session_core::Token;
///
/// let key = Token::generate().unwrap().store_key();
/// let id = key.id();
/// assert_eq!(id.to_string().len(), 32);
/// assert_eq!(id, key.id());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId([u8; 16]);

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// The error of parsing a [`SessionId`]: the text is not 32 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct InvalidSessionId;

impl fmt::Display for InvalidSessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a session id is 32 hexadecimal digits")
    }
}

impl std::error::Error for InvalidSessionId {}

/// Reads the 32 hex digits [`Display`](fmt::Display) writes (either case),
/// as a "sign out this device" form sends back the id its page showed.
///
/// ```
/// use session_core::{SessionId, Token};
///
/// let id = Token::generate().unwrap().store_key().id();
/// assert_eq!(id.to_string().parse::<SessionId>(), Ok(id));
/// assert!("not an id".parse::<SessionId>().is_err());
/// ```
impl std::str::FromStr for SessionId {
    type Err = InvalidSessionId;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.as_bytes();
        if text.len() != 32 || !text.iter().all(u8::is_ascii_hexdigit) {
            return Err(InvalidSessionId);
        }
        let mut out = [0u8; 16];
        for (byte, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
            let digits = std::str::from_utf8(pair).map_err(|_| InvalidSessionId)?;
            *byte = u8::from_str_radix(digits, 16).map_err(|_| InvalidSessionId)?;
        }
        Ok(SessionId(out))
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_distinct_and_round_trip() {
        let a = Token::generate().unwrap();
        let b = Token::generate().unwrap();
        assert_ne!(a, b);
        let text = a.to_cookie_value();
        assert_eq!(text.len(), TOKEN_CHARS);
        assert!(text
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        assert_eq!(Token::parse(&text), Some(a));
    }

    #[test]
    fn malformed_tokens_are_none() {
        let good = Token::generate().unwrap().to_cookie_value();
        assert_eq!(Token::parse(""), None);
        assert_eq!(Token::parse(&good[..42]), None);
        assert_eq!(Token::parse(&format!("{good}A")), None);
        let mut bad = good.clone();
        bad.replace_range(0..1, "+");
        assert_eq!(Token::parse(&bad), None);
        assert_eq!(Token::parse(&"é".repeat(21)), None);
        // 43 chars whose last char carries non-zero padding bits do not decode.
        let mut trailing = good[..42].to_string();
        trailing.push('B');
        let _ = Token::parse(&trailing); // must not panic, either result is fine
    }

    #[test]
    fn store_key_is_sha256_of_token_bytes_not_the_token() {
        let token = Token::generate().unwrap();
        let key = token.store_key();
        assert_eq!(key.as_bytes(), &<[u8; 32]>::from(Sha256::digest(token.0)));
        assert_ne!(key.as_bytes(), &token.0);
        assert!(!format!("{token:?}").contains(&token.to_cookie_value()));
    }
}
