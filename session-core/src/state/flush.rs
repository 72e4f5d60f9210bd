//! The flush: from per-field change markers to the smallest store call.
//!
//! [`SessionState::plan`] is pure: it encodes the written fields, drops those
//! whose bytes equal what is stored, checks the size limits and decides the
//! expiry. [`SessionState::apply`] performs the plan in one store call (two
//! when a write to a cookie that names nothing becomes a new session) and
//! records the cookie the response needs.

use crate::error::{BoxError, Error, Result};
use crate::events::EventKind;
use crate::state::index_tags;
use crate::state::request::PendingCookie;
use crate::state::sealed::{SealFor, SealKeys};
use crate::state::{Change, ExpiryChoice, Known, SessionLimit, SessionState, Stage, Times};
use crate::store::Timestamp;
use crate::store::{
    Changes, Expect, ExpiryUpdate, IndexUpdate, NewSession, Rename, Replaced, Saved,
    PREVIOUS_KEY_GRACE,
};
use crate::token::{StoreKey, Token};

/// How many times creation retries with a fresh token when the key is taken
/// (with 256-bit tokens, a second try is already astronomically unlikely).
const CREATE_ATTEMPTS: usize = 3;

/// Where a flush writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// Nothing: the session was destroyed or ended in this request.
    Done,
    /// A new session is created if any field was written.
    New,
    /// An existing session is updated; `verified` when it was seen alive in
    /// this request (otherwise this is a blind write to the cookie's key).
    Existing { key: StoreKey, verified: bool },
    /// An existing session moves to a fresh token, with this request's
    /// changes, in one transaction; `verified` when it was seen alive in
    /// this request; `rotation` for an automatic rotation.
    Rekey {
        from: StoreKey,
        to: Token,
        verified: bool,
        rotation: bool,
    },
}

/// Exactly what a flush will send.
#[derive(Debug)]
pub(crate) struct FlushPlan {
    pub(crate) target: Target,
    pub(crate) changes: Changes,
    upserted: Vec<usize>,
    removed: Vec<usize>,
    /// Limited index values this plan gives the session (`max_sessions`):
    /// the field's name, the value's tags, the limit.
    limits: Vec<(super::index::Searches, SessionLimit)>,
    /// When the session took them (microseconds), written as `@since`.
    since: Timestamp,
}

impl FlushPlan {
    /// A plan that writes nothing at all.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.changes.is_empty() && !matches!(self.target, Target::Rekey { .. })
    }

    fn changes_fields(&self) -> bool {
        !self.changes.upsert.is_empty() || !self.changes.remove.is_empty()
    }
}

/// What a flush did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing needed writing.
    Unchanged,
    /// A new session was stored.
    Created,
    /// An existing session was updated (or moved to a new token).
    Saved,
    /// A concurrent request ended the session (a logout, an expiry, or a
    /// regenerate that took this request's token) while this one ran;
    /// this request's changes were dropped and nothing was written.
    Interrupted,
}

fn secs(s: u64) -> i64 {
    i64::try_from(s).unwrap_or(i64::MAX / 2)
}

impl SessionState {
    /// Nothing in this request can need a store call or a cookie from this
    /// handle: no field written, nothing loaded by it, and nothing pending
    /// on the request's session. The flush of an unused guard stops here.
    pub(crate) fn is_untouched(&self) -> bool {
        if self.has_field_changes() || self.record.initialized() || self.has_rewrites() {
            return false;
        }
        let life = self.request.life();
        life.expiry.is_none()
            && !life.clear
            && life.pending_error.is_none()
            && !matches!(life.stage, Stage::Moving { .. })
    }

