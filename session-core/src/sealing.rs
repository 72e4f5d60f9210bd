//! Encryption at rest: every stored field value sealed with AES-256-GCM.
//!
//! With `encryption_keys` set, a value is sealed before any store sees it
//! and opened after the load, so a copy of the database holds no
//! plaintext. Each session seals under its own key, derived from the
//! configured key and the session's store key (HMAC-SHA256), with the store
//! key and the field's stored name as associated data: a value copied to
//! another session or another field, or a whole session moved to another
//! token, no longer opens. A random 96-bit nonce per value is safe because
//! each session key seals only that session's writes.
//!
//! A sealed value is `1 | key id (4) | nonce (12) | ciphertext | tag (16)`:
//! the key id (the start of a hash of the configured key) picks the key
//! that opens it, so a rotated list opens old values without trying every
//! key. The first key seals; a value is re-sealed with it whenever it is
//! next written.

use std::cell::OnceCell;
use std::fmt;

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::token::StoreKey;

/// The format's first byte.
const FORMAT: u8 = 1;
const KEY_ID: usize = 4;
const NONCE: usize = 12;
const TAG: usize = 16;
const HEADER: usize = 1 + KEY_ID + NONCE;

/// What sealing adds to a value's size, in bytes.
pub(crate) const OVERHEAD: usize = HEADER + TAG;

/// Separates the per-session key derivation from any other use of the
/// configured key.
const DERIVE_CONTEXT: &[u8] = b"session-core/seal/v1\0";

/// The first byte of a whole session sealed for the cookie store.
const COOKIE_FORMAT: u8 = 2;
/// The random salt each cookie's key is derived from.
const SALT: usize = 16;
const COOKIE_HEADER: usize = 1 + KEY_ID + SALT + NONCE;

/// What sealing adds to a session kept in a cookie, in bytes.
pub(crate) const COOKIE_OVERHEAD: usize = COOKIE_HEADER + TAG;

/// Separates the cookie store's key derivation from the others.
const COOKIE_CONTEXT: &[u8] = b"session-core/cookie/v1\0";

/// An encryption key as configured: base64 of exactly 32 random bytes
/// (AES-256). Its `Debug` output is redacted.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EncryptionKey(String);

impl EncryptionKey {
    /// A key from its base64 text (checked when the configuration is
    /// validated).
    pub fn new(base64: impl Into<String>) -> Self {
        EncryptionKey(base64.into())
    }
}

/// The encryption key derived from a framework's own secret (Rocket's
/// `secret_key`, base64 or hex of 32 or 64 bytes), as Rocket's private
/// cookies use it: HMAC-SHA256 of a label under the secret, distinct from
/// the [signing key](crate::signing::derive_signing_key) derived from the
/// same secret. `None` when `secret` is neither base64 nor hex of at
/// least 32 bytes.
pub fn derive_encryption_key(secret: &str) -> Option<EncryptionKey> {
    crate::signing::derive_from_secret(secret, b"session-core/cookie-sealing/v1").map(EncryptionKey)
}

impl fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EncryptionKey(<redacted>)")
    }
}

/// One configured key: its id in sealed values and the MAC that derives
/// per-session keys from it.
#[derive(Clone)]
struct MasterKey {
    id: [u8; KEY_ID],
    derive: Hmac<Sha256>,
}

/// Seals and opens field values with the configured keys.
#[derive(Clone)]
pub(crate) struct Sealer {
    /// The sealing key first.
    keys: Vec<MasterKey>,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealer")
            .field("keys", &self.keys.len())
            .finish()
    }
}

impl Sealer {
    /// The sealer for `keys`; `None` when there is none (values stored as
    /// encoded).
    ///
    /// # Errors
    /// [`Error::Config`] naming the key that is not base64 of 32 bytes, or
    /// two keys that are the same.
    pub(crate) fn new(keys: &[EncryptionKey]) -> Result<Option<Self>> {
        if keys.is_empty() {
            return Ok(None);
        }
        let mut masters: Vec<MasterKey> = Vec::with_capacity(keys.len());
        for (i, key) in keys.iter().enumerate() {
            let bytes = crate::signing::key_bytes(&key.0)
                .filter(|b| b.len() == 32)
                .ok_or_else(|| {
                    Error::config(format!(
                        "`encryption_keys[{i}]` must be base64 of exactly 32 random bytes \
                         (e.g. the output of `openssl rand -base64 32`)"
                    ))
                })?;
            let digest = Sha256::new()
                .chain_update(b"session-core/key-id\0")
                .chain_update(&bytes)
                .finalize();
            let mut id = [0u8; KEY_ID];
            id.copy_from_slice(&digest[..KEY_ID]);
            if let Some(j) = masters.iter().position(|m| m.id == id) {
                return Err(Error::config(format!(
                    "`encryption_keys[{i}]` is the same key as `encryption_keys[{j}]`"
                )));
            }
            let derive = <Hmac<Sha256> as Mac>::new_from_slice(&bytes)
                .map_err(|e| Error::config(format!("`encryption_keys[{i}]`: {e}")))?;
            masters.push(MasterKey { id, derive });
        }
        Ok(Some(Sealer { keys: masters }))
    }

