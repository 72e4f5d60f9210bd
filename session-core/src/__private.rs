//! Everything `#[derive(Session)]` output names, behind one path.
//!
//! Not public API: generated code reaches it as `<root>::__private::…`, so a
//! derive and a runtime of different versions fail to compile instead of
//! misbehaving (the crates pin each other with `=`).

pub use crate::codec::{Codec, JsonCodec};
pub use crate::error::{BoxError, Result};
pub use crate::schema::{FieldDef, SessionData, SessionHandle};
pub use crate::state::{SessionState, Slot};
pub use core::default::Default;
pub use core::option::Option;
pub use core::result::Result as StdResult;
pub use serde::de::DeserializeOwned;
pub use serde::Serialize;
pub use std::vec::Vec;

/// Asserts at compile time, at the field's span, that a field type can be
/// stored: rustc reports a missing bound on the user's field type.
pub const fn assert_field<T>()
where
    T: serde::Serialize + serde::de::DeserializeOwned + Send + Sync + 'static,
{
}

/// Asserts at the field's span that a field without `default = "…"` has a
/// `Default`.
pub const fn assert_default<T: Default>() {}
