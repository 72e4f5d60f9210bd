//! Signed session cookies: the cookie carries the token and an HMAC of it,
//! so a forged or random cookie is refused before any store call.
//!
//! Keys come from `signing_keys`: the first signs, every one verifies, so a
//! key is rotated by putting the new one first and dropping the old one
//! once the cookies it signed have expired (or been set again: any response
//! that sets the cookie signs it with the first key).

use std::fmt;

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::error::{Error, Result};
use crate::token::Token;

/// The least key size: HMAC-SHA256's own output size.
const MIN_KEY_BYTES: usize = 32;

/// A signing key as configured: base64 of at least 32 random bytes. Its
/// `Debug` output is redacted.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SigningKey(String);

impl SigningKey {
    /// A key from its base64 text (checked when the configuration is
    /// validated).
    pub fn new(base64: impl Into<String>) -> Self {
        SigningKey(base64.into())
    }

    fn bytes(&self) -> Option<Vec<u8>> {
        key_bytes(&self.0)
    }
}

/// A configured key's bytes: base64 in any common alphabet, padded or not.
pub(crate) fn key_bytes(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(text).ok())
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(<redacted>)")
    }
}

/// The signing key derived from a framework's own secret (Rocket's
/// `secret_key`, base64 or hex of 32 or 64 bytes): HMAC-SHA256 of a label
/// under the secret, so the secret itself never signs anything else's
/// data. `None` when `secret` is neither base64 nor hex of at least 32
/// bytes.
pub fn derive_signing_key(secret: &str) -> Option<SigningKey> {
    derive_from_secret(secret, b"session-core/cookie-signing/v1").map(SigningKey)
}

/// Base64 of HMAC-SHA256(`secret`'s bytes, `label`): a key of its own for
/// each use of a framework's secret.
pub(crate) fn derive_from_secret(secret: &str, label: &[u8]) -> Option<String> {
    let secret = secret.trim();
    let bytes = hex(secret)
        .or_else(|| key_bytes(secret))
        .filter(|b| b.len() >= MIN_KEY_BYTES)?;
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&bytes).ok()?;
    mac.update(label);
    Some(STANDARD.encode(mac.finalize().into_bytes()))
}

/// The bytes of an even-length hex string.
fn hex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

/// Signs and verifies cookie values with the configured keys.
#[derive(Clone)]
pub(crate) struct CookieSigner {
    /// One keyed MAC per key, the signing one first.
    macs: Vec<Hmac<Sha256>>,
}

impl fmt::Debug for CookieSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CookieSigner")
            .field("keys", &self.macs.len())
            .finish()
    }
}

impl CookieSigner {
    /// The signer for `keys`; `None` when there is none (unsigned cookies).
    ///
    /// # Errors
    /// [`Error::Config`] naming the key that is not base64 of at least 32
    /// bytes.
    pub(crate) fn new(keys: &[SigningKey]) -> Result<Option<Self>> {
        if keys.is_empty() {
            return Ok(None);
        }
        let macs = keys
            .iter()
            .enumerate()
            .map(|(i, key)| {
                let bytes = key
                    .bytes()
                    .filter(|b| b.len() >= MIN_KEY_BYTES)
                    .ok_or_else(|| {
                        Error::config(format!(
                        "`signing_keys[{i}]` must be base64 of at least {MIN_KEY_BYTES} random \
                         bytes (e.g. the output of `openssl rand -base64 32`)"
                    ))
                    })?;
                Hmac::<Sha256>::new_from_slice(&bytes)
                    .map_err(|e| Error::config(format!("`signing_keys[{i}]`: {e}")))
            })
            .collect::<Result<_>>()?;
        Ok(Some(CookieSigner { macs }))
    }

