//! Per-request session state: what the cookie named, what was loaded, what
//! changed.
//!
//! A request's session is a [`RequestSession`]: its token, its lifecycle
//! and the cookie the response needs, shared by every session type the
//! request opens. Each type's handle wraps a [`SessionState`]: the bytes it
//! loaded and the per-field change markers. The store is read the first
//! time a field's bytes are needed: one [`load`] for every non-deferred
//! field, one [`load_field`] per deferred field. A field is decoded only
//! when it is used (see [`Slot`]); writes only flip a per-field change
//! marker, and [`flush`](crate::flush) turns the markers into the smallest store call.
//!
//! [`load`]: crate::store::SessionStore::load
//! [`load_field`]: crate::store::SessionStore::load_field

use std::fmt;
use std::sync::OnceLock;

use tokio::sync::OnceCell;

use crate::codec::{Codec, Storable};
use crate::error::{Error, Result};
use crate::token::StoreKey;

mod alias;
mod device;
mod field;
mod flash;
mod flush;
mod index;
mod lifetime;
mod migrate;
pub(crate) mod request;
mod reserved;
mod rotation;
pub(crate) mod sealed;
mod update;

pub use device::DeviceInfo;
#[doc(hidden)]
pub(crate) use device::DEVICE;
pub use field::Slot;
pub use flush::Outcome;
#[cfg(test)]
pub(crate) use flush::{FlushPlan, Target};
pub(crate) use index::index_tags;
pub use index::SessionInfo;
pub use migrate::{convert, convert_with, Converted, Migration};
pub(crate) use migrate::{migrated_bytes, Origin};
pub use request::{CookieAction, RequestSession};
pub(crate) use request::{ExpiryChoice, Stage, Times};
pub(crate) use reserved::SINCE;
#[cfg(feature = "testing")]
pub(crate) use sealed::PREVIOUS_KEYS;

/// One field of a session type, as the store sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldDef {
    /// The name the field is stored under (`#[session(rename = "…")]`, or
    /// the Rust name).
    pub name: &'static str,
    /// Loaded by its own query the first time it is used, not with the rest
    /// of the session (`#[session(deferred)]`).
    pub deferred: bool,
    /// Written only with a compare-and-set of its version
    /// (`#[session(versioned)]`).
    pub versioned: bool,
    /// Searchable across sessions: its writes keep the session's entry in
    /// the store's index (`#[session(index)]`).
    pub indexed: bool,
    /// The most live sessions one value may have
    /// (`#[session(index, max_sessions = N)]`).
    pub limit: Option<SessionLimit>,
    /// How long a written value lives (`#[session(ttl = "10m")]`).
    pub lifetime: Option<FieldLifetime>,
    /// A message for the next request, taken once (`#[session(flash)]`):
    /// versioned too, for the compare-and-set that takes it.
    pub flash: bool,
    /// Old stored names the value is read from while the current one is
    /// absent (`#[session(alias = "old")]`), first first; its next write
    /// removes them, in the same save.
    pub aliases: &'static [&'static str],
    /// How stored bytes of the field's earlier types become its type
    /// (`#[session(from = Old)]`).
    pub migrate: Option<Migration>,
}

/// A field's own lifetime: `#[session(ttl = "10m")]` reads as absent ten
/// minutes after it was last written; with `sliding`, after it was last
/// read or written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldLifetime {
    /// Seconds (at least 1).
    pub seconds: u64,
    /// A read restarts the clock too.
    pub sliding: bool,
    /// The reserved field holding when the value expires:
    /// [`LIFETIME_PREFIX`](crate::store::LIFETIME_PREFIX) and the field's
    /// stored name.
    pub entry: &'static str,
}

/// The most live sessions one value of an indexed field may have, and what
/// a session past it does: `#[session(index, max_sessions = 2)]` ends the
/// oldest (by when each took the value), `when_full = "refuse"` ends the
/// newcomer instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimit {
    /// At most this many live sessions per value (at least 1).
    pub max: u32,
    /// Refuse the session past the limit, instead of ending the oldest.
    pub refuse: bool,
}

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

