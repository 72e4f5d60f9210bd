//! Tokens that rotate (`rotate_after`): requests in flight with a replaced
//! token follow the session to its new key for `rotation_grace`; a
//! replaced token presented after it was held by two parties, and the
//! session ends.
//!
//! The rotation itself is a regenerate planned at the flush
//! ([`RequestSession::rotate_if_due`](super::RequestSession)): one store
//! call with the request's changes. What this module adds is what a
//! request does when its cookie's key no longer names the session: asked
//! of the store only then (a load or a save that found nothing), so a
//! request that does not meet a rotation costs what it did.

use crate::error::Result;
use crate::events::{DestroyCause, EventKind};
use crate::state::{SessionState, Stage};
use crate::store::{PreviousKey, Replaced};
use crate::token::StoreKey;

pub(crate) use super::reserved::{ISSUED, LISTED_ID};

/// The listed id a load found, if the session was rotated.
pub(crate) fn listed_id(fields: &[(String, Vec<u8>)]) -> Option<crate::token::SessionId> {
    let (_, bytes) = fields.iter().find(|(name, _)| name == LISTED_ID)?;
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

/// What a key that named no live session turned out to be.
pub(crate) enum Miss {
    /// Replaced by a rotation within its grace: the session lives under
    /// this key now, and the request's stage says so.
    Follow(StoreKey),
    /// Replaced by a `regenerate()` moments ago: the request ends.
    Moved,
    /// Neither (unknown, expired, logged out), or replaced by a rotation
    /// past its grace, in which case the session was ended: the request
    /// goes on without a session.
    Nothing,
}

impl SessionState {
    /// Whether rotation is on: only then is a miss asked about at once.
    pub(crate) fn rotates(&self) -> bool {
        self.request.manager().config().rotate_after.is_some()
    }

    /// Asks the store what `key`, which named no live session, names now,
    /// and acts on it: a rotated key within its grace is followed (the
    /// stage becomes [`Stage::Followed`]); one past its grace ends the
    /// session it names, for every holder; a regenerated one ends the
    /// request.
    pub(crate) async fn after_miss(&self, key: StoreKey) -> Result<Miss> {
        let store = self.request.store().clone();
        let now = self.request.now();
        let found = self
            .request
            .call("previous", store.previous(&key, now))
            .await?;
        let Some(PreviousKey {
            current,
            reason,
            within_grace,
        }) = found
        else {
            return Ok(Miss::Nothing);
        };
        match (reason, within_grace) {
            (Replaced::Rotated, true) => {
                tracing::debug!(?key, ?current, "following a token rotated moments ago");
                self.request.life().stage = Stage::Followed { key: current };
                Ok(Miss::Follow(current))
            }
            (Replaced::Regenerated, _) => Ok(Miss::Moved),
            (Replaced::Rotated, false) => {
                self.end_stolen(key, current).await?;
                Ok(Miss::Nothing)
            }
        }
    }

    /// Ends the session a replaced token reached after its grace: the
    /// token was used by two parties (the one that got the new token, and
    /// one that still holds the old), and the store cannot tell which is
    /// the owner, so neither keeps the session.
    async fn end_stolen(&self, replayed: StoreKey, current: StoreKey) -> Result<()> {
        let store = self.request.store().clone();
        let now = self.request.now();
        // Whose session it was, for the event (one more statement, only
        // when handlers listen).
        let indexed = self.indexed_values_of(&current).await;
        let ended = self
            .request
            .call("destroy", store.destroy(&current, now))
            .await?;
        tracing::warn!(
            replayed = %replayed.id(),
            session = %current.id(),
            ended,
            "a session token replaced by rotation was presented after its grace: \
             two parties held it, so the session was ended for both"
        );
        if ended {
            crate::observe::destroyed(store.name(), "theft_suspected", 1);
            let cause = DestroyCause::TheftSuspected;
            self.request
                .emit(EventKind::Destroyed { cause }, &current, indexed);
        }
        let mut life = self.request.life();
        life.stage = Stage::Absent;
        life.cookie = Some(super::request::PendingCookie::Remove);
        Ok(())
    }

    /// This type's `#[session(index)]` values as stored in the session
    /// under `key` (plain bytes, as events carry them), when handlers
    /// listen; a failed read leaves them out.
    async fn indexed_values_of(&self, key: &StoreKey) -> Vec<crate::events::IndexedValue> {
        if !self.request.reports_events() {
            return Vec::new();
        }
        let mut names: Vec<&str> = self
            .schema
            .iter()
            .filter(|f| f.indexed)
            .map(|f| f.name)
            .collect();
        if names.is_empty() {
            return Vec::new();
        }
        names.push(super::sealed::PREVIOUS_KEYS);
        let store = self.request.store();
        let at = self.request.validity();
        let Ok(Some(record)) = store.load_only(key, &names, at).await else {
            return Vec::new();
        };
        let sealer = self.request.manager().sealer();
        let previous = super::sealed::record_keys(sealer, key, &record.fields);
        record
            .fields
            .into_iter()
            .filter_map(|(name, bytes)| {
                let field = self.schema.iter().find(|f| f.name == name)?.name;
                let plain = match sealer {
                    Some(sealer) => {
                        let seals = super::sealed::seals(sealer, key, &previous);
                        super::sealed::open(&seals, field, &bytes)?
                    }
                    None => bytes,
                };
                Some(crate::events::IndexedValue {
                    field,
                    value: String::from_utf8_lossy(&plain).into_owned(),
                })
            })
            .collect()
    }
}

/// The issue time a load found: the `@issued` field, else the session's
/// creation.
pub(crate) fn issued_at(fields: &[(String, Vec<u8>)], created_at: i64) -> i64 {
    fields
        .iter()
        .find(|(name, _)| name == ISSUED)
        .and_then(|(_, v)| std::str::from_utf8(v).ok()?.parse().ok())
        .unwrap_or(created_at)
}