    /// Seals and opens the values of the session stored under `key`,
    /// deriving its keys once (a request opens every loaded field with
    /// them: deriving per value measured up to 17 % of a `read`).
    pub(crate) fn session(&self, key: &StoreKey) -> SessionSeal<'_> {
        SessionSeal {
            sealer: self,
            key: *key,
            ciphers: self.keys.iter().map(|_| OnceCell::new()).collect(),
        }
    }

    /// Seals one value (see [`SessionSeal::seal`]).
    #[cfg(test)]
    pub(crate) fn seal(&self, key: &StoreKey, name: &str, plain: &[u8]) -> Result<Vec<u8>> {
        self.session(key).seal(name, plain)
    }

    /// Opens one value (see [`SessionSeal::open`]).
    pub(crate) fn open(&self, key: &StoreKey, name: &str, sealed: &[u8]) -> Option<Vec<u8>> {
        self.session(key).open(name, sealed)
    }
}

/// One session's sealing keys, derived on first use.
pub(crate) struct SessionSeal<'a> {
    sealer: &'a Sealer,
    key: StoreKey,
    /// Per configured key, the session's AES-256-GCM key.
    ciphers: Box<[OnceCell<Aes256Gcm>]>,
}

impl SessionSeal<'_> {
    fn cipher(&self, index: usize) -> &Aes256Gcm {
        self.ciphers[index].get_or_init(|| cipher(&self.sealer.keys[index], &self.key))
    }

    /// Seals `plain`, the bytes of field `name` of this session, with the
    /// first key.
    ///
    /// # Errors
    /// [`Error::Backend`] when the OS has no randomness for the nonce.
    pub(crate) fn seal(&self, name: &str, plain: &[u8]) -> Result<Vec<u8>> {
        let key = &self.key;
        let master = &self.sealer.keys[0];
        let mut out = Vec::with_capacity(OVERHEAD + plain.len());
        out.push(FORMAT);
        out.extend_from_slice(&master.id);
        let nonce: [u8; NONCE] = random()?;
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plain);
        let tag = self
            .cipher(0)
            .encrypt_in_place_detached(
                Nonce::from_slice(&nonce),
                &aad(key, name),
                &mut out[HEADER..],
            )
            .map_err(|_| Error::Backend("a session value is too large to seal".into()))?;
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// Opens a value sealed by [`seal`](Self::seal) for this session and
    /// field name under any configured key; `None` when it does not open
    /// (another key, session or field, or altered bytes).
    pub(crate) fn open(&self, name: &str, sealed: &[u8]) -> Option<Vec<u8>> {
        let key = &self.key;
        if sealed.len() < OVERHEAD || sealed[0] != FORMAT {
            return None;
        }
        let index = self
            .sealer
            .keys
            .iter()
            .position(|m| m.id == sealed[1..1 + KEY_ID])?;
        let nonce = Nonce::from_slice(&sealed[1 + KEY_ID..HEADER]);
        let (body, tag) = sealed[HEADER..].split_at(sealed.len() - HEADER - TAG);
        let mut plain = body.to_vec();
        self.cipher(index)
            .decrypt_in_place_detached(nonce, &aad(key, name), &mut plain, Tag::from_slice(tag))
            .ok()?;
        Some(plain)
    }
}

impl Sealer {
    /// Each configured key's MAC, the sealing key's first: the keys of
    /// other digests (index tags), each under its own context.
    pub(crate) fn macs(&self) -> impl Iterator<Item = &Hmac<Sha256>> {
        self.keys.iter().map(|m| &m.derive)
    }

