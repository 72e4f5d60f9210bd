//! Everything `#[derive(Session)]` output names, behind one path.
//!
//! Not public API: generated code reaches it as `<root>::__private::…`, so a
//! derive and a runtime of different versions fail to compile instead of
//! misbehaving (the crates pin each other with `=`).

pub use crate::codec::{Codec, JsonCodec, Storable};
pub use crate::error::{BoxError, Result};
pub use crate::schema::{
    FieldDef, FieldLifetime, Migration, SessionData, SessionHandle, SessionLimit,
};
pub use crate::schema_lock::Shapes;
pub use crate::state::{convert, convert_with, SessionInfo, SessionState, Slot};
pub use crate::token::SessionId;
pub use core::default::Default;
pub use core::option::Option;
pub use core::result::Result as StdResult;
pub use serde::de::DeserializeOwned;
pub use serde::Serialize;
pub use std::vec::Vec;

/// The accessors' error conversion: the identity here; a web integration's
/// `__private` turns the error into its own type.
#[inline]
pub fn lift<T>(result: Result<T>) -> Result<T> {
    result
}
