//! Sessions kept whole in their cookies (`url = "cookie"`), sealed with
//! AES-256-GCM, for apps without a server-side store (the model of
//! express's `cookie-session`).
//!
//! The server keeps nothing. Each request's cookie opens into a store of
//! that request's own, holding that one session; the typed layer reads and
//! writes it as it would any store (lazily, per field), and after each
//! flush the session is sealed back into the cookie when anything changed.
//! The seal (the first of `encryption_keys`, every key opening) both hides
//! and authenticates it: a cookie that does not open, from another app,
//! key or cookie name, or altered in any byte, is no cookie, and the
//! request starts a fresh session. Values are not sealed again inside it,
//! and `signing_keys` are not used.
//!
//! ```
//! use session_core::{Config, sealing::EncryptionKey, SessionManager};
//!
//! let config = Config {
//!     encryption_keys: vec![EncryptionKey::new("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")],
//!     ..Config::default()
//! };
//! let manager = SessionManager::in_cookies(config).unwrap();
//! assert!(manager.store().is_none());
//! ```
//!
//! # What it cannot do
//! Nothing that needs a record on the server holds:
//! - **No revocation.** `destroy()` removes the cookie from the browser
//!   that asked; a copy of the cookie taken earlier still opens until it
//!   expires (the expiry is inside the seal, so it cannot be extended).
//!   `regenerate()` gives a new id, but the old cookie stays valid.
//! - **No "log out everywhere"**: `#[session(index)]` needs a server-side
//!   store.
//! - **The last response wins.** Two concurrent requests (two tabs) each
//!   return the whole session; the browser keeps the later cookie, so a
//!   change made by the other request is lost, and a slower request can
//!   bring back a session a logout removed. `#[session(versioned)]` fields
//!   cannot be kept exact across tabs, so a session type with one is
//!   refused (see [`SessionManager::supports`](crate::SessionManager::supports)).
//! - **Size.** Browsers keep about 4 KB per cookie: a session whose sealed
//!   cookie would pass [`COOKIE_LIMIT`] is refused with
//!   [`Error::CookieTooLarge`] when it is saved (an explicit `save()` in
//!   the handler sees it), never sent truncated or dropped.
//!
//! The sealed expiry is checked on every request: an idle or
//! `max_lifetime`-expired cookie opens to no session.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::sealing::{Sealer, COOKIE_OVERHEAD};
use crate::store::{
    Changes, Ended, ExpiryUpdate, NewSession, PreviousKey, Record, Saved, SessionStore, Timestamp,
    Validity,
};
use crate::token::{StoreKey, Token, TOKEN_BYTES};

pub use super::COOKIE_LIMIT;
use super::{Arrival, Carried, Carrier, SealedCookie};

/// Whole sessions sealed into their cookies.
#[derive(Debug)]
pub(crate) struct SealedCarrier {
    seal: Arc<Seal>,
}

/// What every request's cookie is opened and sealed with.
struct Seal {
    sealer: Sealer,
    /// The cookie's name: a seal opens only under the name it was made for.
    name: String,
}

impl fmt::Debug for Seal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Seal")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl SealedCarrier {
    /// # Errors
    /// [`Error::Config`] without `encryption_keys`, or with one that is not
    /// usable.
    pub(crate) fn new(config: &Config) -> Result<Self> {
        let sealer = Sealer::new(&config.encryption_keys)?.ok_or_else(|| {
            Error::config(
                "sessions kept in cookies (`url = \"cookie\"`) are sealed with `encryption_keys`, \
                 and none is set: add one (`openssl rand -base64 32`)",
            )
        })?;
        Ok(SealedCarrier {
            seal: Arc::new(Seal {
                sealer,
                name: config.cookie_name.clone(),
            }),
        })
    }
}