    /// Whether `sealed` was sealed with a key other than the first (it is
    /// re-sealed with the first when next written).
    #[cfg(test)]
    fn sealed_with_old_key(&self, sealed: &[u8]) -> bool {
        sealed.get(1..1 + KEY_ID) != Some(&self.keys[0].id[..])
    }
}

/// The session's own AES-256-GCM key under `master`.
fn cipher(master: &MasterKey, key: &StoreKey) -> Aes256Gcm {
    derived(master, DERIVE_CONTEXT, key.as_bytes())
}

/// The AES-256-GCM key HMAC-SHA256(`master`, `context` ‖ `input`).
fn derived(master: &MasterKey, context: &[u8], input: &[u8]) -> Aes256Gcm {
    let mut derive = master.derive.clone();
    derive.update(context);
    derive.update(input);
    Aes256Gcm::new(&derive.finalize().into_bytes())
}

fn random<const N: usize>() -> Result<[u8; N]> {
    let mut bytes = [0u8; N];
    getrandom::getrandom(&mut bytes)
        .map_err(|e| Error::Backend(format!("no randomness for a nonce: {e}").into()))?;
    Ok(bytes)
}

impl Sealer {
    /// Seals a whole session for the cookie store, bound to the cookie's
    /// `name`: `2 | key id (4) | salt (16) | nonce (12) | ciphertext | tag
    /// (16)`. Every cookie gets a key of its own, derived from a fresh
    /// random salt: one key seals every session of the app, and random
    /// 96-bit nonces under a single key are only safe for about 2³²
    /// messages, which a busy site's cookie writes would reach.
    ///
    /// # Errors
    /// [`Error::Backend`] when the OS has no randomness.
    pub(crate) fn seal_cookie(&self, name: &str, plain: &[u8]) -> Result<Vec<u8>> {
        let master = &self.keys[0];
        let salt: [u8; SALT] = random()?;
        let nonce: [u8; NONCE] = random()?;
        let mut out = Vec::with_capacity(COOKIE_OVERHEAD + plain.len());
        out.push(COOKIE_FORMAT);
        out.extend_from_slice(&master.id);
        out.extend_from_slice(&salt);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plain);
        let tag = derived(master, COOKIE_CONTEXT, &salt)
            .encrypt_in_place_detached(
                Nonce::from_slice(&nonce),
                name.as_bytes(),
                &mut out[COOKIE_HEADER..],
            )
            .map_err(|_| Error::Backend("a session is too large to seal".into()))?;
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// Opens what [`seal_cookie`](Self::seal_cookie) sealed for the cookie
    /// `name` under any configured key; `None` for anything else.
    pub(crate) fn open_cookie(&self, name: &str, sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < COOKIE_OVERHEAD || sealed[0] != COOKIE_FORMAT {
            return None;
        }
        let master = self.keys.iter().find(|m| m.id == sealed[1..1 + KEY_ID])?;
        let salt = &sealed[1 + KEY_ID..1 + KEY_ID + SALT];
        let nonce = Nonce::from_slice(&sealed[1 + KEY_ID + SALT..COOKIE_HEADER]);
        let (body, tag) = sealed[COOKIE_HEADER..].split_at(sealed.len() - COOKIE_HEADER - TAG);
        let mut plain = body.to_vec();
        derived(master, COOKIE_CONTEXT, salt)
            .decrypt_in_place_detached(nonce, name.as_bytes(), &mut plain, Tag::from_slice(tag))
            .ok()?;
        Some(plain)
    }
}

