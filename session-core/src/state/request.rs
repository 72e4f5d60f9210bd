//! One request's session identity, shared by every session type the
//! request opens: one token per browser, one lifecycle, one cookie.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use crate::carrier::{Arrival, Carried};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::events::{EventKind, IndexedValue, SessionEvent};
use crate::store::{SessionStore, Timestamp, Validity};
use crate::token::{StoreKey, Token};

/// Where a request's session stands. Every transition is made by one of
/// the session's operations; the docs of each say which.
#[derive(Debug)]
pub(crate) enum Stage {
    /// No stored session backs the request: it had no usable cookie, the
    /// cookie named nothing alive (known after a read), or a regenerate
    /// found the old session gone. The first write creates a session under
    /// a fresh token.
    Absent,
    /// The cookie's session, not checked against the store yet. A write
    /// goes to it blind; if it turns out not to exist, the write creates a
    /// fresh session instead. Its key is the cookie's, hashed on first need
    /// (an unused guard hashes nothing).
    Unverified { token: Token },
    /// A session known to be alive in this request: read, created or
    /// written under `key`.
    Live { token: Token, key: StoreKey },
    /// `regenerate()` was called, or the token is due for rotation: the
    /// session moves from `from` to `to` in the same transaction as this
    /// request's other changes.
    Moving {
        from: StoreKey,
        /// Whether `from` was seen alive in this request.
        verified: bool,
        to: Token,
        /// An automatic rotation (`rotate_after`), not a `regenerate()`:
        /// requests in flight with `from` may follow it for the grace.
        rotation: bool,
    },
    /// The cookie's token was replaced by a rotation moments ago (within
    /// `rotation_grace`), in another request: this one reads and writes
    /// the session under its current `key`, and sets no cookie (it does
    /// not know the new token; the rotating request sets it).
    Followed { key: StoreKey },
    /// `destroy()` succeeded in this request.
    Destroyed,
    /// A concurrent request ended the session (a logout, an expiry, or a
    /// regenerate that took its token) while this one ran.
    Ended,
}

/// An explicit expiry choice of this request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ExpiryChoice {
    /// The idle timeout in seconds.
    pub(crate) seconds: Timestamp,
    /// Whether the cookie outlives the browser.
    pub(crate) persistent: bool,
}

/// The session's timestamps, from the first read or the creation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Times {
    pub(crate) created_at: Timestamp,
    pub(crate) expires_at: Timestamp,
    pub(crate) idle_timeout: Timestamp,
    /// The session's own cookie choice: `Some(true)` persistent,
    /// `Some(false)` browser-session, `None` the configuration's.
    pub(crate) persistent: Option<bool>,
    /// When the session's token was issued (its creation, last regenerate
    /// or last rotation): what `rotate_after` counts from.
    pub(crate) issued_at: Timestamp,
    /// The id the session is listed by, when a rotation stored one (see
    /// `rotation::LISTED_ID`).
    pub(crate) listed_id: Option<crate::token::SessionId>,
}

/// The cookie a response must carry after the flush.
///
/// Its `Debug` output shows neither the token nor the cookie value: either
/// one lets whoever reads a log take over the session.
#[derive(Clone, PartialEq, Eq)]
pub enum CookieAction {
    /// Set the cookie to `value`.
    Set {
        /// The session's token.
        token: Token,
        /// The cookie's value: the token, signed with `signing_keys` when
        /// they are set, or, with sessions kept in cookies, the whole
        /// session sealed.
        value: String,
        /// Seconds until the session expires: the cookie's `Max-Age`, or
        /// `None` for a browser-session cookie.
        max_age: Option<i64>,
    },
    /// Remove the cookie: this request destroyed the session.
    Remove,
}

impl fmt::Debug for CookieAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CookieAction::Set {
                token,
                value: _,
                max_age,
            } => f
                .debug_struct("Set")
                .field("token", token)
                .field("value", &format_args!("<redacted>"))
                .field("max_age", max_age)
                .finish(),
            CookieAction::Remove => f.write_str("Remove"),
        }
    }
}

