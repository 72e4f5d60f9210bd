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
//!
//! A rotation (`rotate_after`) changes the key far more often than logins
//! do, so it does not grow the list: the session's values are sealed from
//! then on for one *seal key*, the key it had before its first rotation
//! (since its creation or last regenerate), which the list carries after
//! the previous keys. A rotation only seals the list again for the new
//! key; a value written once opens after any number of rotations.

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

/// Marks the seal key after the previous keys in [`PREVIOUS_KEYS`]' bytes
/// (which are otherwise whole 32-byte keys).
const SEAL_KEY_MARK: u8 = 0xA5;

/// The keys a session's values may be sealed for besides its own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SealKeys {
    /// The keys it had before its regenerates, oldest first.
    pub(crate) previous: Vec<StoreKey>,
    /// After a rotation: the key its values are sealed for (see the
    /// module docs); `None`: its own.
    pub(crate) seal_key: Option<StoreKey>,
}

impl SealKeys {
    /// Whom a value written to the session under `key` is sealed for.
    pub(crate) fn sealing(&self, key: &StoreKey) -> StoreKey {
        self.seal_key.unwrap_or(*key)
    }

    /// The plain bytes of the list.
    fn to_bytes(&self) -> Vec<u8> {
        let skip = self.previous.len().saturating_sub(MAX_PREVIOUS_KEYS);
        let mut bytes: Vec<u8> = self.previous[skip..]
            .iter()
            .flat_map(|k| *k.as_bytes())
            .collect();
        if let Some(seal_key) = &self.seal_key {
            bytes.push(SEAL_KEY_MARK);
            bytes.extend_from_slice(seal_key.as_bytes());
        }
        bytes
    }
}

/// The keys stored in a session's [`PREVIOUS_KEYS`] field, after opening
/// it.
pub(crate) fn parse_keys(bytes: &[u8]) -> SealKeys {
    let key = |c: &[u8]| StoreKey::from_bytes(c.try_into().unwrap_or([0; 32]));
    let (list, seal_key) = match bytes.len() % 32 {
        1 if bytes[bytes.len() - 33] == SEAL_KEY_MARK => {
            let (list, tail) = bytes.split_at(bytes.len() - 33);
            (list, Some(key(&tail[1..])))
        }
        _ => (bytes, None),
    };
    SealKeys {
        previous: list.chunks_exact(32).map(key).collect(),
        seal_key,
    }
}

/// Opens a session's list of previous keys; empty when there is none or it
/// does not open.
pub(crate) fn open_keys(sealer: &Sealer, key: &StoreKey, sealed: Option<&[u8]>) -> SealKeys {
    let Some(sealed) = sealed else {
        return SealKeys::default();
    };
    match sealer.open(key, PREVIOUS_KEYS, sealed) {
        Some(plain) => parse_keys(&plain),
        None => {
            tracing::warn!(
                ?key,
                "a session's list of previous keys does not open; values sealed before its last login will fall back"
            );
            SealKeys::default()
        }
    }
}

/// The previous keys a loaded session's fields carry (empty without
/// encryption).
pub(crate) fn record_keys(
    sealer: Option<&Sealer>,
    key: &StoreKey,
    fields: &[(String, Vec<u8>)],
) -> SealKeys {
    let Some(sealer) = sealer else {
        return SealKeys::default();
    };
    let list = fields.iter().find(|(n, _)| n == PREVIOUS_KEYS);
    open_keys(sealer, key, list.map(|(_, v)| v.as_slice()))
}

/// The seals a session's values may be under: its key's, its seal key's,
/// then its previous keys', the latest first.
pub(crate) fn seals<'a>(
    sealer: &'a Sealer,
    key: &StoreKey,
    keys: &SealKeys,
) -> Vec<SessionSeal<'a>> {
    std::iter::once(key)
        .chain(keys.seal_key.as_ref())
        .chain(keys.previous.iter().rev())
        .map(|k| sealer.session(k))
        .collect()
}

