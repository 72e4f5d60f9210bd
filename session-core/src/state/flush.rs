//! The flush: from per-field change markers to the smallest store call.
//!
//! [`SessionState::plan`] is pure: it encodes the written fields, drops those
//! whose bytes equal what is stored, checks the size limits and decides the
//! expiry. [`SessionState::apply`] performs the plan with as few store calls
//! as the target allows and records the cookie the response needs.

use crate::error::{BoxError, Error, Result};
use crate::schema::SessionHandle;
use crate::state::{Change, Known, SessionState, Stored};
use crate::store::{Changes, ExpiryUpdate, Saved};
use crate::token::{StoreKey, Token};

/// How many times creation retries with a fresh token when the key is taken
/// (with 256-bit tokens, a second try is already astronomically unlikely).
const CREATE_ATTEMPTS: usize = 3;

/// Where a flush writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Nothing: the session was destroyed or ended in this request.
    Done,
    /// A new session is created if anything was written.
    New,
    /// An existing session is updated.
    Existing(StoreKey),
    /// An existing session moves to a fresh token, then is updated.
    Rekey {
        /// The key it lives under now.
        from: StoreKey,
    },
}

/// The result of [`SessionState::plan`]: exactly what a flush will send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlushPlan {
    /// Where the changes go.
    pub target: Target,
    /// The changed fields, removed fields and expiry update.
    pub changes: Changes,
    upserted: Vec<usize>,
    removed: Vec<usize>,
}

impl FlushPlan {
    /// A plan that writes nothing at all.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && !matches!(self.target, Target::Rekey { .. })
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
    /// The session was destroyed by a concurrent request; nothing was
    /// written and the cookie is being removed.
    Interrupted,
}

/// The cookie a response must carry after the flush.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CookieAction {
    /// Set the cookie to this token, expiring in `max_age` seconds.
    Set {
        /// The session's token.
        token: Token,
        /// Seconds until the session expires.
        max_age: i64,
    },
    /// Remove the cookie.
    Remove,
}

/// Plans and applies the flush of a typed handle.
///
/// # Errors
/// Encoding and size errors before anything is written; store errors.
pub async fn flush<H: SessionHandle>(handle: &mut H) -> Result<Outcome> {
    if handle.state().is_untouched() {
        return Ok(Outcome::Unchanged);
    }
    let plan = handle.state().plan(|i| handle.encode_field(i))?;
    handle.state_mut().apply(plan).await
}