/// The cookie a request's flushes have asked for so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PendingCookie {
    /// The session lives under `token`.
    Set {
        token: Token,
        max_age: Option<i64>,
    },
    /// The session sealed into its cookie (sessions kept in cookies).
    Sealed(CookieAction),
    Remove,
}

#[derive(Debug)]
pub(crate) struct Life {
    pub(crate) stage: Stage,
    pub(crate) times: Option<Times>,
    /// `set_expiry(seconds)` (persistent) or `expire_on_close()` (`None`
    /// seconds: `ttl`, browser-session) not yet written.
    pub(crate) expiry: Option<ExpiryChoice>,
    /// `clear()` was called: every stored field goes.
    pub(crate) clear: bool,
    /// Bumped by `destroy` and `start_over`: field changes from an earlier
    /// epoch are dropped with the session they were made to.
    pub(crate) epoch: u32,
    pub(crate) pending_error: Option<Error>,
    pub(crate) cookie: Option<PendingCookie>,
    /// The session was read in this request (for `rolling` cookies).
    pub(crate) loaded: bool,
    /// The cookie's key named no live session when read, and whether it is
    /// a key a concurrent regenerate just replaced is not known yet: asked
    /// only if the request goes on to write (see the flush), so an unknown
    /// cookie on a read costs its one load.
    pub(crate) miss_unchecked: bool,
}

struct Shared {
    ctx: Arc<Context>,
    /// With sessions kept in cookies, the request's own store: the
    /// session its cookie carried.
    carried: Option<Arc<dyn Carried>>,
    /// The same, as the store every call of the request goes to (the
    /// application's otherwise: not cloned per request).
    own_store: Option<Arc<dyn SessionStore>>,
    /// The route the request goes to, when the integration says: loads
    /// learn per route which fields they need.
    route: Option<u64>,
    now: Timestamp,
    /// The token of the cookie the request carried, if it was well-formed.
    cookie_token: Option<Token>,
    /// Its key, computed on first need.
    cookie_key: OnceLock<StoreKey>,
    life: Mutex<Life>,
    /// Statements the request's store calls sent so far.
    statements: std::sync::atomic::AtomicU32,
    /// The client's device, when the integration described it.
    device: OnceLock<super::DeviceInfo>,
}

impl Drop for Shared {
    // The request is over when its last handle goes.
    fn drop(&mut self) {
        let statements = *self.statements.get_mut();
        if statements > 0 {
            if let Some(store) = &self.ctx.store {
                crate::observe::statements_per_request(store.name(), statements);
            }
        }
    }
}

/// The session of one request, shared by every session type it opens
/// (`Session<Shop>` and `Session<Prefs>` on one request see one token and
/// write one session). Cheap to clone. Web integrations create one per
/// request with [`SessionManager::begin`](crate::SessionManager::begin), open typed handles from it, and
/// after flushing them take the one cookie the response needs.
#[derive(Clone)]
pub struct RequestSession {
    shared: Arc<Shared>,
}

impl fmt::Debug for RequestSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestSession")
            .field("stage", &self.life().stage)
            .finish_non_exhaustive()
    }
}

impl RequestSession {
    /// The request's session as its cookie's [`Arrival`] brought it.
    pub(crate) fn new(
        ctx: Arc<Context>,
        arrival: Arrival,
        route: Option<u64>,
        now: Timestamp,
    ) -> Self {
        let (token, key) = arrival.token.unzip();
        let cookie_key = OnceLock::new();
        if let Some(key) = key.flatten() {
            // Hashed by the carrier: not again on first use.
            let _ = cookie_key.set(key);
        }
        let own_store = arrival.carried.clone().map(|carried| carried.store());
        assert!(
            own_store.is_some() || ctx.store.is_some(),
            "a manager without a store has a carrier of whole sessions"
        );
        let stage = match &token {
            Some(token) => Stage::Unverified {
                token: token.clone(),
            },
            None => Stage::Absent,
        };
        RequestSession {
            shared: Arc::new(Shared {
                ctx,
                carried: arrival.carried,
                own_store,
                route,
                now,
                cookie_token: token,
                cookie_key,
                life: Mutex::new(Life {
                    stage,
                    times: None,
                    expiry: None,
                    clear: false,
                    epoch: 0,
                    pending_error: None,
                    cookie: None,
                    loaded: false,
                    miss_unchecked: false,
                }),
                statements: std::sync::atomic::AtomicU32::new(0),
                device: OnceLock::new(),
            }),
        }
    }

