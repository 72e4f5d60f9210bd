//! Encryption at rest as the state sees it: values are opened right after
//! a load and sealed right before a write, for the key the write goes to
//! (so a blind write needs no load, and a write that ends up creating a
//! new session seals for the new one).
//!
//! A value is sealed for the session's store key, which a regenerate
//! changes. Rather than rewrite every field at login, the regenerate's
//! save stores the keys the session had before, sealed for the new key,
//! in a field of its own ([`PREVIOUS_KEYS`]): a value sealed before the
//! login still opens, and is sealed for the current key when next
//! written. A copied session has no such list under the copy's key, so
//! its values do not open there.

use crate::error::{BoxError, Result};
use crate::sealing::{Sealer, SessionSeal};
use crate::state::SessionState;
use crate::store::Changes;
use crate::token::StoreKey;

/// The stored name of a session's previous keys. Field names are made of
/// `[A-Za-z0-9_.-]`, so no field can take it.
pub(crate) const PREVIOUS_KEYS: &str = "@previous_keys";

/// How many previous keys a session keeps: values sealed more logins ago
/// than this and never written since no longer open (they fall back like
/// an undecodable field).
const MAX_PREVIOUS_KEYS: usize = 8;

/// The decode error of a value that does not open.
pub(crate) fn unopened_error() -> BoxError {
    "the stored value does not open with the configured `encryption_keys` \
     (sealed with another key, copied from another session or field, or altered)"
        .into()
}

/// The previous keys stored in a session's [`PREVIOUS_KEYS`] field, after
/// opening it.
pub(crate) fn parse_keys(bytes: &[u8]) -> Vec<StoreKey> {
    bytes
        .chunks_exact(32)
        .map(|c| StoreKey::from_bytes(c.try_into().unwrap_or([0; 32])))
        .collect()
}

/// Opens a session's list of previous keys; empty when there is none or it
/// does not open.
pub(crate) fn open_keys(sealer: &Sealer, key: &StoreKey, sealed: Option<&[u8]>) -> Vec<StoreKey> {
    let Some(sealed) = sealed else {
        return Vec::new();
    };
    match sealer.open(key, PREVIOUS_KEYS, sealed) {
        Some(plain) => parse_keys(&plain),
        None => {
            tracing::warn!(
                ?key,
                "a session's list of previous keys does not open; values sealed before its last login will fall back"
            );
            Vec::new()
        }
    }
}

/// The previous keys a loaded session's fields carry (empty without
/// encryption).
pub(crate) fn record_keys(
    sealer: Option<&Sealer>,
    key: &StoreKey,
    fields: &[(String, Vec<u8>)],
) -> Vec<StoreKey> {
    let Some(sealer) = sealer else {
        return Vec::new();
    };
    let list = fields.iter().find(|(n, _)| n == PREVIOUS_KEYS);
    open_keys(sealer, key, list.map(|(_, v)| v.as_slice()))
}

/// The seals a session's values may be under: its key's, then its
/// previous keys', the latest first.
pub(crate) fn seals<'a>(
    sealer: &'a Sealer,
    key: &StoreKey,
    previous: &[StoreKey],
) -> Vec<SessionSeal<'a>> {
    std::iter::once(key)
        .chain(previous.iter().rev())
        .map(|k| sealer.session(k))
        .collect()
}

/// Opens a value of field `name` under any of `seals`.
pub(crate) fn open(seals: &[SessionSeal<'_>], name: &str, sealed: &[u8]) -> Option<Vec<u8>> {
    seals.iter().find_map(|s| s.open(name, sealed))
}

impl SessionState {
    /// Opens field `index`'s stored value: under the session's key, then
    /// its previous keys. A value that does not open is kept as it is and
    /// remembered, so decoding it takes the decode-error path and the flush
    /// leaves its bytes alone unless the app changes the field.
    pub(crate) fn open_value(
        &self,
        seals: &[SessionSeal<'_>],
        index: usize,
        sealed: Vec<u8>,
    ) -> Vec<u8> {
        match open(seals, self.schema[index].name, &sealed) {
            Some(plain) => plain,
            None => {
                self.unopened
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(index);
                sealed
            }
        }
    }

    /// Whether field `index`'s stored bytes did not open.
    pub(crate) fn is_unopened(&self, index: usize) -> bool {
        self.unopened
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(&index)
    }

    /// `changes` with every upserted value sealed for `key`; `None` when
    /// values are not encrypted (the changes go as they are). `moved`: the
    /// save moves the session from that key, whose previous keys are these,
    /// to `key` (a regenerate), so the session's previous keys gain it.
    pub(crate) fn seal_changes(
        &self,
        key: &StoreKey,
        changes: &Changes,
        moved: Option<(StoreKey, Vec<StoreKey>)>,
    ) -> Result<Option<Changes>> {
        let Some(sealer) = self.request.manager().sealer() else {
            return Ok(None);
        };
        let seal = sealer.session(key);
        let mut upsert = changes
            .upsert
            .iter()
            // When the session took a limited value: a time, stored in
            // the clear as its creation and expiry times are, so that
            // another session's request can rank it.
            .map(|(name, plain)| match *name {
                super::SINCE => Ok((*name, plain.clone())),
                _ => Ok((*name, seal.seal(name, plain)?)),
            })
            .collect::<Result<Vec<_>>>()?;
        let mut upsert_existing = changes.upsert_existing;
        if let Some((from, previous)) = moved {
            // A `clear` in the same save deletes every value sealed before:
            // the list starts again from the key left behind.
            let mut keys = if changes.clear { Vec::new() } else { previous };
            keys.push(from);
            let skip = keys.len().saturating_sub(MAX_PREVIOUS_KEYS);
            let plain: Vec<u8> = keys[skip..].iter().flat_map(|k| *k.as_bytes()).collect();
            upsert.push((PREVIOUS_KEYS, seal.seal(PREVIOUS_KEYS, &plain)?));
            upsert_existing = false;
        }
        Ok(Some(Changes {
            upsert,
            upsert_existing,
            rename: changes.rename,
            clear: changes.clear,
            remove: changes.remove.clone(),
            expect: changes.expect.clone(),
            expiry: changes.expiry,
            index: changes.index.clone(),
        }))
    }

    /// The previous keys of the session under `key`, which a regenerate
    /// carries to the new key: from this request's load, or else by their
    /// own query (one statement, only for a regenerate of an encrypted
    /// session the request did not read). Nothing changes in the request's
    /// view of the session: a regenerate that finds the session gone goes
    /// on as it would without encryption.
    pub(crate) async fn previous_keys_of(&self, key: StoreKey) -> Result<Vec<StoreKey>> {
        if let Some(loaded) = self.record.get() {
            return Ok(loaded
                .as_ref()
                .map(|r| r.previous_keys.clone())
                .unwrap_or_default());
        }
        let Some(sealer) = self.request.manager().sealer() else {
            return Ok(Vec::new());
        };
        let store = self.request.store();
        let at = self.request.validity();
        let list = self
            .request
            .call("load_field", store.load_field(&key, PREVIOUS_KEYS, at))
            .await?;
        Ok(open_keys(sealer, &key, list.as_deref()))
    }
}
