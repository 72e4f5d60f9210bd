//! Per-request session state: what the cookie named, what was loaded, what
//! changed.
//!
//! A [`SessionState`] is created for free from a cookie. The store is read
//! the first time a field's bytes are needed: one [`load`] for every
//! non-deferred field, one [`load_field`] per deferred field. A field is
//! decoded only when it is used (see [`Slot`]); writes only flip a per-field
//! change marker, and [`flush`] turns the markers into the smallest store
//! call.
//!
//! [`load`]: crate::store::SessionStore::load
//! [`load_field`]: crate::store::SessionStore::load_field

use std::fmt;
use std::sync::OnceLock;

use serde::de::DeserializeOwned;
use tokio::sync::OnceCell;

use crate::codec::Codec;
use crate::config::OnDecodeError;
use crate::error::{Error, Result};
use crate::manager::SessionManager;
use crate::schema::{FieldDef, SessionData};
use crate::store::{Timestamp, Validity};
use crate::token::{StoreKey, Token};

mod field;
mod flush;

pub use field::Slot;
pub use flush::{flush, CookieAction, FlushPlan, Outcome, Target};

/// What a request did to one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    /// Not written (possibly read).
    Clean,
    /// Written through `set_x` or `x_mut`.
    Written,
    /// Removed through `remove_x`.
    Removed,
}

/// What is known about a field's stored bytes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Known<'a> {
    /// Not loaded: a blind write must be sent as is.
    Unknown,
    /// The store has no such field (or no such session).
    Absent,
    /// The stored bytes.
    Bytes(&'a [u8]),
}

/// Where the session may live in the store. A cookie's key (a SHA-256) is
/// computed on first need, so a guard that is never used hashes nothing.
#[derive(Debug)]
enum Stored {
    Nowhere,
    Cookie {
        token: Token,
        key: OnceLock<StoreKey>,
    },
    Key(StoreKey),
}

impl Stored {
    fn key(&self) -> Option<StoreKey> {
        match self {
            Stored::Nowhere => None,
            Stored::Cookie { token, key } => Some(*key.get_or_init(|| token.store_key())),
            Stored::Key(key) => Some(*key),
        }
    }
}

/// What a request did to one field beyond reading it. Allocated for all
/// fields on the first write, so read-only requests allocate nothing here.
#[derive(Debug, Clone)]
struct FieldState {
    change: Change,
    /// Bytes this request already stored, which supersede the loaded ones.
    written: Option<Option<Vec<u8>>>,
    /// Encoding of the default value of a field that is absent from the
    /// store, taken when it is first borrowed mutably, so an `x_mut` that
    /// leaves the default in place writes nothing.
    baseline: Option<Vec<u8>>,
}

const CLEAN: FieldState = FieldState {
    change: Change::Clean,
    written: None,
    baseline: None,
};

/// One deferred field's own load: unset until used; `None` when absent.
type DeferredCell = OnceCell<Option<Vec<u8>>>;

/// The loaded session, fields indexed like [`SessionData::FIELDS`].
#[derive(Debug)]
pub(crate) struct Loaded {
    pub(crate) created_at: Timestamp,
    pub(crate) expires_at: Timestamp,
    fields: Box<[Option<Vec<u8>>]>,
}

/// One request's view of one session. Wrapped by the generated handle.
pub struct SessionState {
    manager: SessionManager,
    schema: &'static [FieldDef],
    deferred_names: &'static [&'static str],
    now: Timestamp,
    /// The token the client will hold after this request: the cookie's, or a
    /// fresh one after `regenerate` or creation.
    token: Option<Token>,
    /// Whether `token` was generated in this request (never seen by a store
    /// yet, so it cannot be an attacker's choice).
    token_is_fresh: bool,
    /// Whether the request carried a well-formed cookie.
    had_cookie: bool,
    /// Where the session may currently live in the store.
    stored: Stored,
    /// `regenerate` was called: move `stored_key` to `token` at flush.
    rekey: bool,
    /// The non-deferred load: unset until first needed; `Some(None)` when the
    /// cookie named no live session.
    record: OnceCell<Option<Loaded>>,
    /// Each deferred field's own load, allocated on the first one.
    deferred: OnceLock<Box<[DeferredCell]>>,
    /// Per-field changes: empty until the first write.
    fields: Vec<FieldState>,
    expiry: Option<Timestamp>,
    destroyed: bool,
    /// Set after an interrupted flush: the session is gone, write nothing.
    ended: bool,
    pending_error: Option<Error>,
    cookie: Option<CookieAction>,
}