    /// The cookie the response must carry, once every handle is flushed.
    pub fn take_cookie_action(&self) -> Option<CookieAction> {
        Some(match self.life().cookie.take()? {
            PendingCookie::Set { token, max_age } => CookieAction::Set {
                value: self.manager().carrier.value(&token)?,
                token,
                max_age,
            },
            PendingCookie::Sealed(action) => action,
            PendingCookie::Remove => CookieAction::Remove,
        })
    }

    /// With sessions kept in cookies, after a flush: seals the session
    /// into the cookie the response will carry, when the request changed
    /// it or the flush asked for a cookie (a refresh). Sealing at the
    /// flush, not later, lets its error reach the handler's `save()`.
    pub(crate) fn seal_in_cookie(&self) -> Result<()> {
        let Some(carried) = &self.shared.carried else {
            return Ok(());
        };
        let (asked, live) = {
            let life = self.life();
            let live = match &life.stage {
                Stage::Live { token, key } => Some((token.clone(), *key)),
                _ => None,
            };
            (life.cookie.is_some(), live)
        };
        if !asked && !carried.changed() {
            return Ok(());
        }
        let sealed = match &live {
            Some((token, key)) => carried.seal(token, key)?,
            None => None,
        };
        let cookie = match (live.map(|(token, _)| token), sealed) {
            (Some(token), Some(sealed)) => {
                let persistent = sealed
                    .persistent
                    .unwrap_or(self.manager().config().persistent);
                Some(PendingCookie::Sealed(CookieAction::Set {
                    token,
                    value: sealed.value,
                    max_age: persistent.then(|| sealed.expires_at - self.now()),
                }))
            }
            _ => self.had_cookie().then_some(PendingCookie::Remove),
        };
        self.life().cookie = cookie;
        Ok(())
    }

    /// The store this request's session lives in: the application's, or
    /// with sessions kept in cookies the request's own.
    pub(crate) fn store(&self) -> &Arc<dyn SessionStore> {
        match (&self.shared.own_store, &self.shared.ctx.store) {
            (Some(store), _) | (None, Some(store)) => store,
            (None, None) => unreachable!("checked when the request began"),
        }
    }

    /// Runs store call `operation` observed: its span, latency and
    /// statements (see [`observe`](crate::observe)).
    pub(crate) async fn call<T: crate::observe::CallOutcome>(
        &self,
        operation: &'static str,
        call: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        crate::observe::store_call(
            self.store().name(),
            operation,
            self.shared.ctx.config.slow_store_call(),
            &self.shared.statements,
            call,
        )
        .await
    }

    /// Describes the client's device (web integrations call it when
    /// `device_info` is on): kept with the session if this request creates
    /// one. The first description of a request counts.
    pub fn set_device(&self, device: super::DeviceInfo) {
        let _ = self.shared.device.set(device);
    }

    /// The client's device, if described.
    pub(crate) fn device(&self) -> Option<&super::DeviceInfo> {
        self.shared.device.get()
    }

    /// Whether lifecycle events are delivered (so worth describing).
    pub(crate) fn reports_events(&self) -> bool {
        self.shared.ctx.events().is_some()
    }

    /// Reports a lifecycle event of session `key`.
    pub(crate) fn emit(&self, kind: EventKind, key: &StoreKey, indexed: Vec<IndexedValue>) {
        if let Some(hub) = self.shared.ctx.events() {
            hub.emit(SessionEvent::new(kind, key.id(), indexed));
        }
    }

    /// The key of the request's cookie, hashed on first need.
    pub(crate) fn cookie_key(&self) -> Option<StoreKey> {
        let token = self.shared.cookie_token.as_ref()?;
        Some(*self.shared.cookie_key.get_or_init(|| token.store_key()))
    }