impl Carrier for SealedCarrier {
    /// The session the cookie carries if it opens and is alive at `at`;
    /// an empty store otherwise.
    fn read(&self, value: Option<&str>, at: Validity) -> Arrival {
        let name = &self.seal.name;
        let opened = value
            .filter(|v| v.len() + name.len() < COOKIE_LIMIT)
            .and_then(|v| URL_SAFE_NO_PAD.decode(v).ok())
            .and_then(|sealed| self.seal.sealer.open_cookie(name, &sealed))
            .and_then(|plain| Whole::decode(&plain))
            .filter(|(_, s)| s.alive(at));
        let (token, session) = match opened {
            Some((token, whole)) => {
                let key = token.store_key();
                (Some((token, Some(key))), Some((key, whole)))
            }
            None => (None, None),
        };
        let carried = Arc::new(InCookie {
            seal: self.seal.clone(),
            slot: Mutex::new(Held {
                session,
                changed: false,
            }),
        });
        Arrival {
            token,
            carried: Some(carried),
        }
    }

    fn value(&self, _: &Token) -> Option<String> {
        None
    }

    fn refuses(&self, indexed: bool, versioned: bool) -> Option<(&'static str, &'static str)> {
        if indexed {
            Some((
                "index",
                "finding a user's sessions needs a server-side store",
            ))
        } else if versioned {
            Some((
                "versioned",
                "concurrent requests each send back the whole cookie, so no version holds across them",
            ))
        } else {
            None
        }
    }
}

/// A session as its cookie carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Whole {
    created_at: Timestamp,
    expires_at: Timestamp,
    idle_timeout: Timestamp,
    persistent: Option<bool>,
    fields: Vec<(String, Vec<u8>)>,
}

/// The plaintext's format: 1.
const FORMAT: u8 = 1;
/// Format, token, three timestamps, the cookie choice.
const FIXED: usize = 1 + TOKEN_BYTES + 3 * 8 + 1;

impl Whole {
    fn alive(&self, at: Validity) -> bool {
        at.admits(self.created_at, self.expires_at)
    }

    /// Bytes of the plaintext: the fixed part, then per field a one-byte
    /// name length, the name, a two-byte value length and the value.
    fn encoded_len(&self) -> usize {
        FIXED
            + self
                .fields
                .iter()
                .map(|(n, v)| 1 + n.len() + 2 + v.len())
                .sum::<usize>()
    }

    fn encode(&self, token: &Token) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        out.push(FORMAT);
        out.extend_from_slice(token.as_bytes());
        for t in [self.created_at, self.expires_at, self.idle_timeout] {
            out.extend_from_slice(&t.to_le_bytes());
        }
        out.push(match self.persistent {
            None => 0,
            Some(false) => 1,
            Some(true) => 2,
        });
        for (name, value) in &self.fields {
            // Names are Rust identifiers or `rename`s (checked by the
            // derive); values fit: `fits` refused larger sessions.
            out.push(name.len() as u8);
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(&(value.len() as u16).to_le_bytes());
            out.extend_from_slice(value);
        }
        out
    }

    fn decode(bytes: &[u8]) -> Option<(Token, Whole)> {
        let mut r = Reader(bytes);
        if r.take(1)? != [FORMAT] {
            return None;
        }
        let token = Token::from_bytes(r.take(TOKEN_BYTES)?.try_into().ok()?);
        let mut time = || Some(i64::from_le_bytes(r.take(8)?.try_into().ok()?));
        let (created_at, expires_at, idle_timeout) = (time()?, time()?, time()?);
        let persistent = match r.take(1)?[0] {
            0 => None,
            1 => Some(false),
            2 => Some(true),
            _ => return None,
        };
        let mut fields = Vec::new();
        while !r.0.is_empty() {
            let len = usize::from(r.take(1)?[0]);
            let name = std::str::from_utf8(r.take(len)?).ok()?.to_string();
            let len = usize::from(u16::from_le_bytes(r.take(2)?.try_into().ok()?));
            fields.push((name, r.take(len)?.to_vec()));
        }
        let whole = Whole {
            created_at,
            expires_at,
            idle_timeout,
            persistent,
            fields,
        };
        Some((token, whole))
    }

    fn field(&self, name: &str) -> Option<&Vec<u8>> {
        self.fields.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    fn set(&mut self, name: &str, value: &[u8]) {
        match self.fields.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => *v = value.to_vec(),
            None => self.fields.push((name.to_string(), value.to_vec())),
        }
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
}

