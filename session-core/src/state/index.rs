//! Indexed fields (`#[session(index)]`): a user's sessions, found and
//! ended from any one of them ("log out everywhere").
//!
//! A write of an indexed field sets the session's entry in the store's
//! index to a digest of the encoded value (keyed with the encryption key
//! when values are encrypted, so the index reveals no value either); a
//! removal or a `clear` drops it. Nothing else touches the index.

use std::fmt;
use std::marker::PhantomData;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::error::{BoxError, Error, Result};
use crate::sealing::Sealer;
use crate::state::sealed;
use crate::state::{FieldDef, SessionLimit, SessionState};
use crate::store::{IndexTag, SessionIndexes, SessionStore, Timestamp};
use crate::token::{SessionId, StoreKey};

use super::reserved::SINCE;

/// Separates index digests from any other use of the keys.
const CONTEXT: &[u8] = b"session-core/index/v1\0";

/// The digests an indexed value is searched by: one per encryption key
/// (the first is the one written), or its plain SHA-256 when values are
/// not encrypted (the value is then stored in the clear anyway).
pub(crate) fn index_tags(sealer: Option<&Sealer>, name: &str, bytes: &[u8]) -> Vec<IndexTag> {
    match sealer {
        Some(sealer) => sealer
            .macs()
            .map(|mac| {
                let mut mac: Hmac<Sha256> = mac.clone();
                mac.update(CONTEXT);
                mac.update(name.as_bytes());
                mac.update(&[0]);
                mac.update(bytes);
                mac.finalize().into_bytes().into()
            })
            .collect(),
        None => vec![Sha256::new()
            .chain_update(CONTEXT)
            .chain_update(name.as_bytes())
            .chain_update([0])
            .chain_update(bytes)
            .finalize()
            .into()],
    }
}

/// Where an indexed value is searched: under the field's stored name and
/// each old name (`alias`; a session not written since the rename is
/// indexed under it), with the digests it has under that name.
pub(crate) type Searches = Vec<(&'static str, Vec<IndexTag>)>;

/// The [`Searches`] of field `field` holding `bytes`.
pub(crate) fn searches(sealer: Option<&Sealer>, field: &FieldDef, bytes: &[u8]) -> Searches {
    std::iter::once(field.name)
        .chain(field.aliases.iter().copied())
        .map(|name| (name, index_tags(sealer, name, bytes)))
        .collect()
}

/// One live session found through an indexed field, as a "your devices"
/// page shows it: when it started, when it was last seen, whether it is
/// the one making the request, and its non-deferred fields (decoded on
/// demand with [`field`](Self::field)).
pub struct SessionInfo<D> {
    id: SessionId,
    created_at: Timestamp,
    last_seen: Timestamp,
    expires_at: Timestamp,
    current: bool,
    device: Option<super::DeviceInfo>,
    /// Opened bytes of the fields of `D` that are stored and open.
    pub(crate) fields: Vec<(&'static str, Vec<u8>)>,
    data: PhantomData<fn() -> D>,
}

impl<D> fmt::Debug for SessionInfo<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionInfo")
            .field("id", &self.id)
            .field("created_at", &self.created_at)
            .field("last_seen", &self.last_seen)
            .field("current", &self.current)
            .finish_non_exhaustive()
    }
}

impl<D> SessionInfo<D> {
    /// The session's opaque id: 32 hex digits of a hash of its key, as
    /// lifecycle events name it. It leads neither to the token nor to the
    /// stored row, so a devices page can print it and a "sign out this
    /// device" form send it back to `destroy_session_by_x()`. With
    /// `rotate_after`, a rotated session keeps the id it had before its
    /// first rotation, so a page shown before a rotation still ends it.
    pub fn id(&self) -> SessionId {
        self.id
    }

    /// When the session was created (Unix seconds).
    pub fn created_at(&self) -> Timestamp {
        self.created_at
    }

    /// When the session was last used, to within `touch_after` (Unix
    /// seconds): its last touch.
    pub fn last_seen(&self) -> Timestamp {
        self.last_seen
    }