    /// The key of an unverified stage's token: the cookie's, hashed once.
    pub(crate) fn unverified_key(&self, token: &Token) -> StoreKey {
        self.cookie_key().unwrap_or_else(|| token.store_key())
    }

    /// The key a stage names, if any.
    pub(crate) fn key_of(&self, stage: &Stage) -> Option<StoreKey> {
        match stage {
            Stage::Unverified { .. } => self.cookie_key(),
            Stage::Live { key, .. } | Stage::Followed { key } => Some(*key),
            Stage::Moving { from, .. } => Some(*from),
            Stage::Absent | Stage::Destroyed | Stage::Ended => None,
        }
    }

    /// What every request of the application shares.
    pub(crate) fn manager(&self) -> &Arc<Context> {
        &self.shared.ctx
    }

    pub(crate) fn now(&self) -> Timestamp {
        self.shared.now
    }

    pub(crate) fn route(&self) -> Option<u64> {
        self.shared.route
    }

    pub(crate) fn had_cookie(&self) -> bool {
        self.shared.cookie_token.is_some()
    }

    pub(crate) fn life(&self) -> MutexGuard<'_, Life> {
        // Never held across an `.await`; every update completes before
        // anything can panic.
        self.shared
            .life
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn validity(&self) -> Validity {
        Validity::at(self.manager().config(), self.now())
    }

    /// The key reads go to: the session this request may have.
    pub(crate) fn read_key(&self) -> Option<StoreKey> {
        self.key_of(&self.life().stage)
    }

    /// Records that a read found the session alive.
    pub(crate) fn loaded(&self, times: Times) {
        let mut life = self.life();
        life.loaded = true;
        life.times.get_or_insert(times);
        life.stage = match std::mem::replace(&mut life.stage, Stage::Absent) {
            Stage::Unverified { token } => Stage::Live {
                key: self.unverified_key(&token),
                token,
            },
            Stage::Moving {
                from, to, rotation, ..
            } => Stage::Moving {
                from,
                verified: true,
                to,
                rotation,
            },
            other => other,
        };
    }

    /// Records that a read found no live session; `moved` when the key was
    /// just replaced by a regenerate in another request.
    pub(crate) fn loaded_nothing(&self, moved: bool) {
        let mut life = self.life();
        life.stage = match life.stage {
            Stage::Live { .. } | Stage::Followed { .. } => Stage::Ended,
            Stage::Destroyed => Stage::Destroyed,
            Stage::Ended => Stage::Ended,
            _ if moved => Stage::Ended,
            _ => Stage::Absent,
        };
    }

    /// The id a devices page lists this request's session by: the one a
    /// rotation kept, else its key's.
    pub(crate) fn listed_id(&self) -> Option<crate::token::SessionId> {
        let life = self.life();
        life.times
            .and_then(|t| t.listed_id)
            .or_else(|| self.key_of(&life.stage).map(|k| k.id()))
    }

    pub(crate) fn id(&self) -> Option<StoreKey> {
        match &self.life().stage {
            Stage::Moving { to, .. } => Some(to.store_key()),
            stage => self.key_of(stage),
        }
    }

    pub(crate) fn regenerate(&self) {
        let mut life = self.life();
        let to = match Token::generate() {
            Ok(token) => token,
            Err(e) => {
                life.pending_error = Some(e);
                return;
            }
        };
        life.stage = match std::mem::replace(&mut life.stage, Stage::Absent) {
            Stage::Unverified { token } => Stage::Moving {
                from: self.unverified_key(&token),
                verified: false,
                to,
                rotation: false,
            },
            Stage::Live { key, .. } | Stage::Followed { key } => Stage::Moving {
                from: key,
                verified: true,
                to,
                rotation: false,
            },
            // A rotation planned earlier becomes the regenerate asked for.
            Stage::Moving { from, verified, .. } => Stage::Moving {
                from,
                verified,
                to,
                rotation: false,
            },
            // Nothing to move: a new session always gets a fresh token.
            other => other,
        };
    }

