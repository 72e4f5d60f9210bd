//! What `#[derive(Session)]` implements: the field list of a session type
//! and its typed handle.

use crate::codec::Codec;
use crate::error::BoxError;
use crate::state::SessionState;

/// One field of a session type, as the store sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldDef {
    /// The name the field is stored under (`#[session(rename = "…")]`, or
    /// the Rust name).
    pub name: &'static str,
    /// Loaded by its own query the first time it is used, not with the rest
    /// of the session (`#[session(deferred)]`).
    pub deferred: bool,
}

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