impl fmt::Debug for SessionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionState")
            .field("stored", &self.stored)
            .field("loaded", &self.record.initialized())
            .field("fields", &self.fields)
            .field("destroyed", &self.destroyed)
            .finish_non_exhaustive()
    }
}

impl SessionState {
    pub(crate) fn new<T: SessionData>(
        manager: SessionManager,
        token: Option<Token>,
        now: Timestamp,
    ) -> Self {
        SessionState {
            manager,
            schema: T::FIELDS,
            deferred_names: T::DEFERRED,
            now,
            stored: match &token {
                Some(token) => Stored::Cookie {
                    token: token.clone(),
                    key: OnceLock::new(),
                },
                None => Stored::Nowhere,
            },
            had_cookie: token.is_some(),
            token,
            token_is_fresh: false,
            rekey: false,
            record: OnceCell::new(),
            deferred: OnceLock::new(),
            fields: Vec::new(),
            expiry: None,
            destroyed: false,
            ended: false,
            pending_error: None,
            cookie: None,
        }
    }

    /// A non-secret identifier of the session (the SHA-256 of its token),
    /// for logs and correlation. `None` while the session has no token yet.
    /// It changes with [`regenerate`](Self::regenerate).
    pub fn id(&self) -> Option<StoreKey> {
        self.token.as_ref().map(Token::store_key)
    }

    /// `true` when no stored session backs this request yet: there was no
    /// cookie, the cookie named no live session (known once a field was
    /// read), or the session was destroyed.
    ///
    /// A request whose cookie has not been checked against the store yet
    /// reports `false`; read a field first to be certain.
    pub fn is_new(&self) -> bool {
        self.live_key().is_none()
    }

    /// Gives the session a new token at the end of this request, keeping its
    /// data: call it on login, so a token planted before login (session
    /// fixation) is worthless after it. Costs one statement at flush.
    pub fn regenerate(&mut self) {
        if self.destroyed || self.ended {
            return;
        }
        match Token::generate() {
            Ok(token) => {
                self.token = Some(token);
                self.token_is_fresh = true;
                self.rekey = true;
            }
            Err(e) => self.pending_error = Some(e),
        }
    }

    /// Makes the session expire `seconds` from now (capped by
    /// `max_lifetime`), for "remember me" or a short-lived step-up. Unlike a
    /// touch, this may shorten the session.
    pub fn set_expiry(&mut self, seconds: u64) {
        let seconds = i64::try_from(seconds).unwrap_or(i64::MAX / 2);
        self.expiry = Some(self.now.saturating_add(seconds));
    }

    /// Deletes the session from the store now and marks it destroyed: any
    /// change made in this request is dropped, and the cookie is removed.
    /// A slower concurrent request cannot bring it back.
    ///
    /// # Errors
    /// The store's error; the session is then not marked destroyed.
    pub async fn destroy(&mut self) -> Result<()> {
        if let Some(key) = self.stored.key() {
            self.manager.store().destroy(&key).await?;
        }
        self.destroyed = true;
        self.stored = Stored::Nowhere;
        if self.had_cookie || self.token_is_fresh {
            self.cookie = Some(CookieAction::Remove);
        }
        Ok(())
    }

    /// Whether [`destroy`](Self::destroy) succeeded in this request.
    pub fn is_destroyed(&self) -> bool {
        self.destroyed
    }

    /// The cookie the response must carry, taken once per request by the
    /// web integration after the final flush.
    #[doc(hidden)]
    pub fn take_cookie_action(&mut self) -> Option<CookieAction> {
        self.cookie.take()
    }

    /// The manager this state belongs to.
    #[doc(hidden)]
    pub fn manager(&self) -> &SessionManager {
        &self.manager
    }

    /// Whether the first load has run (for tests and metrics).
    #[doc(hidden)]
    pub fn is_loaded(&self) -> bool {
        self.record.initialized()
    }

    fn validity(&self) -> Validity {
        let max_lifetime = i64::try_from(self.manager.config().max_lifetime).unwrap_or(i64::MAX);
        Validity {
            now: self.now,
            created_after: self.now.saturating_sub(max_lifetime),
        }
    }

    /// The key of a session that may exist: `None` when there is none or it
    /// is known to be dead.
    fn live_key(&self) -> Option<StoreKey> {
        match self.record.get() {
            Some(None) => None,
            _ => self.stored.key(),
        }
    }

    fn loaded(&self) -> Option<&Loaded> {
        self.record.get().and_then(Option::as_ref)
    }

