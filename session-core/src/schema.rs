//! What `#[derive(Session)]` implements: the field list of a session type
//! and its typed handle.

use crate::codec::{Codec, Storable};
use crate::error::BoxError;
use crate::error::Result;
use crate::state::{Outcome, RequestSession, SessionInfo, SessionState};

pub use crate::state::{Converted, FieldDef, FieldLifetime, Migration, SessionLimit};

/// A typed session: a struct with `#[derive(Session)]`.
///
/// The derive implements it; a hand-written implementation is possible but
/// the derive is the supported way. The struct itself is never instantiated
/// by the library: it describes the fields, and [`Self::Handle`] holds the
/// values.
pub trait SessionData: Send + Sync + 'static {
    /// The fields, in declaration order. A field's index in this slice is
    /// the index the generated accessors pass to the runtime.
    const FIELDS: &'static [FieldDef];
    /// The stored names of the deferred fields, which the first load skips.
    const DEFERRED: &'static [&'static str];
    /// The codec for every field of this type.
    type Codec: Codec;
    /// The generated typed handle, with one accessor family per field.
    type Handle: SessionHandle<Data = Self>;
    /// The generated typed view of a listed session's non-deferred fields
    /// (`{Name}Listed`), from [`SessionInfo::data`].
    type Listed;

    /// Decodes a listed session's fields into [`Self::Listed`].
    fn listed(info: &SessionInfo<Self>) -> Self::Listed
    where
        Self: Sized;

    /// Records each field's type and earlier types, in order, for the
    /// [schema lock](crate::schema_lock). The derive implements it.
    #[doc(hidden)]
    fn describe(shapes: &mut crate::schema_lock::Shapes) {
        let _ = shapes;
    }
}

/// The typed handle the derive generates (`ShopSession` for `Shop`): a
/// [`SessionState`] plus one decoded-value slot per field.
pub trait SessionHandle: Send + Sync + Sized + 'static {
    /// The session type this handle belongs to.
    type Data: SessionData<Handle = Self>;

    /// Wraps a fresh per-request state.
    fn from_state(state: SessionState) -> Self;

    /// The untyped state: token, loaded bytes, dirty bits.
    fn state(&self) -> &SessionState;

    /// The untyped state, mutably.
    fn state_mut(&mut self) -> &mut SessionState;

    /// Encodes field `index` if its value was decoded or set in this
    /// request; `None` when the value was never materialised.
    fn encode_field(&self, index: usize) -> Option<Result<Vec<u8>, BoxError>>;
}

impl RequestSession {
    /// A typed handle on this request's session.
    pub fn open<T: SessionData>(&self) -> T::Handle {
        T::Handle::from_state(SessionState::new(self.clone(), T::FIELDS, T::DEFERRED))
    }
}

impl<D: SessionData> SessionInfo<D> {
    /// The session's non-deferred fields, typed: the struct
    /// `#[derive(Session)]` generates beside the handle (`ShopListed` for
    /// `Shop`), each field its stored value or its default.
    ///
    /// ```
    /// # use session_core::testing::Account;
    /// # async fn page(session: &session_core::testing::AccountSession) -> session_core::Result<()> {
    /// for device in session.sessions_by_user_id(&42).await? {
    ///     let data = device.data();
    ///     println!("{} {} {}", device.id(), data.device, device.last_seen());
    /// }
    /// # Ok(()) }
    /// ```
    pub fn data(&self) -> D::Listed {
        D::listed(self)
    }

    /// The value of the field stored as `name` (a non-deferred field of
    /// `D`), decoded with `D`'s codec; `None` when it is absent, deferred,
    /// or does not decode. [`data`](Self::data) is the typed way.
    pub fn field<T: Storable>(&self, name: &str) -> Option<T> {
        let (_, bytes) = self.fields.iter().find(|(n, _)| *n == name)?;
        T::decode_with::<D::Codec>(bytes).ok()
    }

    /// The field stored as `name` decoded, or `default()` when it is
    /// absent or does not decode (with a warning, as the accessors warn).
    /// For the generated [`SessionData::listed`].
    #[doc(hidden)]
    pub fn decode_or<T: Storable>(&self, name: &str, default: fn() -> T) -> T {
        let Some((_, bytes)) = self.fields.iter().find(|(n, _)| *n == name) else {
            return default();
        };
        // A value of one of the field's earlier types is shown converted.
        let migrate = D::FIELDS
            .iter()
            .find(|f| f.name == name)
            .and_then(|f| f.migrate);
        let converted = |_| match crate::state::migrated_bytes(migrate, bytes) {
            Some(Ok(bytes)) => T::decode_with::<D::Codec>(&bytes),
            Some(Err(error)) => Err(error),
            None => Err("no earlier type decodes it".into()),
        };
        T::decode_with::<D::Codec>(bytes)
            .or_else(converted)
            .unwrap_or_else(|_| {
                tracing::warn!(
                    field = name,
                    "a listed session's field no longer decodes; its default is shown"
                );
                default()
            })
    }
}

/// Writes what a handle changed: plans the smallest store call (only the
/// fields whose bytes changed; nothing for an unused handle) and performs
/// it. Web integrations call it once per handle after the handler, then
/// take the cookie from the [`RequestSession`].
///
/// # Errors
/// Encoding and size errors before anything is written; store errors.
pub async fn flush<H: SessionHandle>(handle: &mut H) -> Result<Outcome> {
    if handle.state().is_untouched() {
        return Ok(Outcome::Unchanged);
    }
    handle.state().request().rotate_if_due();
    handle.state().prepare_flush().await?;
    let plan = handle.state().plan(|i| handle.encode_field(i))?;
    let outcome = handle.state_mut().apply(plan).await?;
    handle.state().request().seal_in_cookie()?;
    Ok(outcome)
}