/// What a request did to one field beyond reading it. Allocated for all
/// fields on the first write, so read-only requests allocate nothing here.
/// No `Debug`: it holds the field's bytes (see `SessionState`'s, which
/// shows only what changed).
#[derive(Clone)]
struct FieldState {
    change: Change,
    /// Bytes this request already stored, which supersede the loaded ones.
    written: Option<Option<Vec<u8>>>,
    /// Encoding of the value a mutable borrow started from when that value
    /// is not the stored bytes (the default of an absent field, or the
    /// fallback of an undecodable one), so a borrow that leaves it as it
    /// was writes nothing.
    baseline: Option<Vec<u8>>,
    /// The stored bytes did not decode; the value is the fallback.
    undecodable: bool,
    /// The request's epoch when the field was last changed: changes made
    /// before a `destroy` or `start_over` are dropped with the session.
    epoch: u32,
    /// A versioned field's stored version as this request last saw it
    /// (after its own write or a reload), which supersedes the loaded one;
    /// the inner `None`: absent.
    version: Option<Option<u64>>,
    /// Reset by a `clear()` that is not stored yet: the save that stores
    /// the clear deletes every field and version first, so a write of this
    /// field in that save depends on no version (see `version`).
    cleared: bool,
    /// `written` came from this old stored name (`alias`), at this
    /// version: a reload found the value there.
    alias: Option<(&'static str, u64)>,
}

const CLEAN: FieldState = FieldState {
    change: Change::Clean,
    written: None,
    baseline: None,
    undecodable: false,
    epoch: 0,
    version: None,
    cleared: false,
    alias: None,
};

/// One deferred field's own load: unset until used; `None` when absent.
type DeferredCell = OnceCell<Option<Vec<u8>>>;

/// This type's fields as loaded, indexed like [`SessionData::FIELDS`].
struct Fields {
    values: Box<[Option<Vec<u8>>]>,
    /// Which fields the load fetched, when it fetched only those its route
    /// is known to use; `None`: every non-deferred field.
    fetched: Option<Box<[bool]>>,
    /// Versions of the versioned fields (0 for the others): empty when the
    /// type has no versioned field.
    versions: Box<[u64]>,
    /// The keys the session had before its regenerates, when values are
    /// encrypted (see `sealed`).
    previous_keys: sealed::SealKeys,
    /// When each field with a lifetime expires, as stored (`None`: no
    /// entry); empty when the type has no such field.
    lifetimes: Box<[Option<crate::store::Timestamp>]>,
    /// Fields read from an old stored name (`alias`), with its version;
    /// empty when the type has no alias.
    aliased: Box<[Option<(&'static str, u64)>]>,
}

/// The load: `None` when it found no live session.
type Loaded = Option<Fields>;

/// Field `index`'s bytes and version in a load.
fn in_load(loaded: &Loaded, index: usize) -> (&Option<Vec<u8>>, u64) {
    match loaded {
        Some(fields) => (
            &fields.values[index],
            fields.versions.get(index).copied().unwrap_or(0),
        ),
        None => (&None, 0),
    }
}

impl Fields {
    /// Whether the load fetched field `index` (or knows it absent).
    fn has(&self, index: usize) -> bool {
        self.fetched.as_ref().is_none_or(|mask| mask[index])
    }
}

/// One session type's view of the request's session. Wrapped by the
/// generated handle, which derefs to it.
pub struct SessionState {
    request: RequestSession,
    schema: &'static [FieldDef],
    deferred_names: &'static [&'static str],
    /// The non-deferred load: unset until first needed.
    record: OnceCell<Loaded>,
    /// After a first load of only the fields the route is known to use,
    /// the load of the others, when one of them is needed.
    rest: OnceCell<Loaded>,
    /// What requests of this request's route used of this type, when the
    /// integration named the route: looked up at the first load.
    learned: OnceLock<Option<std::sync::Arc<crate::context::Learned>>>,
    /// Each deferred field's own load, allocated on the first one.
    deferred: OnceLock<Box<[DeferredCell]>>,
    /// Per-field changes: empty until the first write.
    fields: Vec<FieldState>,
    /// Fields whose stored bytes did not open (encryption at rest).
    unopened: std::sync::Mutex<Vec<usize>>,
    /// `sliding` fields read in this request: their clock restarts.
    slid: std::sync::Mutex<Vec<usize>>,
    /// Fields converted from an earlier type on read, with
    /// `rewrite_on_read`: written back at the flush.
    rewrite: std::sync::Mutex<Vec<usize>>,
}

/// Never a value: the request, whether the session was loaded, and what
/// this request did to each field (by stored name), so a `{:?}` in a log
/// cannot leak what a session holds.
impl fmt::Debug for SessionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionState")
            .field("request", &self.request)
            .field("loaded", &self.record.initialized())
            .field("fields", &FieldChanges(self))
            .finish_non_exhaustive()
    }
}