    /// What is known about field `index`'s stored bytes without any I/O.
    pub(crate) fn known(&self, index: usize) -> Known<'_> {
        if let Some(written) = self.fields.get(index).and_then(|f| f.written.as_ref()) {
            return written.as_deref().map_or(Known::Absent, Known::Bytes);
        }
        if self.live_key().is_none() {
            return Known::Absent;
        }
        let stored = if self.schema[index].deferred {
            self.deferred.get().and_then(|cells| cells[index].get())
        } else {
            self.record.get().map(|r| match r {
                Some(loaded) => &loaded.fields[index],
                None => &None,
            })
        };
        match stored {
            None => Known::Unknown,
            Some(None) => Known::Absent,
            Some(Some(bytes)) => Known::Bytes(bytes),
        }
    }

    /// Field `index`'s stored bytes, loading them on first need.
    async fn bytes(&self, index: usize) -> Result<Option<&[u8]>> {
        match self.known(index) {
            Known::Absent => return Ok(None),
            Known::Bytes(bytes) => return Ok(Some(bytes)),
            Known::Unknown => {}
        }
        let Some(key) = self.stored.key() else {
            return Ok(None);
        };
        let store = self.manager.store();
        let at = self.validity();
        let field = &self.schema[index];
        if field.deferred {
            let cells = self
                .deferred
                .get_or_init(|| self.schema.iter().map(|_| OnceCell::new()).collect());
            let value = cells[index]
                .get_or_try_init(|| store.load_field(&key, field.name, at))
                .await?;
            return Ok(value.as_deref());
        }
        let record = self
            .record
            .get_or_try_init(|| async {
                let record = store.load(&key, self.deferred_names, at).await?;
                if record.is_none() {
                    tracing::debug!(?key, "session cookie names no live session; starting fresh");
                }
                Ok::<_, Error>(record.map(|r| self.index_record(r)))
            })
            .await?;
        Ok(record.as_ref().and_then(|r| r.fields[index].as_deref()))
    }

    fn index_record(&self, record: crate::store::Record) -> Loaded {
        let mut fields: Box<[Option<Vec<u8>>]> = (0..self.schema.len()).map(|_| None).collect();
        for (name, value) in record.fields {
            if let Some(i) = self.schema.iter().position(|f| f.name == name) {
                fields[i] = Some(value);
            }
        }
        Loaded {
            created_at: record.created_at,
            expires_at: record.expires_at,
            fields,
        }
    }

    /// Decodes field `index`, falling back to `default` when it is absent
    /// (or undecodable, under `on_decode_error = "default"`).
    pub(crate) async fn decode<C: Codec, T: DeserializeOwned>(
        &self,
        index: usize,
        default: fn() -> T,
    ) -> Result<T> {
        let Some(bytes) = self.bytes(index).await? else {
            return Ok(default());
        };
        match C::decode(bytes) {
            Ok(value) => Ok(value),
            Err(source) => {
                let field = self.schema[index].name;
                match self.manager.config().on_decode_error {
                    OnDecodeError::Default => {
                        tracing::warn!(
                            field,
                            error = %source,
                            "stored session field no longer decodes; using its default"
                        );
                        Ok(default())
                    }
                    OnDecodeError::Error => Err(Error::Decode { field, source }),
                }
            }
        }
    }

    pub(crate) fn change(&self, index: usize) -> Change {
        self.fields.get(index).map_or(Change::Clean, |f| f.change)
    }

    pub(crate) fn baseline(&self, index: usize) -> Option<&[u8]> {
        self.fields.get(index).and_then(|f| f.baseline.as_deref())
    }

    fn field_mut(&mut self, index: usize) -> &mut FieldState {
        if self.fields.is_empty() {
            self.fields = vec![CLEAN; self.schema.len()];
        }
        &mut self.fields[index]
    }

    pub(crate) fn mark(&mut self, index: usize, change: Change) {
        self.field_mut(index).change = change;
    }

    pub(crate) fn set_baseline(&mut self, index: usize, bytes: Vec<u8>) {
        self.field_mut(index).baseline = Some(bytes);
    }

    pub(crate) fn set_written(&mut self, index: usize, bytes: Option<Vec<u8>>) {
        self.field_mut(index).written = Some(bytes);
    }

    /// Nothing in this request can need a store call or a cookie: no field
    /// written, nothing loaded (so no touch and no dead cookie to remove), no
    /// regenerate, destroy or expiry change. The flush of an unused guard
    /// stops here.
    pub(crate) fn is_untouched(&self) -> bool {
        self.fields.iter().all(|f| f.change == Change::Clean)
            && !self.record.initialized()
            && !self.rekey
            && !self.destroyed
            && self.expiry.is_none()
            && self.pending_error.is_none()
            && self.cookie.is_none()
    }
}

#[cfg(all(test, feature = "testing"))]
mod tests;