/// The length of the cookie (a name of `name_len` bytes, `=`, the value)
/// that carries a plaintext of `plain` bytes: sealed, then unpadded URL-safe base64.
fn cookie_len(name_len: usize, plain: usize) -> usize {
    let sealed = plain + COOKIE_OVERHEAD;
    name_len + 1 + (sealed * 4).div_ceil(3)
}

/// One request's store: the session its cookie carried, if it opened, and
/// what the request did to it.
struct InCookie {
    seal: Arc<Seal>,
    slot: Mutex<Held>,
}

struct Held {
    /// The session and the key it is under.
    session: Option<(StoreKey, Whole)>,
    /// A write, a create or a destroy happened: the cookie must follow.
    changed: bool,
}

impl fmt::Debug for InCookie {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InCookie").finish_non_exhaustive()
    }
}

impl Carried for InCookie {
    fn store(self: Arc<Self>) -> Arc<dyn SessionStore> {
        self
    }

    fn changed(&self) -> bool {
        self.lock().changed
    }

    fn seal(&self, token: &Token, key: &StoreKey) -> Result<Option<SealedCookie>> {
        let slot = self.lock();
        let Some((stored, session)) = &slot.session else {
            return Ok(None);
        };
        if stored != key {
            return Ok(None);
        }
        let sealed = self
            .seal
            .sealer
            .seal_cookie(&self.seal.name, &session.encode(token))?;
        Ok(Some(SealedCookie {
            value: URL_SAFE_NO_PAD.encode(sealed),
            expires_at: session.expires_at,
            persistent: session.persistent,
        }))
    }
}

impl InCookie {
    fn lock(&self) -> MutexGuard<'_, Held> {
        self.slot.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Refuses a session whose cookie would pass [`COOKIE_LIMIT`].
    fn fits(&self, session: &Whole) -> Result<()> {
        let size = cookie_len(self.seal.name.len(), session.encoded_len());
        if size > COOKIE_LIMIT || session.fields.iter().any(|(_, v)| v.len() > COOKIE_LIMIT) {
            return Err(Error::CookieTooLarge {
                size,
                limit: COOKIE_LIMIT,
            });
        }
        Ok(())
    }

    /// The live session under `key`.
    fn live<'s>(slot: &'s mut Held, key: &StoreKey, at: Validity) -> Option<&'s mut Whole> {
        match &mut slot.session {
            Some((k, s)) if k == key && s.alive(at) => Some(s),
            _ => None,
        }
    }
}

#[async_trait]
impl SessionStore for InCookie {
    async fn load(&self, key: &StoreKey, skip: &[&str], at: Validity) -> Result<Option<Record>> {
        let mut slot = self.lock();
        Ok(Self::live(&mut slot, key, at).map(|s| {
            let mut record = Record {
                created_at: s.created_at,
                expires_at: s.expires_at,
                idle_timeout: s.idle_timeout,
                persistent: s.persistent,
                fields: s
                    .fields
                    .iter()
                    .filter(|(n, _)| !skip.contains(&n.as_str()))
                    .cloned()
                    .collect(),
                versions: Vec::new(),
            };
            record.drop_expired(at.now);
            record
        }))
    }

    async fn load_field(
        &self,
        key: &StoreKey,
        name: &str,
        at: Validity,
    ) -> Result<Option<Vec<u8>>> {
        let mut slot = self.lock();
        Ok(Self::live(&mut slot, key, at).and_then(|s| s.field(name).cloned()))
    }