    /// With `rotate_after`, moves a session this request read to a fresh
    /// token when its token is that old: the flush then stores the move
    /// with the request's changes and sets the new cookie.
    pub(crate) fn rotate_if_due(&self) {
        let Some(after) = self.manager().config().rotate_after else {
            return;
        };
        let mut life = self.life();
        let due = life.times.is_some_and(|t| {
            self.now()
                >= t.issued_at
                    .saturating_add(i64::try_from(after).unwrap_or(i64::MAX))
        });
        if !due || !matches!(life.stage, Stage::Live { .. }) {
            return;
        }
        let to = match Token::generate() {
            Ok(token) => token,
            Err(e) => {
                life.pending_error = Some(e);
                return;
            }
        };
        if let Stage::Live { key, .. } = life.stage {
            life.stage = Stage::Moving {
                from: key,
                verified: true,
                to,
                rotation: true,
            };
        }
    }

    /// Whether the cookie may be sent again with the token it has (a
    /// touch, a `rolling` refresh): not once the token is within
    /// `rotation_grace` of its rotation, when a response carrying it
    /// might reach the browser after the rotating one, which would then
    /// hold a replaced token and be taken for a thief after the grace.
    pub(crate) fn may_resend_token(&self) -> bool {
        let config = self.manager().config();
        let Some(after) = config.rotate_after else {
            return true;
        };
        let Some(times) = self.life().times else {
            return true;
        };
        let after = i64::try_from(after).unwrap_or(i64::MAX / 2);
        let grace = i64::try_from(config.rotation_grace).unwrap_or(0);
        self.now() < times.issued_at.saturating_add(after - grace)
    }

    pub(crate) fn set_expiry(&self, seconds: u64) {
        let seconds = i64::try_from(seconds).unwrap_or(i64::MAX / 2).max(1);
        self.life().expiry = Some(ExpiryChoice {
            seconds,
            persistent: true,
        });
    }

    pub(crate) fn expire_on_close(&self) {
        let seconds = i64::try_from(self.manager().config().ttl).unwrap_or(i64::MAX / 2);
        self.life().expiry = Some(ExpiryChoice {
            seconds,
            persistent: false,
        });
    }

    /// Whether the cookie should outlive the browser: this request's
    /// choice, else the session's stored one, else the configuration's.
    pub(crate) fn persistent(&self) -> bool {
        let life = self.life();
        life.expiry
            .map(|c| c.persistent)
            .or_else(|| life.times.and_then(|t| t.persistent))
            .unwrap_or(self.manager().config().persistent)
    }

    pub(crate) async fn start_over(&self, indexed: Vec<IndexedValue>) -> Result<()> {
        self.destroy(indexed).await?;
        let mut life = self.life();
        life.stage = Stage::Absent;
        life.times = None;
        life.clear = false;
        Ok(())
    }

    /// Destroys the session; `indexed` describes it for the event.
    pub(crate) async fn destroy(&self, indexed: Vec<IndexedValue>) -> Result<()> {
        let now = self.now();
        let (current, destroyed) = {
            let life = self.life();
            let current = self.key_of(&life.stage);
            (current, matches!(life.stage, Stage::Destroyed))
        };
        if destroyed {
            self.life().epoch += 1;
            return Ok(());
        }
        let store = self.store();
        let mut ended = None;
        if let Some(key) = current {
            if self.call("destroy", store.destroy(&key, now)).await? {
                ended = Some(key);
            }
        }
        // The cookie's key too when the request no longer names it: after a
        // concurrent regenerate it still reaches the session for a logout.
        if let Some(key) = self.cookie_key().filter(|k| Some(*k) != current) {
            if self.call("destroy", store.destroy(&key, now)).await? {
                ended = ended.or(Some(key));
            }
        }
        if let Some(key) = ended {
            crate::observe::destroyed(store.name(), "request", 1);
            let cause = crate::events::DestroyCause::Request;
            self.emit(EventKind::Destroyed { cause }, &key, indexed);
        }
        let mut life = self.life();
        life.stage = Stage::Destroyed;
        life.expiry = None;
        life.epoch += 1;
        life.cookie = self.had_cookie().then_some(PendingCookie::Remove);
        Ok(())
    }
}