/// The associated data: the session's store key and the field's name.
fn aad(key: &StoreKey, name: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(32 + name.len());
    aad.extend_from_slice(key.as_bytes());
    aad.extend_from_slice(name.as_bytes());
    aad
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;

    use super::*;
    use crate::token::Token;

    fn key(byte: u8) -> EncryptionKey {
        EncryptionKey::new(STANDARD.encode([byte; 32]))
    }

    fn session() -> StoreKey {
        Token::generate().unwrap().store_key()
    }

    #[test]
    fn a_sealed_cookie_opens_only_under_its_name_and_a_configured_key() {
        let sealer = Sealer::new(&[key(1)]).unwrap().unwrap();
        let plain = b"the whole session";
        let sealed = sealer.seal_cookie("session", plain).unwrap();
        assert_eq!(sealed.len(), plain.len() + COOKIE_OVERHEAD);
        assert!(!sealed.windows(plain.len()).any(|w| w == plain));
        assert_eq!(sealer.open_cookie("session", &sealed).unwrap(), plain);
        // Each seal has its own salt and nonce: equal sessions look unrelated.
        let again = sealer.seal_cookie("session", plain).unwrap();
        assert_ne!(
            sealed[1 + KEY_ID..COOKIE_HEADER],
            again[1 + KEY_ID..COOKIE_HEADER]
        );
        // Another cookie name, another key, a field value's format, any
        // altered byte: nothing opens.
        assert_eq!(sealer.open_cookie("other", &sealed), None);
        let other = Sealer::new(&[key(2)]).unwrap().unwrap();
        assert_eq!(other.open_cookie("session", &sealed), None);
        let value = sealer.seal(&session(), "session", plain).unwrap();
        assert_eq!(sealer.open_cookie("session", &value), None);
        for i in 0..sealed.len() {
            let mut altered = sealed.clone();
            altered[i] ^= 1;
            assert_eq!(sealer.open_cookie("session", &altered), None, "byte {i}");
        }
        // Rotation: a list with the old key second still opens it.
        let rotated = Sealer::new(&[key(2), key(1)]).unwrap().unwrap();
        assert_eq!(rotated.open_cookie("session", &sealed).unwrap(), plain);
    }

    #[test]
    fn a_sealed_value_opens_only_for_its_session_and_field() {
        let sealer = Sealer::new(&[key(1)]).unwrap().unwrap();
        let (a, b) = (session(), session());
        let plain = b"{\"user\":42,\"secret\":\"hunter2\"}";
        let sealed = sealer.seal(&a, "user", plain).unwrap();
        assert_eq!(sealed.len(), plain.len() + OVERHEAD);
        assert!(!sealed.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(
            sealer.open(&a, "user", &sealed).as_deref(),
            Some(&plain[..])
        );
        // Two seals of one value differ (fresh nonce).
        assert_ne!(sealer.seal(&a, "user", plain).unwrap(), sealed);
        assert_eq!(
            sealer.open(&b, "user", &sealed),
            None,
            "moved to another session"
        );
        assert_eq!(
            sealer.open(&a, "cart", &sealed),
            None,
            "moved to another field"
        );
        for i in [0, 3, 10, sealed.len() - 1] {
            let mut tampered = sealed.clone();
            tampered[i] ^= 1;
            assert_eq!(sealer.open(&a, "user", &tampered), None, "byte {i} flipped");
        }
        assert_eq!(sealer.open(&a, "user", &sealed[..OVERHEAD - 1]), None);
        assert_eq!(sealer.open(&a, "user", plain), None, "plaintext is refused");
        let other = Sealer::new(&[key(2)]).unwrap().unwrap();
        assert_eq!(other.open(&a, "user", &sealed), None, "another key");
    }

    #[test]
    fn rotation_opens_old_values_and_seals_with_the_first_key() {
        let old = Sealer::new(&[key(1)]).unwrap().unwrap();
        let rotated = Sealer::new(&[key(2), key(1)]).unwrap().unwrap();
        let s = session();
        let sealed = old.seal(&s, "f", b"v").unwrap();
        assert_eq!(rotated.open(&s, "f", &sealed).as_deref(), Some(&b"v"[..]));
        assert!(rotated.sealed_with_old_key(&sealed));
        let resealed = rotated.seal(&s, "f", b"v").unwrap();
        assert!(!rotated.sealed_with_old_key(&resealed));
        assert_eq!(old.open(&s, "f", &resealed), None);
        let empty = rotated.seal(&s, "f", b"").unwrap();
        assert_eq!(rotated.open(&s, "f", &empty).as_deref(), Some(&b""[..]));
    }

    #[test]
    fn malformed_or_repeated_keys_are_refused_by_position() {
        assert!(Sealer::new(&[]).unwrap().is_none());
        for (keys, message) in [
            (
                vec![key(1), EncryptionKey::new(STANDARD.encode([1u8; 16]))],
                "encryption_keys[1]",
            ),
            (
                vec![EncryptionKey::new(STANDARD.encode([1u8; 48]))],
                "encryption_keys[0]",
            ),
            (
                vec![EncryptionKey::new("not base64!")],
                "encryption_keys[0]",
            ),
            (
                vec![key(1), key(2), key(1)],
                "`encryption_keys[2]` is the same key as `encryption_keys[0]`",
            ),
        ] {
            let err = Sealer::new(&keys).unwrap_err().to_string();
            assert!(err.contains(message), "{err}");
        }
        assert_eq!(format!("{:?}", key(1)), "EncryptionKey(<redacted>)");
    }
}