/// A state's fields in its `Debug` output: each stored name with its
/// change marker, never its bytes.
struct FieldChanges<'a>(&'a SessionState);

impl fmt::Debug for FieldChanges<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.0;
        f.debug_map()
            .entries(
                state
                    .schema
                    .iter()
                    .enumerate()
                    .map(|(index, field)| (field.name, state.change(index))),
            )
            .finish()
    }
}

impl SessionState {
    pub(crate) fn new(
        request: RequestSession,
        schema: &'static [FieldDef],
        deferred_names: &'static [&'static str],
    ) -> Self {
        SessionState {
            request,
            schema,
            deferred_names,
            record: OnceCell::new(),
            rest: OnceCell::new(),
            learned: OnceLock::new(),
            deferred: OnceLock::new(),
            fields: Vec::new(),
            unopened: std::sync::Mutex::default(),
            slid: std::sync::Mutex::default(),
            rewrite: std::sync::Mutex::default(),
        }
    }

    /// A non-secret identifier of the session (the SHA-256 of its token),
    /// for logs and correlation. `None` while the session has no token yet.
    /// It changes with [`regenerate`](Self::regenerate).
    pub fn id(&self) -> Option<StoreKey> {
        self.request.id()
    }

    /// `true` when no stored session backs this request: there was no
    /// cookie, the cookie named no live session (known once a field was
    /// read), or the session was destroyed.
    ///
    /// A request whose cookie has not been checked against the store yet
    /// reports `false`; read a field first to be certain.
    pub fn is_new(&self) -> bool {
        self.request.read_key().is_none()
    }

    /// Gives the session a new token at the end of this request, keeping its
    /// data: call it on login, so a token planted before login (session
    /// fixation) is worthless after it. The move and this request's changes
    /// are one transaction. For a short grace the old token still reaches
    /// the session for [`destroy`](Self::destroy) (a logout from a tab that
    /// has not seen the new cookie), never for reads or writes.
    ///
    /// `regenerate` keeps the data (an anonymous cart survives the login).
    /// When another user logs in on the same browser, call the handle's
    /// `start_over()` first (a fresh session: nothing of the previous user
    /// remains), or `clear()` then `regenerate()`.
    pub fn regenerate(&mut self) {
        self.request.regenerate();
    }

    /// Gives the session its own idle timeout of `seconds` from now on, in
    /// place of `ttl`: it expires `seconds` from now, and each later touch
    /// slides it by `seconds` again (for "remember me", or a short-lived
    /// step-up). Never past `max_lifetime` from the session's creation.
    /// Unlike a touch, this may shorten the session.
    pub fn set_expiry(&mut self, seconds: u64) {
        self.request.set_expiry(seconds);
    }

    /// Deletes the session from the store now and marks it destroyed: any
    /// change made in this request is dropped, and the cookie is removed.
    /// A slower concurrent request cannot bring it back. A logout carrying
    /// a token that a concurrent `regenerate` replaced moments ago still
    /// ends the session.
    ///
    /// # Errors
    /// The store's error; the session is then not marked destroyed.
    pub async fn destroy(&mut self) -> Result<()> {
        let indexed = self.event_values(&[], true).await;
        self.request.destroy(indexed).await
    }

    /// This type's `#[session(index)]` values for a lifecycle event: from
    /// `written` (plain bytes being stored), else as the request read
    /// them, loading them (with `load`) if it did not (one statement,
    /// only when event handlers are registered). An event never fails a
    /// request: a load error leaves the value out.
    pub(crate) async fn event_values(
        &self,
        written: &[(&'static str, Vec<u8>)],
        load: bool,
    ) -> Vec<crate::events::IndexedValue> {
        let mut values = Vec::new();
        if !self.request.reports_events() {
            return values;
        }
        for (index, field) in self.schema.iter().enumerate() {
            if !field.indexed {
                continue;
            }
            let bytes = match written.iter().find(|(n, _)| *n == field.name) {
                Some((_, bytes)) => Some(bytes.as_slice()),
                None if load => self.bytes(index).await.ok().flatten(),
                None => None,
            };
            if let Some(bytes) = bytes {
                values.push(crate::events::IndexedValue {
                    field: field.name,
                    value: String::from_utf8_lossy(bytes).into_owned(),
                });
            }
        }
        values
    }

    /// Whether [`destroy`](Self::destroy) succeeded in this request.
    pub fn is_destroyed(&self) -> bool {
        matches!(self.request.life().stage, Stage::Destroyed)
    }

    /// Makes the session's cookie a browser-session cookie from now on (no
    /// `Max-Age`: the browser forgets it when it closes), with `ttl` as its
    /// idle timeout: a login without "remember me". The opposite of
    /// [`set_expiry`](Self::set_expiry), which makes the cookie persistent.
    pub fn expire_on_close(&mut self) {
        self.request.expire_on_close();
    }

    /// Ends the stored session now, like [`destroy`](Self::destroy), and
    /// goes on with a fresh, empty one in the same request: what this
    /// request writes afterwards is stored under a new token (a logout that
    /// leaves a message, switching users). Changes made before are dropped;
    /// if nothing is written afterwards, the cookie is removed. Use the
    /// handle's `start_over()`, which also resets the decoded values.
    ///
    /// # Errors
    /// The store's error; the session is then left as it was.
    #[doc(hidden)]
    pub async fn start_over_state(&mut self) -> Result<()> {
        let indexed = self.event_values(&[], true).await;
        self.request.start_over(indexed).await?;
        self.forget();
        Ok(())
    }

    /// Every field back to its default, same token: the store deletes all
    /// the session's fields at the end of the request (of every session
    /// type), and reads in this request see defaults. Use the handle's
    /// `clear()`, which also resets the decoded values.
    #[doc(hidden)]
    pub fn clear_state(&mut self) {
        self.request.life().clear = true;
        self.forget();
        for index in 0..self.schema.len() {
            self.set_written(index, None);
            self.field_mut(index).cleared = true;
        }
    }

    /// Drops what this handle loaded and changed.
    fn forget(&mut self) {
        self.record = OnceCell::new();
        self.rest = OnceCell::new();
        self.deferred = OnceLock::new();
        self.fields = Vec::new();
        self.unopened = std::sync::Mutex::default();
        self.slid = std::sync::Mutex::default();
        self.rewrite = std::sync::Mutex::default();
    }

    /// The request's session this state belongs to.
    #[doc(hidden)]
    pub fn request(&self) -> &RequestSession {
        &self.request
    }

    /// Whether the first load has run (for tests and metrics).
    #[doc(hidden)]
    pub fn is_loaded(&self) -> bool {
        self.record.initialized()
    }

    /// What is known about field `index`'s stored bytes without any I/O.
    pub(crate) fn known(&self, index: usize) -> Known<'_> {
        if let Some(written) = self.fields.get(index).and_then(|f| f.written.as_ref()) {
            return written.as_deref().map_or(Known::Absent, Known::Bytes);
        }
        if self.request.read_key().is_none() {
            return Known::Absent;
        }
        let stored = if self.schema[index].deferred {
            self.deferred.get().and_then(|cells| cells[index].get())
        } else {
            self.loaded(index).map(|(value, _)| value)
        };
        match stored {
            None => Known::Unknown,
            Some(None) => Known::Absent,
            Some(Some(bytes)) => Known::Bytes(bytes),
        }
    }

    /// Field `index`'s stored bytes, loading them on first need.
    async fn bytes(&self, index: usize) -> Result<Option<&[u8]>> {
        if !self.schema[index].deferred {
            if let Some(learned) = self.learned() {
                learned.learn(index);
            }
        }
        self.note_read(index);
        match self.known(index) {
            Known::Absent => return Ok(None),
            Known::Bytes(bytes) => return Ok(Some(bytes)),
            Known::Unknown => {}
        }
        let Some(mut key) = self.request.read_key() else {
            return Ok(None);
        };
        if self.schema[index].deferred {
            if self.rotates() && matches!(self.request.life().stage, Stage::Unverified { .. }) {
                // A field's own load cannot tell a rotated token from an
                // absent field: the session's load first (which follows
                // the token).
                self.load(key).await?;
                match self.request.read_key() {
                    Some(current) => key = current,
                    None => return Ok(None),
                }
            }
            return self.deferred_bytes(key, index).await;
        }
        match self.load(key).await? {
            Some(fields) if !fields.has(index) => {
                let rest = self.load_rest(key).await?;
                Ok(rest.as_ref().and_then(|r| r.values[index].as_deref()))
            }
            record => Ok(record.as_ref().and_then(|r| r.values[index].as_deref())),
        }
    }

    /// Field `index`'s stored bytes and version from the loads so far;
    /// `None` when no load fetched it yet.
    fn loaded(&self, index: usize) -> Option<(&Option<Vec<u8>>, u64)> {
        match self.record.get()? {
            Some(fields) if !fields.has(index) => self.rest.get().map(|rest| in_load(rest, index)),
            record => Some(in_load(record, index)),
        }
    }

    /// What requests of this request's route used of this type; `None`
    /// when the integration named no route.
    fn learned(&self) -> Option<&crate::context::Learned> {
        self.learned
            .get_or_init(|| {
                let route = self.request.route()?;
                let kind = self.schema.as_ptr() as usize;
                Some(
                    self.request
                        .manager()
                        .learned(kind, self.schema.len(), route),
                )
            })
            .as_deref()
    }

    /// The fields a first load fetches when the route is known: those its
    /// requests used (and, with encryption, the session's previous keys),
    /// with the mask of them; `None` for every non-deferred field (no
    /// route, a route's first request, or a route that uses them all).
    fn first_fields(&self) -> Option<(Vec<&'static str>, Box<[bool]>)> {
        let learned = self.learned()?;
        if !learned.take_ready() {
            return None;
        }
        let mask: Box<[bool]> = (0..self.schema.len())
            .map(|i| !self.schema[i].deferred && learned.used(i))
            .collect();
        if self
            .schema
            .iter()
            .zip(mask.iter())
            .all(|(field, used)| field.deferred || *used)
        {
            return None;
        }
        let mut names: Vec<&'static str> = self
            .schema
            .iter()
            .zip(mask.iter())
            .filter(|(_, used)| **used)
            .map(|(field, _)| field.name)
            .collect();
        if self.request.manager().sealer().is_some() {
            names.push(sealed::PREVIOUS_KEYS);
        }
        if self.rotates() {
            names.push(rotation::ISSUED);
        }
        names.extend(
            self.schema
                .iter()
                .zip(mask.iter())
                .filter(|(_, used)| **used)
                .filter_map(|(field, _)| field.lifetime.map(|l| l.entry)),
        );
        names.extend(
            self.schema
                .iter()
                .zip(mask.iter())
                .filter(|(_, used)| **used)
                .flat_map(|(field, _)| field.aliases.iter().copied()),
        );
        Some((names, mask))
    }

    /// After a first load of only some fields, the load of the other
    /// non-deferred ones, run once. A session gone meanwhile has ended
    /// for this request.
    async fn load_rest(&self, key: StoreKey) -> Result<&Loaded> {
        let store = self.request.store();
        let at = self.request.validity();
        self.rest
            .get_or_try_init(|| async {
                let fetched: Vec<&str> = match self.record.get() {
                    Some(Some(Fields {
                        fetched: Some(mask),
                        ..
                    })) => self
                        .schema
                        .iter()
                        .zip(mask.iter())
                        .filter(|(_, fetched)| **fetched)
                        .map(|(field, _)| field.name)
                        .collect(),
                    _ => Vec::new(),
                };
                let skip: Vec<&str> = self.deferred_names.iter().copied().chain(fetched).collect();
                let record = self
                    .request
                    .call("load", store.load(&key, &skip, at))
                    .await?;
                if record.is_none() {
                    tracing::debug!(?key, "the session ended between two loads of one request");
                    self.request.loaded_nothing(false);
                }
                Ok::<_, Error>(record.map(|r| self.index_record(&key, r)))
            })
            .await
    }

    /// A deferred field's own load, opened when values are encrypted.
    async fn deferred_bytes(&self, key: StoreKey, index: usize) -> Result<Option<&[u8]>> {
        let store = self.request.store();
        let at = self.request.validity();
        let name = self.schema[index].name;
        let cells = self
            .deferred
            .get_or_init(|| self.schema.iter().map(|_| OnceCell::new()).collect());
        let value = cells[index]
            .get_or_try_init(|| async {
                let value = self
                    .request
                    .call("load_field", store.load_field(&key, name, at))
                    .await?;
                let Some(sealed) = value else {
                    return Ok::<_, Error>(None);
                };
                let Some(sealer) = self.request.manager().sealer() else {
                    return Ok(Some(sealed));
                };
                if let Some(plain) = sealer.open(&key, name, &sealed) {
                    return Ok(Some(plain));
                }
                // Sealed before a regenerate, perhaps: the previous keys
                // come with the main load, or by their own query.
                let previous = match self.record.get() {
                    Some(loaded) => loaded
                        .as_ref()
                        .map(|r| r.previous_keys.clone())
                        .unwrap_or_default(),
                    None => {
                        let list = self
                            .request
                            .call(
                                "load_field",
                                store.load_field(&key, sealed::PREVIOUS_KEYS, at),
                            )
                            .await?;
                        sealed::open_keys(sealer, &key, list.as_deref())
                    }
                };
                let seals = sealed::seals(sealer, &key, &previous);
                Ok(Some(self.open_value(&seals, index, sealed)))
            })
            .await?;
        Ok(value.as_deref())
    }

    /// The non-deferred load, run once.
    async fn load(&self, key: StoreKey) -> Result<&Loaded> {
        let store = self.request.store();
        let at = self.request.validity();
        self.record
            .get_or_try_init(|| async {
                let first = self.first_fields();
                let first_names = first.as_ref().map(|(only, _)| only.as_slice());
                let fetch = |key: StoreKey| async move {
                    match first_names {
                        Some(only) => {
                            self.request
                                .call("load_only", store.load_only(&key, only, at))
                                .await
                        }
                        None => {
                            self.request
                                .call("load", store.load(&key, self.deferred_names, at))
                                .await
                        }
                    }
                };
                let mut key = key;
                let mut record = fetch(key).await?;
                if record.is_none() && self.rotates() && Some(key) == self.request.cookie_key() {
                    // With rotation on, a miss is asked about at once: a
                    // token rotated moments ago is followed (one more load),
                    // one rotated long ago ends the session.
                    match self.after_miss(key).await? {
                        rotation::Miss::Follow(current) => {
                            key = current;
                            record = fetch(key).await?;
                        }
                        rotation::Miss::Moved => self.request.loaded_nothing(true),
                        rotation::Miss::Nothing => {}
                    }
                }
                match &record {
                    Some(r) => self.request.loaded(Times {
                        created_at: r.created_at,
                        expires_at: r.expires_at,
                        idle_timeout: r.idle_timeout,
                        persistent: r.persistent,
                        issued_at: rotation::issued_at(&r.fields, r.created_at),
                        listed_id: rotation::listed_id(&r.fields),
                    }),
                    None => {
                        tracing::debug!(?key, "session cookie names no live session");
                        self.request.loaded_nothing(false);
                        // Perhaps a key a concurrent regenerate just
                        // replaced: asked before this request writes (one
                        // more statement then), not on a read, so an
                        // unknown cookie on a read costs one statement.
                        if self.request.had_cookie() && !self.rotates() {
                            self.request.life().miss_unchecked = true;
                        }
                    }
                }
                Ok::<_, Error>(record.map(|r| {
                    let mut fields = self.index_record(&key, r);
                    fields.fetched = first.map(|(_, mask)| mask);
                    fields
                }))
            })
            .await
    }

    /// The loaded fields by index, opened when values are encrypted.
    fn index_record(&self, key: &StoreKey, record: crate::store::Record) -> Fields {
        let position = |name: &str| self.schema.iter().position(|f| f.name == name);
        let sealer = self.request.manager().sealer();
        let previous_keys = sealed::record_keys(sealer, key, &record.fields);
        let seals = sealer.map(|s| sealed::seals(s, key, &previous_keys));
        let mut values: Box<[Option<Vec<u8>>]> = (0..self.schema.len()).map(|_| None).collect();
        let mut lifetimes = lifetime::slots(self.schema);
        let mut aliased = alias::slots(self.schema);
        let mut old = Vec::new();
        for (name, value) in record.fields {
            if let Some(i) = position(&name) {
                values[i] = Some(match &seals {
                    Some(seals) => self.open_value(seals, i, value),
                    None => value,
                });
            } else if !lifetimes.is_empty() && name.starts_with(crate::store::LIFETIME_PREFIX) {
                lifetime::note(self.schema, &mut lifetimes, &name, &value);
            } else if !aliased.is_empty() {
                old.push((name, value));
            }
        }
        if !old.is_empty() {
            self.take_aliases(
                &mut values,
                &mut aliased,
                old,
                &record.versions,
                seals.as_deref(),
            );
        }
        // What the store must not return, never used (a custom store that
        // forgot it included).
        lifetime::drop_expired(&mut values, &lifetimes, self.request.now());
        let mut versions: Box<[u64]> = Box::default();
        if self.schema.iter().any(|f| f.versioned) {
            versions = vec![0; self.schema.len()].into_boxed_slice();
            for (name, version) in record.versions {
                if let Some(i) = position(&name) {
                    versions[i] = version;
                }
            }
        }
        Fields {
            values,
            fetched: None,
            versions,
            previous_keys,
            lifetimes,
            aliased,
        }
    }

    /// Field `index`'s stored version as far as this request knows:
    /// `Some(None)` absent, `Some(Some(v))` present at version `v`; `None`
    /// when not loaded yet, and for a field reset by a `clear()` not stored
    /// yet: the save that stores the clear writes it after deleting every
    /// field, whatever version it had, so the write expects none.
    pub(crate) fn version(&self, index: usize) -> Option<Option<u64>> {
        let field = self.fields.get(index);
        if let Some(version) = field.and_then(|f| f.version) {
            return Some(version);
        }
        if field.is_some_and(|f| f.cleared) && self.request.life().clear {
            return None;
        }
        match self.known(index) {
            Known::Unknown => None,
            Known::Absent => Some(self.expired_version(index)),
            // Read from an old name: the stored name itself is absent.
            Known::Bytes(_) if self.aliased(index).is_some() => Some(None),
            Known::Bytes(_) => Some(Some(self.loaded(index).map_or(0, |(_, v)| v))),
        }
    }

    pub(crate) fn set_version(&mut self, index: usize, version: Option<u64>) {
        self.field_mut(index).version = Some(version);
    }

    /// Loads what the flush must know and a blind write did not load:
    /// every versioned field this request changes needs its version, so
    /// the flush can state what it expects.
    pub(crate) async fn prepare_flush(&self) -> Result<()> {
        // With rotation and encryption, a write seals for the session's
        // seal key, which its load tells: a blind write loads first.
        if self.rotates()
            && self.request.manager().sealer().is_some()
            && self.has_field_changes()
            && matches!(self.request.life().stage, Stage::Unverified { .. })
        {
            if let Some(key) = self.request.read_key() {
                self.load(key).await?;
            }
        }
        for (index, field) in self.schema.iter().enumerate() {
            if field.versioned
                && self.change(index) != Change::Clean
                && self.version(index).is_none()
            {
                self.bytes(index).await?;
            }
        }
        Ok(())
    }

    /// Decodes field `index`, falling back to `default` when it is absent
    /// (or undecodable, under `on_decode_error = "default"`), converting it
    /// when it was stored by one of the field's earlier types; the origin
    /// says which.
    pub(crate) async fn decode<C: Codec, T: Storable>(
        &self,
        index: usize,
        default: fn() -> T,
    ) -> Result<(T, Origin)> {
        let Some(bytes) = self.bytes(index).await? else {
            return Ok((default(), Origin::Stored));
        };
        let decoded = if self.is_unopened(index) {
            Err(sealed::unopened_error())
        } else {
            T::decode_with::<C>(bytes)
        };
        match decoded {
            Ok(value) => Ok((value, Origin::Stored)),
            // Bytes that did not open are not an earlier type's.
            Err(error) if self.is_unopened(index) => {
                self.decode_stored::<C, T>(index, None, error, default)
            }
            Err(error) => self.decode_stored::<C, T>(index, Some(bytes), error, default),
        }
    }

    /// Refuses an encoded value over `max_field_bytes` (as stored: sealed
    /// when values are encrypted).
    pub(crate) fn check_field_size(&self, field: &'static str, size: usize) -> Result<()> {
        let manager = self.request.manager();
        let limit = manager.config().max_field_bytes;
        let size = size + manager.sealer().map_or(0, |_| crate::sealing::OVERHEAD);
        if size > limit {
            return Err(Error::FieldTooLarge { field, size, limit });
        }
        Ok(())
    }

    pub(crate) fn change(&self, index: usize) -> Change {
        self.fields.get(index).map_or(Change::Clean, |f| f.change)
    }

    pub(crate) fn baseline(&self, index: usize) -> Option<&[u8]> {
        self.fields.get(index).and_then(|f| f.baseline.as_deref())
    }

    pub(crate) fn is_undecodable(&self, index: usize) -> bool {
        self.fields.get(index).is_some_and(|f| f.undecodable)
    }

    fn field_mut(&mut self, index: usize) -> &mut FieldState {
        if self.fields.is_empty() {
            self.fields = vec![CLEAN; self.schema.len()];
        }
        &mut self.fields[index]
    }

    pub(crate) fn mark(&mut self, index: usize, change: Change) {
        let epoch = self.request.life().epoch;
        let field = self.field_mut(index);
        field.change = change;
        field.epoch = epoch;
    }

    pub(crate) fn epoch(&self, index: usize) -> u32 {
        self.fields.get(index).map_or(0, |f| f.epoch)
    }

    pub(crate) fn set_baseline(&mut self, index: usize, bytes: Option<Vec<u8>>) {
        self.field_mut(index).baseline = bytes;
    }

    pub(crate) fn set_undecodable(&mut self, index: usize) {
        self.field_mut(index).undecodable = true;
    }

    pub(crate) fn set_written(&mut self, index: usize, bytes: Option<Vec<u8>>) {
        self.unopened
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|&i| i != index);
        let field = self.field_mut(index);
        field.written = Some(bytes);
        field.baseline = None;
        field.undecodable = false;
        field.cleared = false;
        field.alias = None;
    }

    /// Whether any field was written or removed in this request.
    pub(crate) fn has_field_changes(&self) -> bool {
        self.fields.iter().any(|f| f.change != Change::Clean)
    }
}

/// Adds field `index` to a list of fields read in this request (through a
/// shared reference, so behind a lock), once.
fn note_once(list: &std::sync::Mutex<Vec<usize>>, index: usize) {
    let mut list = list
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !list.contains(&index) {
        list.push(index);
    }
}

#[cfg(all(test, feature = "testing"))]
mod tests;