/// How a write's values are sealed (see [`SessionState::seal_changes`]).
pub(crate) enum SealFor {
    /// For a new session under the key: no seal key.
    New,
    /// For the session this request loaded (its seal key, if it has one).
    Loaded,
    /// For a session whose keys are these.
    Keys(SealKeys),
    /// For the session moving from `from`, whose keys are these, to the
    /// key: a regenerate, or a rotation (`rotation`).
    Move {
        from: StoreKey,
        keys: SealKeys,
        rotation: bool,
    },
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
        self.open_value_as(seals, index, self.schema[index].name, sealed)
    }

    /// [`open_value`](Self::open_value) for a value sealed under `name`
    /// (an old name of the field: `alias`).
    pub(crate) fn open_value_as(
        &self,
        seals: &[SessionSeal<'_>],
        index: usize,
        name: &str,
        sealed: Vec<u8>,
    ) -> Vec<u8> {
        match open(seals, name, &sealed) {
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

    /// `changes` with every upserted value sealed for the session under
    /// `key` (for its seal key when it has one: see [`SealFor`]); `None`
    /// when values are not encrypted (the changes go as they are). A move
    /// to `key` stores the session's keys again, sealed for `key`: a
    /// regenerate adds the key left behind to the previous keys, a
    /// rotation keeps them and makes that key the seal key if there was
    /// none.
    pub(crate) fn seal_changes(
        &self,
        key: &StoreKey,
        changes: &Changes,
        how: SealFor,
    ) -> Result<Option<Changes>> {
        let Some(sealer) = self.request.manager().sealer() else {
            return Ok(None);
        };
        let loaded = || match self.record.get() {
            Some(Some(fields)) => fields.previous_keys.clone(),
            _ => SealKeys::default(),
        };
        let (sealing, moved) = match how {
            SealFor::New => (*key, None),
            SealFor::Loaded => (loaded().sealing(key), None),
            SealFor::Keys(keys) => (keys.sealing(key), None),
            SealFor::Move {
                from,
                keys,
                rotation: true,
            } => {
                let seal_key = keys.sealing(&from);
                let keys = SealKeys {
                    previous: if changes.clear {
                        Vec::new()
                    } else {
                        keys.previous
                    },
                    seal_key: Some(seal_key),
                };
                (seal_key, Some(keys))
            }
            SealFor::Move {
                from,
                keys,
                rotation: false,
            } => {
                // A `clear` in the same save deletes every value sealed
                // before: the list starts again from the key left behind.
                let mut previous = if changes.clear {
                    Vec::new()
                } else {
                    keys.previous
                };
                previous.extend(keys.seal_key.filter(|k| *k != from));
                previous.push(from);
                let keys = SealKeys {
                    previous,
                    seal_key: None,
                };
                (*key, Some(keys))
            }
        };
        let seal = sealer.session(&sealing);
        let list_seal = sealer.session(key);
        let mut upsert = changes
            .upsert
            .iter()
            // The library's times and ids, stored in the clear as the
            // session's creation and expiry times are (see `reserved`).
            .map(|(name, plain)| {
                if super::reserved::in_clear(name) {
                    Ok((*name, plain.clone()))
                } else {
                    Ok((*name, seal.seal(name, plain)?))
                }
            })
            .collect::<Result<Vec<_>>>()?;
        let mut upsert_existing = changes.upsert_existing;
        if let Some(keys) = moved {
            // Sealed for the session's own key: a copy of it elsewhere
            // does not open.
            let plain = keys.to_bytes();
            upsert.push((PREVIOUS_KEYS, list_seal.seal(PREVIOUS_KEYS, &plain)?));
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
    pub(crate) async fn previous_keys_of(&self, key: StoreKey) -> Result<SealKeys> {
        if let Some(loaded) = self.record.get() {
            return Ok(loaded
                .as_ref()
                .map(|r| r.previous_keys.clone())
                .unwrap_or_default());
        }
        self.stored_keys_of(key).await
    }

    /// The keys of the session under `key` as stored now, by their own
    /// query (one statement; none without encryption).
    pub(crate) async fn stored_keys_of(&self, key: StoreKey) -> Result<SealKeys> {
        let Some(sealer) = self.request.manager().sealer() else {
            return Ok(SealKeys::default());
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