    /// A cookie holds one session: a new one replaces whatever it held.
    async fn create(
        &self,
        key: &StoreKey,
        session: NewSession,
        fields: &[(&'static str, Vec<u8>)],
    ) -> Result<bool> {
        let whole = Whole {
            created_at: session.created_at,
            expires_at: session.expires_at,
            idle_timeout: session.idle_timeout,
            persistent: session.persistent,
            fields: fields
                .iter()
                .map(|(n, v)| (n.to_string(), v.clone()))
                .collect(),
        };
        self.fits(&whole)?;
        let mut slot = self.lock();
        slot.session = Some((*key, whole));
        slot.changed = true;
        Ok(true)
    }

    async fn save(&self, key: &StoreKey, changes: &Changes, at: Validity) -> Result<Saved> {
        if !changes.expect.is_empty() || !changes.index.is_empty() {
            return Err(Error::config(
                "sessions kept in cookies have no versioned or indexed fields (see `SessionManager::supports`)",
            ));
        }
        let mut slot = self.lock();
        let Some(stored) = Self::live(&mut slot, key, at) else {
            return Ok(Saved::Gone);
        };
        // All or nothing: the changes go to a copy, kept only if it fits.
        let mut next = stored.clone();
        if changes.clear {
            next.fields.clear();
        }
        for (name, value) in &changes.upsert {
            next.set(name, value);
        }
        next.fields
            .retain(|(n, _)| !changes.remove.contains(&n.as_str()));
        let cap = next.created_at.saturating_add(at.max_lifetime());
        match changes.expiry {
            Some(ExpiryUpdate::Extend(to)) => next.expires_at = next.expires_at.max(to).min(cap),
            Some(ExpiryUpdate::Set {
                expires_at,
                idle_timeout,
                persistent,
            }) => {
                next.expires_at = expires_at.min(cap);
                next.idle_timeout = idle_timeout;
                next.persistent = persistent;
            }
            None => {}
        }
        self.fits(&next)?;
        let key = changes.rename.map_or(*key, |r| r.to);
        slot.session = Some((key, next));
        slot.changed = true;
        Ok(Saved::Saved)
    }

    async fn previous(&self, _: &StoreKey, _: Timestamp) -> Result<Option<PreviousKey>> {
        Ok(None)
    }

    async fn destroy(&self, key: &StoreKey, _: Timestamp) -> Result<bool> {
        let mut slot = self.lock();
        if slot.session.as_ref().is_some_and(|(k, _)| k == key) {
            slot.session = None;
            slot.changed = true;
            return Ok(true);
        }
        Ok(false)
    }

    async fn delete_expired(&self, _: Validity, _: u32) -> Result<Vec<Ended>> {
        Ok(Vec::new())
    }

    fn name(&self) -> &'static str {
        "cookie"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(fields: Vec<(String, Vec<u8>)>) -> Whole {
        Whole {
            created_at: 1_700_000_000,
            expires_at: 1_700_086_400,
            idle_timeout: 86_400,
            persistent: Some(true),
            fields,
        }
    }

    #[test]
    fn the_plaintext_round_trips_and_its_length_is_known_in_advance() {
        let token = Token::generate().unwrap();
        let session = whole(vec![
            ("user".into(), b"42".to_vec()),
            ("cart".into(), vec![0, 255, 1, 254]),
            ("empty".into(), Vec::new()),
        ]);
        let bytes = session.encode(&token);
        assert_eq!(bytes.len(), session.encoded_len());
        let (back, decoded) = Whole::decode(&bytes).unwrap();
        assert_eq!(back, token);
        assert_eq!(decoded, session);
        // A cut anywhere is refused, never read as a shorter session.
        for cut in 1..bytes.len() {
            if let Some((_, s)) = Whole::decode(&bytes[..cut]) {
                // Cutting exactly between fields is a valid shorter list.
                assert!(s.fields.len() < session.fields.len(), "cut {cut}");
            }
        }
    }

    #[test]
    fn the_cookie_length_is_the_sealed_base64_length() {
        let sealer = Sealer::new(&[crate::sealing::EncryptionKey::new(
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        )])
        .unwrap()
        .unwrap();
        let token = Token::generate().unwrap();
        for size in [0, 1, 2, 3, 100, 1000, 2900] {
            let session = whole(vec![("v".into(), vec![7; size])]);
            let plain = session.encode(&token);
            let value = URL_SAFE_NO_PAD.encode(sealer.seal_cookie("session", &plain).unwrap());
            assert_eq!(
                cookie_len("session".len(), plain.len()),
                "session=".len() + value.len()
            );
        }
    }
}