    /// Computes what a flush would write. Pure: no I/O, no state change.
    pub(crate) fn plan(
        &self,
        encode: impl Fn(usize) -> Option<Result<Vec<u8>, BoxError>>,
    ) -> Result<FlushPlan> {
        let target = match &self.request.life().stage {
            Stage::Destroyed | Stage::Ended => Target::Done,
            Stage::Absent => Target::New,
            Stage::Unverified { token } => Target::Existing {
                key: self.request.unverified_key(token),
                verified: false,
            },
            Stage::Live { key, .. } | Stage::Followed { key } => Target::Existing {
                key: *key,
                verified: true,
            },
            Stage::Moving {
                from,
                to,
                verified,
                rotation,
            } => Target::Rekey {
                from: *from,
                to: to.clone(),
                verified: *verified,
                rotation: *rotation,
            },
        };
        let mut plan = FlushPlan {
            target,
            changes: Changes::default(),
            upserted: Vec::new(),
            removed: Vec::new(),
            limits: Vec::new(),
            since: 0,
        };
        let (epoch, clear) = {
            let life = self.request.life();
            (life.epoch, life.clear)
        };
        // Changes from before a `destroy` or `start_over` went with that
        // session; a change after a `destroy` has nowhere to go.
        let current =
            |index: usize| self.change(index) != Change::Clean && self.epoch(index) == epoch;
        if self.is_destroyed() {
            if let Some(index) = (0..self.schema.len()).find(|&i| current(i)) {
                return Err(Error::WriteAfterDestroy {
                    field: self.schema[index].name,
                });
            }
            return Ok(plan);
        }
        plan.changes.clear = clear && plan.target != Target::New;
        let config = self.request.manager().config();
        let mut size = 0usize;
        let mut all_existing = true;
        for (index, field) in self.schema.iter().enumerate() {
            let known = self.known(index);
            let change = if current(index) {
                self.change(index)
            } else if self.rewrites(index) && matches!(known, Known::Bytes(_)) {
                // Read converted from an earlier type, `rewrite_on_read`.
                Change::Written
            } else {
                Change::Clean
            };
            match change {
                Change::Clean => {
                    if let Known::Bytes(bytes) = known {
                        size += bytes.len();
                    }
                }
                Change::Written => {
                    let Some(bytes) = encode(index) else { continue };
                    let bytes = bytes.map_err(|source| Error::Encode {
                        field: field.name,
                        source,
                    })?;
                    self.check_field_size(field.name, bytes.len())?;
                    size += bytes.len();
                    // Unchanged: equal to the stored bytes, or to the value
                    // a mutable borrow started from when that was not the
                    // stored bytes (an absent field's default, or an
                    // undecodable field's fallback, whose stored bytes stay
                    // until the app really changes the value).
                    let unchanged = self.baseline(index) == Some(bytes.as_slice())
                        || matches!(known, Known::Bytes(stored) if stored == bytes.as_slice());
                    if !unchanged {
                        all_existing &= matches!(known, Known::Bytes(_));
                        self.expect(index, &mut plan.changes);
                        if field.indexed {
                            let sealer = self.request.manager().sealer();
                            let tags = index_tags(sealer, field.name, &bytes);
                            if let (Some(limit), Some(_)) = (field.limit, tags.first()) {
                                let searches = super::index::searches(sealer, field, &bytes);
                                plan.limits.push((searches, limit));
                            }
                            plan.changes.index.push(IndexUpdate {
                                name: field.name,
                                tag: tags.into_iter().next(),
                            });
                        }
                        plan.changes.upsert.push((field.name, bytes));
                        plan.upserted.push(index);
                    }
                }
                Change::Removed => {
                    if known != Known::Absent {
                        self.expect(index, &mut plan.changes);
                        if field.indexed {
                            plan.changes.index.push(IndexUpdate {
                                name: field.name,
                                tag: None,
                            });
                        }
                        plan.changes.remove.push(field.name);
                        plan.removed.push(index);
                    }
                }
            }
        }
        let moved: Vec<usize> = plan.upserted.iter().chain(&plan.removed).copied().collect();
        let expected = plan.changes.expect.len();
        self.move_aliases(&mut plan.changes, &moved);
        if plan.changes.expect.len() > expected || moved.iter().any(|&i| self.aliased(i).is_some())
        {
            // The stored name is absent: the upsert creates it.
            all_existing = false;
        }
        let before = plan.changes.upsert.len();
        let change_of = |index: usize| {
            if current(index) {
                self.change(index)
            } else {
                Change::Clean
            }
        };
        self.plan_lifetimes(&mut plan.changes, change_of, &plan.removed);
        if plan.changes.upsert.len() > before {
            all_existing = false;
        }
        if !plan.limits.is_empty() {
            // When the session took a limited value, in microseconds (the
            // request's second, the clock's fraction): who is oldest.
            let fraction = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_micros());
            let since = self.request.now() * 1_000_000 + Timestamp::from(fraction);
            plan.since = since;
            plan.changes
                .upsert
                .push((super::SINCE, since.to_string().into_bytes()));
            all_existing = false;
        }
        if let Target::Rekey { from, rotation, .. } = &plan.target {
            if config.rotate_after.is_some() {
                // When the new token was issued: what the next rotation
                // counts from (a new session's is its creation time).
                plan.changes.upsert.push((
                    super::rotation::ISSUED,
                    self.request.now().to_string().into_bytes(),
                ));
                all_existing = false;
            }
            if *rotation {
                // The id a devices page listed the session by, kept.
                let id = self
                    .request
                    .life()
                    .times
                    .and_then(|t| t.listed_id)
                    .unwrap_or_else(|| from.id());
                plan.changes
                    .upsert
                    .push((super::rotation::LISTED_ID, id.to_string().into_bytes()));
            }
        }
        plan.changes.upsert_existing = all_existing && !plan.changes.upsert.is_empty();
        if size > config.max_session_bytes {
            return Err(Error::SessionTooLarge {
                size,
                limit: config.max_session_bytes,
            });
        }
        if matches!(plan.target, Target::Existing { .. } | Target::Rekey { .. }) {
            plan.changes.expiry = self.expiry_update();
        }
        Ok(plan)
    }

    /// A versioned field's write depends on the version this request saw
    /// (known: the flush loads it first, see `load_versions`).
    fn expect(&self, index: usize, changes: &mut Changes) {
        let field = &self.schema[index];
        if let (true, Some(version)) = (field.versioned, self.version(index)) {
            changes.expect.push(Expect {
                name: field.name,
                version,
            });
        }
    }

    /// The error for a save whose expectation failed.
    async fn conflict(&self, plan: &FlushPlan, key: &StoreKey) -> Error {
        let field = plan.changes.expect.first().map_or("", |e| e.name);
        tracing::warn!(
            field,
            "a versioned session field was changed by a concurrent request; nothing of this request was saved"
        );
        crate::observe::conflict(self.request.store().name());
        let indexed = self.event_values(&[], true).await;
        self.request.emit(EventKind::Conflict, key, indexed);
        Error::Conflict { field }
    }

    /// Performs a plan made by [`plan`](Self::plan) on this state, then
    /// holds the values it gave the session to their `max_sessions`.
    pub(crate) async fn apply(&mut self, mut plan: FlushPlan) -> Result<Outcome> {
        let (limits, since) = (std::mem::take(&mut plan.limits), plan.since);
        let outcome = self.apply_plan(plan).await?;
        if matches!(outcome, Outcome::Saved | Outcome::Created) {
            for (searches, limit) in limits {
                self.hold_to_limit(&searches, limit, since).await?;
            }
        }
        Ok(outcome)
    }

    async fn apply_plan(&mut self, mut plan: FlushPlan) -> Result<Outcome> {
        if let Some(error) = self.request.life().pending_error.take() {
            return Err(error);
        }
        for &index in &plan.upserted {
            if self.is_undecodable(index) {
                tracing::warn!(
                    field = self.schema[index].name,
                    "overwriting a stored session field that no longer decoded: its previous bytes are replaced"
                );
            }
        }
        let store = self.request.store().clone();
        let at = self.request.validity();
        match plan.target.clone() {
            Target::Done => Ok(self.dropped(&plan)),
            Target::New => {
                if self.moved_meanwhile(&plan).await? {
                    return Ok(self.dropped(&plan));
                }
                self.create(&plan, None).await
            }
            Target::Existing { key, verified } => {
                if plan.changes.is_empty() {
                    self.refresh_cookie(None);
                    return Ok(Outcome::Unchanged);
                }
                let sealed = self.seal_changes(&key, &plan.changes, SealFor::Loaded)?;
                let changes = sealed.as_ref().unwrap_or(&plan.changes);
                crate::observe::field_sizes(store.name(), plain_sizes(&plan.changes));
                match self
                    .request
                    .call("save", store.save(&key, changes, at))
                    .await?
                {
                    Saved::Saved => {
                        self.mark_live();
                        self.commit(&plan, false);
                        self.refresh_cookie(plan.changes.expiry);
                        Ok(Outcome::Saved)
                    }
                    // A token rotated away by a concurrent request: this
                    // request's changes follow the session to its new key.
                    Saved::Moved if self.rotates() => self.follow_save(key, &plan).await,
                    // A blind write to a cookie that names nothing (unknown,
                    // expired, logged out elsewhere): the write starts a new
                    // session under a fresh token, as it would with no cookie
                    // (a token rotated long ago first ends its session).
                    Saved::Gone if !verified => {
                        if self.rotates() {
                            self.after_miss(key).await?;
                        }
                        self.request.life().stage = Stage::Absent;
                        self.create(&plan, None).await
                    }
                    saved @ (Saved::Gone | Saved::Moved) => {
                        self.request.life().stage = Stage::Ended;
                        Ok(self.refused(&plan, saved))
                    }
                    Saved::Conflict => Err(self.conflict(&plan, &key).await),
                }
            }
            Target::Rekey {
                from,
                to,
                verified,
                rotation,
            } => {
                let grace = self.request.manager().config().rotation_grace;
                plan.changes.rename = Some(if rotation {
                    Rename {
                        to: to.store_key(),
                        previous_until: at.now.saturating_add(secs(grace)),
                        reason: Replaced::Rotated,
                    }
                } else {
                    Rename {
                        to: to.store_key(),
                        previous_until: at.now.saturating_add(PREVIOUS_KEY_GRACE),
                        reason: Replaced::Regenerated,
                    }
                });
                let keys = match self.request.manager().sealer() {
                    Some(_) => self.previous_keys_of(from).await?,
                    None => SealKeys::default(),
                };
                let how = SealFor::Move {
                    from,
                    keys,
                    rotation,
                };
                let sealed = self.seal_changes(&to.store_key(), &plan.changes, how)?;
                let changes = sealed.as_ref().unwrap_or(&plan.changes);
                crate::observe::field_sizes(store.name(), plain_sizes(&plan.changes));
                match self
                    .request
                    .call("save", store.save(&from, changes, at))
                    .await?
                {
                    Saved::Saved => {
                        let key = to.store_key();
                        {
                            let mut life = self.request.life();
                            life.stage = Stage::Live {
                                token: to.clone(),
                                key,
                            };
                            if let Some(times) = life.times.as_mut() {
                                times.issued_at = at.now;
                            }
                        }
                        let indexed = self.event_values(&plan.changes.upsert, true).await;
                        let previous = from.id();
                        if rotation {
                            crate::observe::rotated(store.name());
                            self.request
                                .emit(EventKind::Rotated { previous }, &key, indexed);
                        } else {
                            crate::observe::regenerated(store.name());
                            self.request
                                .emit(EventKind::Regenerated { previous }, &key, indexed);
                        }
                        self.commit(&plan, false);
                        let expires_at = self.expires_at_after(plan.changes.expiry);
                        self.set_cookie(to, expires_at);
                        Ok(Outcome::Saved)
                    }
                    // The cookie named no session (unknown, expired) and
                    // this request never saw one: what it wrote becomes a
                    // new session under the fresh token, a login with a
                    // stale cookie.
                    Saved::Gone if !verified => {
                        self.request.life().stage = Stage::Absent;
                        self.create(&plan, Some(to)).await
                    }
                    // Parallel requests of one page all found the token due:
                    // one rotated it, the others follow.
                    Saved::Moved if rotation => self.follow_save(from, &plan).await,
                    // The session this request saw ended meanwhile (a
                    // logout, "log out everywhere"), or a concurrent
                    // regenerate moved it (a login sent twice): a
                    // regenerate neither undoes a logout nor starts a
                    // session beside the one the other login made. Its
                    // changes are dropped (409), as any request's are.
                    saved @ (Saved::Gone | Saved::Moved) => {
                        self.request.life().stage = Stage::Ended;
                        Ok(self.refused(&plan, saved))
                    }
                    Saved::Conflict => Err(self.conflict(&plan, &from).await),
                }
            }
        }
    }

    /// After a save found `key` replaced: a rotation within its grace is
    /// followed, and the plan's changes (without a move of their own: one
    /// rotation is enough) are saved under the session's current key,
    /// with no cookie; anything else ends the request's session.
    async fn follow_save(&mut self, key: StoreKey, plan: &FlushPlan) -> Result<Outcome> {
        let current = match self.after_miss(key).await? {
            super::rotation::Miss::Follow(current) => current,
            _ => {
                self.request.life().stage = Stage::Ended;
                return Ok(self.refused(plan, Saved::Moved));
            }
        };
        let mut changes = plan.changes.clone();
        changes.rename = None;
        changes.upsert.retain(|(name, _)| {
            *name != super::rotation::ISSUED && *name != super::rotation::LISTED_ID
        });
        if changes.is_empty() {
            return Ok(Outcome::Unchanged);
        }
        // Sealed for the session's seal key as stored now: this request
        // loaded it, if at all, under the replaced key.
        let keys = self.stored_keys_of(current).await?;
        let sealed = self.seal_changes(&current, &changes, SealFor::Keys(keys))?;
        let sending = sealed.as_ref().unwrap_or(&changes);
        let store = self.request.store().clone();
        let at = self.request.validity();
        match self
            .request
            .call("save", store.save(&current, sending, at))
            .await?
        {
            Saved::Saved => {
                self.commit(plan, false);
                Ok(Outcome::Saved)
            }
            Saved::Conflict => Err(self.conflict(plan, &current).await),
            saved @ (Saved::Gone | Saved::Moved) => {
                self.request.life().stage = Stage::Ended;
                Ok(self.refused(plan, saved))
            }
        }
    }

    /// The outcome of a save the store refused because the session ended
    /// (`Gone`) or moved (`Moved`) meanwhile, counted when it dropped
    /// changes.
    fn refused(&self, plan: &FlushPlan, saved: Saved) -> Outcome {
        let outcome = self.dropped(plan);
        if outcome == Outcome::Interrupted {
            let reason = if saved == Saved::Moved {
                "moved"
            } else {
                "ended"
            };
            crate::observe::refused(self.request.store().name(), reason);
        }
        outcome
    }

    /// Whether this request's cookie, which named no live session when it
    /// was read, is a key a concurrent regenerate just replaced: then its
    /// writes must neither go to the moved session nor start a new one
    /// whose cookie would replace the login's, and the request ends.
    async fn moved_meanwhile(&self, plan: &FlushPlan) -> Result<bool> {
        let unchecked = std::mem::take(&mut self.request.life().miss_unchecked);
        let Some(key) = self.request.cookie_key().filter(|_| unchecked) else {
            return Ok(false);
        };
        if plan.changes.upsert.is_empty() {
            return Ok(false);
        }
        let now = self.request.now();
        let store = self.request.store();
        let previous = self
            .request
            .call("previous", store.previous(&key, now))
            .await?;
        if !previous.is_some_and(|p| p.within_grace) {
            return Ok(false);
        }
        tracing::debug!(?key, "session cookie was just replaced by a regenerate");
        self.request.life().stage = Stage::Ended;
        Ok(true)
    }

    /// The outcome of changes that could not be written because the session
    /// ended: interrupted if they changed fields, unchanged otherwise.
    fn dropped(&self, plan: &FlushPlan) -> Outcome {
        let ended = matches!(self.request.life().stage, Stage::Ended);
        if ended && plan.changes_fields() {
            tracing::warn!(
                "session ended while this request ran (a concurrent logout, expiry or regenerate); its changes were dropped"
            );
            Outcome::Interrupted
        } else {
            Outcome::Unchanged
        }
    }

    fn mark_live(&self) {
        let mut life = self.request.life();
        life.stage = match std::mem::replace(&mut life.stage, Stage::Absent) {
            Stage::Unverified { token } => Stage::Live {
                key: self.request.unverified_key(&token),
                token,
            },
            other => other,
        };
    }

    /// Creates a new session holding the plan's fields, with a fresh token
    /// (never the cookie's: an unknown cookie may be an attacker's choice).
    async fn create(&mut self, plan: &FlushPlan, mut fresh: Option<Token>) -> Result<Outcome> {
        if plan.changes.upsert.is_empty() {
            return Ok(Outcome::Unchanged);
        }
        let config = self.request.manager().config();
        let now = self.request.now();
        let choice = self.request.life().expiry;
        let idle_timeout = choice.map_or_else(|| secs(config.ttl), |c| c.seconds);
        let session = NewSession {
            created_at: now,
            expires_at: now.saturating_add(idle_timeout.min(secs(config.max_lifetime))),
            idle_timeout,
            persistent: choice.map(|c| c.persistent),
        };
        let store = self.request.store().clone();
        // The device the session began on, kept beside its fields where a
        // devices page can list it (stores with indexes).
        let device = self
            .request
            .device()
            .filter(|_| config.device_info && store.indexes().is_some())
            .and_then(|device| serde_json::to_vec(device).ok());
        let with_device = device.map(|bytes| {
            let mut changes = plan.changes.clone();
            changes.upsert.push((super::DEVICE, bytes));
            changes
        });
        let first = with_device.as_ref().unwrap_or(&plan.changes);
        for _ in 0..CREATE_ATTEMPTS {
            let token = match fresh.take() {
                Some(token) => token,
                None => Token::generate()?,
            };
            let key = token.store_key();
            let sealed = self.seal_changes(&key, first, SealFor::New)?;
            let changes = sealed.as_ref().unwrap_or(first);
            // Versioned fields are created by the save below, with their
            // expectation (absent), as every later write of them is: a
            // store keeps them where a compare-and-set finds them.
            let (versioned, fields): (Vec<_>, Vec<_>) = changes
                .upsert
                .iter()
                .cloned()
                .partition(|(name, _)| changes.expectation(name).is_some());
            crate::observe::field_sizes(store.name(), plain_sizes(&plan.changes));
            if self
                .request
                .call("create", store.create(&key, session, &fields))
                .await?
            {
                // The new session's index entries and versioned fields:
                // one more statement, only when one is among its first.
                let index: Vec<IndexUpdate> = plan
                    .changes
                    .index
                    .iter()
                    .filter(|u| u.tag.is_some())
                    .copied()
                    .collect();
                if !index.is_empty() || !versioned.is_empty() {
                    let changes = Changes {
                        index,
                        expect: changes.expect.clone(),
                        upsert: versioned,
                        ..Changes::default()
                    };
                    let at = self.request.validity();
                    if self
                        .request
                        .call("save", store.save(&key, &changes, at))
                        .await?
                        != Saved::Saved
                    {
                        return Err(Error::Interrupted);
                    }
                }
                {
                    let mut life = self.request.life();
                    life.stage = Stage::Live {
                        token: token.clone(),
                        key,
                    };
                    life.times = Some(Times {
                        created_at: session.created_at,
                        expires_at: session.expires_at,
                        idle_timeout,
                        persistent: session.persistent,
                        issued_at: now,
                        listed_id: None,
                    });
                }
                crate::observe::created(store.name());
                // A new session holds only what this request wrote.
                let indexed = self.event_values(&plan.changes.upsert, false).await;
                self.request.emit(EventKind::Created, &key, indexed);
                self.commit(plan, true);
                self.set_cookie(token, session.expires_at);
                return Ok(Outcome::Created);
            }
            tracing::warn!("generated session key already taken; retrying with a fresh token");
        }
        Err(Error::Backend(
            "could not find a free session key after several attempts".into(),
        ))
    }

    /// Makes the state reflect what was just stored, so a second flush in
    /// the same request (an explicit `save` before the fairing's) writes
    /// nothing.
    /// `created`: the fields went into a new session.
    fn commit(&mut self, plan: &FlushPlan, created: bool) {
        for (&index, (name, bytes)) in plan.upserted.iter().zip(&plan.changes.upsert) {
            self.set_written(index, Some(bytes.clone()));
            if self.schema[index].versioned {
                // A created versioned field was written with its
                // expectation too (see `create`).
                let version = plan.changes.expectation(name).map_or(0, Expect::next);
                self.set_version(index, Some(version));
            }
        }
        for &index in &plan.removed {
            self.set_written(index, None);
            if self.schema[index].versioned {
                self.set_version(index, None);
            }
        }
        for field in self.fields.iter_mut() {
            field.change = Change::Clean;
        }
        let expires_at = self.expires_at_after(plan.changes.expiry);
        let mut life = self.request.life();
        if let (Some(update), Some(times)) = (plan.changes.expiry, life.times.as_mut()) {
            times.expires_at = expires_at;
            if let ExpiryUpdate::Set {
                idle_timeout,
                persistent,
                ..
            } = update
            {
                times.idle_timeout = idle_timeout;
                times.persistent = persistent;
            }
        }
        life.expiry = None;
        // The clear is done: by this save, or by creating the session
        // (a new session starts empty; its save carries no clear).
        if plan.changes.clear || created {
            life.clear = false;
        }
    }

    /// The session's expiry after an update, as far as this request knows.
    fn expires_at_after(&self, update: Option<ExpiryUpdate>) -> i64 {
        let config = self.request.manager().config();
        let now = self.request.now();
        let times = self.request.life().times;
        let cap = times.map(|t| t.created_at.saturating_add(secs(config.max_lifetime)));
        let at = match (update, times) {
            (Some(update), _) => update.expires_at(),
            (None, Some(times)) => times.expires_at,
            (None, None) => now.saturating_add(secs(config.ttl)),
        };
        cap.map_or(at, |cap| at.min(cap))
    }

    /// After a save: the cookie follows a changed expiry, and with `rolling`
    /// every response that read the session carries it.
    fn refresh_cookie(&mut self, update: Option<ExpiryUpdate>) {
        let rolling = self.request.manager().config().rolling && self.request.life().loaded;
        if update.is_none() && !rolling || !self.request.may_resend_token() {
            return;
        }
        let token = match &self.request.life().stage {
            Stage::Live { token, .. } | Stage::Unverified { token } => token.clone(),
            _ => return,
        };
        let expires_at = self.expires_at_after(update);
        self.set_cookie(token, expires_at);
    }

    /// Records the cookie: persistent ones carry the session's `Max-Age`.
    /// Call it after `commit`, which settles the session's cookie choice.
    fn set_cookie(&self, token: Token, expires_at: i64) {
        let max_age = self
            .request
            .persistent()
            .then(|| expires_at - self.request.now());
        self.request.life().cookie = Some(PendingCookie::Set { token, max_age });
    }

    /// The expiry change this request makes to an existing session: an
    /// explicit `set_expiry`, or a touch once `touch_after` has passed since
    /// the last one, sliding by the session's own idle timeout. `None` when
    /// the session was not read (a blind write does not need to move it).
    fn expiry_update(&self) -> Option<ExpiryUpdate> {
        let config = self.request.manager().config();
        let now = self.request.now();
        let life = self.request.life();
        if let Some(ExpiryChoice {
            seconds,
            persistent,
        }) = life.expiry
        {
            return Some(ExpiryUpdate::Set {
                expires_at: now.saturating_add(seconds),
                idle_timeout: seconds,
                persistent: Some(persistent),
            });
        }
        let times = life.times?;
        let timeout = times.idle_timeout.max(1);
        // The last touch set expires_at to (then + timeout). A session with
        // a short timeout of its own is touched at least twice per timeout.
        let last_touch = times.expires_at - timeout;
        let touch_after = secs(config.touch_after).min(timeout / 2);
        if now - last_touch < touch_after {
            return None;
        }
        let cap = times.created_at.saturating_add(secs(config.max_lifetime));
        let at = now.saturating_add(timeout).min(cap);
        (at > times.expires_at).then_some(ExpiryUpdate::Extend(at))
    }
}

/// The sizes of the fields a save writes, before sealing (what the app
/// stores).
fn plain_sizes(changes: &Changes) -> impl Iterator<Item = &[u8]> {
    changes.upsert.iter().map(|(_, v)| v.as_slice())
}