    /// The cookie value: the token, `.`, and its HMAC-SHA256 under the
    /// first key (unpadded URL-safe base64: 43 + 1 + 43 characters).
    pub(crate) fn sign(&self, token: &Token) -> String {
        let text = token.to_cookie_value();
        let mut mac = self.macs[0].clone();
        mac.update(text.as_bytes());
        format!(
            "{text}.{}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        )
    }

    /// The token of a cookie value signed by any of the keys (compared in
    /// constant time); `None` for anything else, an unsigned token
    /// included.
    pub(crate) fn verify(&self, value: &str) -> Option<Token> {
        let (text, tag) = value.split_once('.')?;
        let token = Token::parse(text)?;
        let mut tag_bytes = [0u8; 32];
        if URL_SAFE_NO_PAD.decode_slice(tag, &mut tag_bytes).ok()? != tag_bytes.len() {
            return None;
        }
        self.macs
            .iter()
            .any(|mac| {
                let mut mac = mac.clone();
                mac.update(text.as_bytes());
                mac.verify_slice(&tag_bytes).is_ok()
            })
            .then_some(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> SigningKey {
        SigningKey::new(STANDARD.encode([byte; 32]))
    }

    #[test]
    fn a_signed_cookie_verifies_and_nothing_else_does() {
        let signer = CookieSigner::new(&[key(1)]).unwrap().unwrap();
        let token = Token::generate().unwrap();
        let value = signer.sign(&token);
        assert_eq!(value.len(), 87);
        assert_eq!(signer.verify(&value), Some(token.clone()));
        // Unsigned, another token under the same tag, a flipped tag bit,
        // a truncated tag, another key's signature: all refused.
        let other = Token::generate().unwrap();
        let (_, tag) = value.split_once('.').unwrap();
        let mut flipped = value.clone().into_bytes();
        let last = flipped.len() - 2;
        flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
        for bad in [
            token.to_cookie_value(),
            format!("{}.{tag}", other.to_cookie_value()),
            String::from_utf8(flipped).unwrap(),
            value[..value.len() - 1].to_string(),
            CookieSigner::new(&[key(2)]).unwrap().unwrap().sign(&token),
            String::new(),
            ".".into(),
        ] {
            assert_eq!(signer.verify(&bad), None, "{bad:?}");
        }
    }

    #[test]
    fn rotation_signs_with_the_first_key_and_verifies_with_all() {
        let old = CookieSigner::new(&[key(1)]).unwrap().unwrap();
        let rotated = CookieSigner::new(&[key(2), key(1)]).unwrap().unwrap();
        let token = Token::generate().unwrap();
        assert_eq!(rotated.verify(&old.sign(&token)), Some(token.clone()));
        let new_value = rotated.sign(&token);
        assert_eq!(old.verify(&new_value), None, "signed with the new key");
        assert_eq!(
            CookieSigner::new(&[key(2)])
                .unwrap()
                .unwrap()
                .verify(&new_value),
            Some(token)
        );
    }

    #[test]
    fn a_key_derived_from_a_secret_is_stable_and_not_the_secret() {
        let secret = STANDARD.encode([7u8; 64]);
        let key = derive_signing_key(&secret).unwrap();
        assert_eq!(key, derive_signing_key(&secret).unwrap());
        assert_ne!(key.bytes().unwrap(), [7u8; 64]);
        assert_eq!(key.bytes().unwrap().len(), 32);
        let hex_secret: String = [7u8; 64].iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(derive_signing_key(&hex_secret), Some(key.clone()));
        assert_ne!(derive_signing_key(&STANDARD.encode([8u8; 32])), Some(key));
        assert_eq!(derive_signing_key("short"), None);
        assert_eq!(derive_signing_key(&STANDARD.encode([1u8; 16])), None);
    }

    #[test]
    fn malformed_keys_are_refused_by_position() {
        assert!(CookieSigner::new(&[]).unwrap().is_none());
        let short = SigningKey::new(STANDARD.encode([1u8; 16]));
        for (keys, index) in [
            (vec![key(1), short], 1),
            (vec![SigningKey::new("not base64!")], 0),
        ] {
            let err = CookieSigner::new(&keys).unwrap_err().to_string();
            assert!(err.contains(&format!("signing_keys[{index}]")), "{err}");
        }
        // Any common base64 alphabet, padded or not.
        let url = SigningKey::new(URL_SAFE_NO_PAD.encode([0xfb; 32]));
        assert!(CookieSigner::new(&[url]).unwrap().is_some());
        assert_eq!(format!("{:?}", key(1)), "SigningKey(<redacted>)");
    }
}