    /// When the session expires unless used again (Unix seconds).
    pub fn expires_at(&self) -> Timestamp {
        self.expires_at
    }

    /// Whether this is the session of the request that listed it.
    pub fn is_current(&self) -> bool {
        self.current
    }

    /// The device the session began on (user agent, coarse address), kept
    /// when `device_info` was on; `None` otherwise.
    pub fn device(&self) -> Option<&super::DeviceInfo> {
        self.device.as_ref()
    }
}

impl SessionState {
    /// The stored name and searches of indexed field `index` holding
    /// `value`.
    fn index_query(
        &self,
        index: usize,
        value: Result<Vec<u8>, BoxError>,
    ) -> Result<(&'static str, Vec<u8>, Searches)> {
        let field = &self.schema[index];
        let bytes = value.map_err(|source| Error::Encode {
            field: field.name,
            source,
        })?;
        let searches = searches(self.request.manager().sealer(), field, &bytes);
        Ok((field.name, bytes, searches))
    }

    /// The live sessions indexed by any of `searches`, each with the
    /// search (name and digests) that found it: one query per name.
    async fn find_all<'s>(
        &self,
        searches: &'s Searches,
    ) -> Result<Vec<(StoreKey, &'s (&'static str, Vec<IndexTag>))>> {
        let store = self.request.store().clone();
        let at = self.request.validity();
        let mut found: Vec<(StoreKey, &(&'static str, Vec<IndexTag>))> = Vec::new();
        for search in searches {
            let (name, tags) = search;
            let keys = indexes(&*store)?.find(name, tags, at);
            for key in self.request.call("find", keys).await? {
                if !found.iter().any(|(k, _)| *k == key) {
                    found.push((key, search));
                }
            }
        }
        Ok(found)
    }

    /// The live sessions whose indexed field `index` holds `value`: one
    /// query for the list, one load per session found. Use the handle's
    /// generated `sessions_by_x()`.
    #[doc(hidden)]
    pub async fn find_sessions<D>(
        &self,
        index: usize,
        value: Result<Vec<u8>, BoxError>,
    ) -> Result<Vec<SessionInfo<D>>> {
        let (_, _, searches) = self.index_query(index, value)?;
        let keys = self.find_all(&searches).await?;
        let store = self.request.store();
        let sealer = self.request.manager().sealer();
        let at = self.request.validity();
        let current = self.request.read_key();
        let mut found = Vec::new();
        for (key, _) in keys {
            // Gone since the query: not listed.
            let Some(record) = self
                .request
                .call("load", store.load(&key, self.deferred_names, at))
                .await?
            else {
                continue;
            };
            let previous = sealed::record_keys(sealer, &key, &record.fields);
            let seals = sealer.map(|s| sealed::seals(s, &key, &previous));
            let id = super::rotation::listed_id(&record.fields).unwrap_or_else(|| key.id());
            let device = record
                .fields
                .iter()
                .find(|(n, _)| n == super::DEVICE)
                .and_then(|(_, bytes)| match &seals {
                    Some(seals) => sealed::open(seals, super::DEVICE, bytes),
                    None => Some(bytes.clone()),
                })
                .and_then(|bytes| serde_json::from_slice(&bytes).ok());
            let mut fields: Vec<(&'static str, Vec<u8>)> = Vec::new();
            for (n, bytes) in record.fields {
                // A value under an old name (`alias`) shows as its field's
                // while the stored name is absent.
                let Some(field) = self
                    .schema
                    .iter()
                    .find(|f| f.name == n || f.aliases.contains(&n.as_str()))
                else {
                    continue;
                };
                let bytes = match &seals {
                    Some(seals) => match sealed::open(seals, &n, &bytes) {
                        Some(bytes) => bytes,
                        None => continue,
                    },
                    None => bytes,
                };
                match fields.iter().position(|(name, _)| *name == field.name) {
                    Some(_) if field.name != n => {}
                    Some(at) => fields[at].1 = bytes,
                    None => fields.push((field.name, bytes)),
                }
            }
            found.push(SessionInfo {
                id,
                created_at: record.created_at,
                last_seen: record.expires_at - record.idle_timeout,
                expires_at: record.expires_at,
                current: Some(key) == current,
                device,
                fields,
                data: PhantomData,
            });
        }
        found.sort_by_key(|s| std::cmp::Reverse(s.last_seen));
        Ok(found)
    }

    /// Ends every live session whose indexed field `index` holds `value`,
    /// in one statement, but this request's own when `keep_current`; this
    /// request's own session, when it holds `value` too and is not kept,
    /// is destroyed as by [`destroy`](Self::destroy). Returns how many
    /// sessions ended. Use the handle's generated `destroy_sessions_by_x()`
    /// or `destroy_other_sessions_by_x()`.
    #[doc(hidden)]
    pub async fn destroy_sessions(
        &mut self,
        index: usize,
        value: Result<Vec<u8>, BoxError>,
        keep_current: bool,
    ) -> Result<u64> {
        let (name, bytes, searches) = self.index_query(index, value)?;
        let current = self.request.read_key();
        // Whether this request's session is one of them (known from its
        // load; loaded here if it was not).
        let mine = !keep_current
            && current.is_some()
            && self.bytes(index).await? == Some(bytes.as_slice());
        let store = self.request.store().clone();
        // One statement per name: the stored one, then each old one.
        let mut found = Vec::new();
        for (search, tags) in &searches {
            let ended = indexes(&*store)?.destroy_found(search, tags, current.as_ref());
            found.extend(self.request.call("destroy_found", ended).await?);
        }
        let mut ended = found.len() as u64;
        crate::observe::destroyed(store.name(), "everywhere", ended);
        let value = String::from_utf8_lossy(&bytes);
        for key in &found {
            let indexed = vec![crate::events::IndexedValue {
                field: name,
                value: value.clone().into_owned(),
            }];
            let cause = crate::events::DestroyCause::Everywhere;
            self.request
                .emit(crate::events::EventKind::Destroyed { cause }, key, indexed);
        }
        if mine {
            self.destroy().await?;
            ended += 1;
        }
        Ok(ended)
    }
}

impl SessionState {
    /// Ends the one session listed with `id` among those whose indexed
    /// field `index` holds `value` ("sign out this device"): the list's
    /// query finds its key, then one statement deletes it if it still
    /// holds `value`, so an id of another user's session, or of a session
    /// that changed hands meanwhile, ends nothing. This request's own
    /// session is destroyed as by [`destroy`](Self::destroy). Returns
    /// whether a session ended. Use the handle's generated
    /// `destroy_session_by_x()`.
    #[doc(hidden)]
    pub async fn destroy_listed_session(
        &mut self,
        index: usize,
        value: Result<Vec<u8>, BoxError>,
        id: &SessionId,
    ) -> Result<bool> {
        let (name, bytes, searches) = self.index_query(index, value)?;
        if self.request.listed_id() == Some(*id) {
            if self.bytes(index).await? != Some(bytes.as_slice()) {
                return Ok(false);
            }
            self.destroy().await?;
            return Ok(true);
        }
        let store = self.request.store().clone();
        let found = self.find_all(&searches).await?;
        let keys = found.iter().map(|(key, _)| *key).collect();
        let Some(key) = self.listed_key(keys, id).await? else {
            return Ok(false);
        };
        let Some((_, (search, tags))) = found.iter().find(|(k, _)| *k == key) else {
            return Ok(false);
        };
        let ended = indexes(&*store)?.destroy_one(search, tags, &key);
        if !self.request.call("destroy_one", ended).await? {
            return Ok(false);
        }
        crate::observe::destroyed(store.name(), "revoked", 1);
        let indexed = vec![crate::events::IndexedValue {
            field: name,
            value: String::from_utf8_lossy(&bytes).into_owned(),
        }];
        let cause = crate::events::DestroyCause::Revoked;
        self.request
            .emit(crate::events::EventKind::Destroyed { cause }, &key, indexed);
        Ok(true)
    }
}

impl SessionState {
    /// Which of `found` is listed as `id`: its key's id, or after a
    /// rotation the id it kept (one read per session found, only when no
    /// key's id is `id` and tokens rotate).
    async fn listed_key(&self, found: Vec<StoreKey>, id: &SessionId) -> Result<Option<StoreKey>> {
        if let Some(key) = found.iter().find(|k| k.id() == *id) {
            return Ok(Some(*key));
        }
        if !self.rotates() {
            return Ok(None);
        }
        let store = self.request.store();
        let at = self.request.validity();
        for key in found {
            let only = [super::rotation::LISTED_ID];
            let read = store.load_only(&key, &only, at);
            if let Some(record) = self.request.call("load_only", read).await? {
                if super::rotation::listed_id(&record.fields) == Some(*id) {
                    return Ok(Some(key));
                }
            }
        }
        Ok(None)
    }

    /// Holds the value of index `name` (`tags`) that this request's save
    /// just gave the session to `limit`: of its live sessions, ranked by
    /// when each took the value (then by id), the oldest past the limit end
    /// (`refuse`: the newest, this one among them). Every request that
    /// gives a session the value does this after its own write, so
    /// whatever the interleaving of concurrent logins, the last ranking
    /// sees them all and the newest (oldest) `limit` stay: exactly that
    /// many once they are done. One query, one read per session found
    /// beyond this one, one statement per session ended.
    pub(crate) async fn hold_to_limit(
        &mut self,
        searches: &Searches,
        limit: SessionLimit,
        since: Timestamp,
    ) -> Result<()> {
        let store = self.request.store().clone();
        let at = self.request.validity();
        let Some(own) = self.request.read_key() else {
            return Ok(());
        };
        let name = searches.first().map_or("", |(name, _)| *name);
        let found = self.find_all(searches).await?;
        let max = limit.max as usize;
        if found.len() <= max {
            return Ok(());
        }
        let mut ranked = Vec::with_capacity(found.len());
        for (key, search) in found {
            let since = if key == own {
                since
            } else {
                let read = store.load_only(&key, &[SINCE], at);
                // A session gone meanwhile is not counted; one without the
                // time (indexed before the limit was set) is the oldest.
                let Some(record) = self.request.call("load", read).await? else {
                    continue;
                };
                record
                    .fields
                    .iter()
                    .find(|(n, _)| n == SINCE)
                    .and_then(|(_, b)| std::str::from_utf8(b).ok()?.parse::<Timestamp>().ok())
                    .unwrap_or(0)
            };
            ranked.push((since, key.id(), key, search));
        }
        if ranked.len() <= max {
            return Ok(());
        }
        ranked.sort();
        let ending = if limit.refuse {
            ranked.split_off(max)
        } else {
            let keep = ranked.split_off(ranked.len() - max);
            std::mem::replace(&mut ranked, keep)
        };
        let mut own_ended = false;
        for (_, _, key, (search, tags)) in ending {
            let ended = indexes(&*store)?.destroy_one(search, tags, &key);
            if self.request.call("destroy_one", ended).await? {
                crate::observe::destroyed(store.name(), "limit", 1);
                let cause = crate::events::DestroyCause::Limit;
                self.request.emit(
                    crate::events::EventKind::Destroyed { cause },
                    &key,
                    Vec::new(),
                );
            }
            own_ended |= key == own;
        }
        if !own_ended {
            return Ok(());
        }
        // This request's own session ranked past the limit: refused, or,
        // ending the oldest, older than logins that wrote first. Its
        // cookie goes as after `destroy()`.
        self.request.destroy(Vec::new()).await?;
        if limit.refuse {
            tracing::info!(
                field = name,
                max = limit.max,
                "a session past `max_sessions` was refused: it is ended"
            );
            return Err(Error::TooManySessions {
                field: name,
                max: limit.max,
            });
        }
        Ok(())
    }
}

/// The store's indexes; launch refuses a session type with an indexed
/// field on a store without them (`SessionManager::supports`), so this
/// errs only for a manager used without that check.
fn indexes(store: &dyn SessionStore) -> Result<&dyn SessionIndexes> {
    store.indexes().ok_or_else(|| {
        Error::config(format!(
            "this session store ({store:?}) keeps no indexes: `#[session(index)]` needs one that does"
        ))
    })
}