impl SessionState {
    /// Computes what a flush would write. Pure: no I/O, no state change.
    ///
    /// `encode(i)` returns field `i`'s bytes if the field was materialised.
    ///
    /// # Errors
    /// [`Error::Encode`], [`Error::FieldTooLarge`], [`Error::SessionTooLarge`].
    pub fn plan(
        &self,
        encode: impl Fn(usize) -> Option<Result<Vec<u8>, BoxError>>,
    ) -> Result<FlushPlan> {
        let mut plan = FlushPlan {
            target: Target::Done,
            changes: Changes::default(),
            upserted: Vec::new(),
            removed: Vec::new(),
        };
        if self.destroyed || self.ended {
            return Ok(plan);
        }
        plan.target = match (self.live_key(), self.rekey) {
            (None, _) => Target::New,
            (Some(from), true) => Target::Rekey { from },
            (Some(key), false) => Target::Existing(key),
        };
        let config = self.manager.config();
        let mut size = 0usize;
        for (index, field) in self.schema.iter().enumerate() {
            let known = self.known(index);
            match self.change(index) {
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
                    if bytes.len() > config.max_field_bytes {
                        return Err(Error::FieldTooLarge {
                            field: field.name,
                            size: bytes.len(),
                            limit: config.max_field_bytes,
                        });
                    }
                    size += bytes.len();
                    let unchanged = match known {
                        Known::Bytes(stored) => stored == bytes.as_slice(),
                        Known::Absent => self.baseline(index) == Some(bytes.as_slice()),
                        Known::Unknown => false,
                    };
                    if !unchanged {
                        plan.changes.upsert.push((field.name, bytes));
                        plan.upserted.push(index);
                    }
                }
                Change::Removed => {
                    if known != Known::Absent {
                        plan.changes.remove.push(field.name);
                        plan.removed.push(index);
                    }
                }
            }
        }
        if size > config.max_session_bytes {
            return Err(Error::SessionTooLarge {
                size,
                limit: config.max_session_bytes,
            });
        }
        if plan.target != Target::New {
            plan.changes.expiry = self.expiry_update();
        }
        Ok(plan)
    }

    /// Performs a plan made by [`plan`](Self::plan) on this state.
    ///
    /// # Errors
    /// Store errors; a failed OS random source.
    pub async fn apply(&mut self, plan: FlushPlan) -> Result<Outcome> {
        if let Some(error) = self.pending_error.take() {
            return Err(error);
        }
        let outcome = match plan.target {
            Target::Done => return Ok(Outcome::Unchanged),
            Target::New => self.create(&plan).await?,
            Target::Rekey { from } => {
                let token = self.current_token()?;
                let to = token.store_key();
                let moved = self
                    .manager
                    .store()
                    .rename(&from, &to, self.validity())
                    .await?;
                if moved {
                    self.stored = Stored::Key(to);
                    self.rekey = false;
                    self.token_is_fresh = false;
                    match self.update(to, &plan).await? {
                        Outcome::Interrupted => Outcome::Interrupted,
                        _ => {
                            self.set_cookie(token, plan.changes.expiry);
                            Outcome::Saved
                        }
                    }
                } else {
                    // The old session vanished; what this request wrote
                    // becomes a new session under the fresh token.
                    self.stored = Stored::Nowhere;
                    self.create(&plan).await?
                }
            }
            Target::Existing(key) => {
                let outcome = self.update(key, &plan).await?;
                let refresh = plan.changes.expiry.is_some()
                    || (self.manager.config().rolling && self.loaded().is_some());
                if outcome != Outcome::Interrupted && refresh {
                    if let Some(token) = self.token.clone() {
                        self.set_cookie(token, plan.changes.expiry);
                    }
                }
                outcome
            }
        };
        if matches!(outcome, Outcome::Created | Outcome::Saved) {
            self.commit(&plan);
        }
        Ok(outcome)
    }

    /// Creates a new session holding the plan's fields, with a fresh token
    /// (never the cookie's: an unknown cookie may be an attacker's choice).
    async fn create(&mut self, plan: &FlushPlan) -> Result<Outcome> {
        if plan.changes.upsert.is_empty() {
            if self.had_cookie && self.cookie.is_none() {
                // The cookie names nothing; tell the browser to drop it.
                self.cookie = Some(CookieAction::Remove);
            }
            self.rekey = false;
            return Ok(Outcome::Unchanged);
        }
        let config = self.manager.config();
        let lifetime = config.ttl.min(config.max_lifetime);
        let default_expiry = self
            .now
            .saturating_add(i64::try_from(lifetime).unwrap_or(i64::MAX / 2));
        let max_expiry = self
            .now
            .saturating_add(i64::try_from(config.max_lifetime).unwrap_or(i64::MAX / 2));
        let expires_at = self.expiry.map_or(default_expiry, |at| at.min(max_expiry));
        for _ in 0..CREATE_ATTEMPTS {
            if !self.token_is_fresh {
                self.token = Some(Token::generate()?);
                self.token_is_fresh = true;
            }
            let token = self.current_token()?;
            let key = token.store_key();
            let created = self
                .manager
                .store()
                .create(&key, self.now, expires_at, &plan.changes.upsert)
                .await?;
            if created {
                self.stored = Stored::Key(key);
                self.token_is_fresh = false;
                self.rekey = false;
                self.cookie = Some(CookieAction::Set {
                    token,
                    max_age: expires_at - self.now,
                });
                return Ok(Outcome::Created);
            }
            tracing::warn!("generated session key already taken; retrying with a fresh token");
            self.token_is_fresh = false;
        }
        Err(Error::Backend(
            "could not find a free session key after several attempts".into(),
        ))
    }

    async fn update(&mut self, key: StoreKey, plan: &FlushPlan) -> Result<Outcome> {
        if plan.changes.is_empty() {
            return Ok(Outcome::Unchanged);
        }
        match self
            .manager
            .store()
            .save(&key, &plan.changes, self.validity())
            .await?
        {
            Saved::Saved => Ok(Outcome::Saved),
            Saved::Gone => {
                tracing::warn!(
                    ?key,
                    "session ended while this request ran (a concurrent logout or expiry); its changes were dropped"
                );
                self.ended = true;
                self.stored = Stored::Nowhere;
                self.cookie = Some(CookieAction::Remove);
                Ok(Outcome::Interrupted)
            }
        }
    }

    /// Makes the state reflect what was just stored, so a second flush in
    /// the same request (an explicit `save` before the fairing's) writes
    /// nothing.
    fn commit(&mut self, plan: &FlushPlan) {
        for (&index, (_, bytes)) in plan.upserted.iter().zip(&plan.changes.upsert) {
            self.set_written(index, Some(bytes.clone()));
        }
        for &index in &plan.removed {
            self.set_written(index, None);
        }
        for field in self.fields.iter_mut() {
            field.change = Change::Clean;
        }
        if let Some(update) = plan.changes.expiry {
            let at = match update {
                ExpiryUpdate::Extend(at) | ExpiryUpdate::Set(at) => at,
            };
            if let Some(Some(loaded)) = self.record.get_mut() {
                loaded.expires_at = at;
            }
        }
        self.expiry = None;
    }

    fn set_cookie(&mut self, token: Token, update: Option<ExpiryUpdate>) {
        let expires_at = match update {
            Some(ExpiryUpdate::Extend(at) | ExpiryUpdate::Set(at)) => at,
            None => match self.loaded() {
                Some(loaded) => loaded.expires_at,
                None => self.now.saturating_add(
                    i64::try_from(self.manager.config().ttl).unwrap_or(i64::MAX / 2),
                ),
            },
        };
        self.cookie = Some(CookieAction::Set {
            token,
            max_age: expires_at - self.now,
        });
    }

    fn current_token(&self) -> Result<Token> {
        self.token
            .clone()
            .ok_or_else(|| Error::Backend("session has no token to store under".into()))
    }

    /// The expiry change this request makes to an existing session: an
    /// explicit `set_expiry`, or a touch once `touch_after` has passed since
    /// the last one. `None` when the session was not loaded (a blind write
    /// does not know the expiry, and does not need to move it).
    fn expiry_update(&self) -> Option<ExpiryUpdate> {
        let config = self.manager.config();
        let secs = |s: u64| i64::try_from(s).unwrap_or(i64::MAX / 2);
        let loaded = self.loaded();
        let cap = loaded
            .map_or(self.now, |l| l.created_at)
            .saturating_add(secs(config.max_lifetime));
        if let Some(at) = self.expiry {
            return Some(ExpiryUpdate::Set(at.min(cap)));
        }
        let loaded = loaded?;
        // The last touch set expires_at to (then + ttl).
        let last_touch = loaded.expires_at - secs(config.ttl);
        if self.now - last_touch < secs(config.touch_after) {
            return None;
        }
        let at = self.now.saturating_add(secs(config.ttl)).min(cap);
        (at > loaded.expires_at).then_some(ExpiryUpdate::Extend(at))
    }
}
