//! How field values become bytes.
//!
//! The codec is chosen at compile time, per session type, with
//! `#[session(codec = "path::To::Codec")]`; the default is [`JsonCodec`].
//! A compile-time choice keeps the accessors free of dynamic dispatch and
//! lets a codec use serde's generic entry points directly.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::BoxError;

#[cfg(feature = "schema-lock")]
mod shape;

/// The shape of `T`'s serialized values, for the schema lock; empty
/// without the `schema-lock` feature.
#[inline]
pub(crate) fn shape_of<T: DeserializeOwned>() -> String {
    #[cfg(feature = "schema-lock")]
    return shape::shape_of::<T>();
    #[cfg(not(feature = "schema-lock"))]
    String::new()
}

/// Turns field values into bytes and back.
///
/// ```
/// use session_core::codec::{Codec, JsonCodec};
///
/// let bytes = JsonCodec::encode(&vec![1, 2, 3]).unwrap();
/// assert_eq!(bytes, b"[1,2,3]");
/// let back: Vec<u32> = JsonCodec::decode(&bytes).unwrap();
/// assert_eq!(back, [1, 2, 3]);
/// ```
pub trait Codec: Send + Sync + 'static {
    /// Encodes one field value.
    ///
    /// # Errors
    /// Whatever the format reports (a map with non-string keys in JSON, say).
    fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, BoxError>;

    /// Decodes one field value.
    ///
    /// # Errors
    /// Whatever the format reports when the bytes do not fit `T`.
    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, BoxError>;
}

/// The default codec: compact JSON via `serde_json`. Readable in the
/// database, stable across deploys, and tolerant of added optional fields.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonCodec;

impl Codec for JsonCodec {
    fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, BoxError> {
        serde_json::to_vec(value).map_err(Into::into)
    }

    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, BoxError> {
        serde_json::from_slice(bytes).map_err(Into::into)
    }
}

/// What a session field's type must be: encodable and decodable by serde,
/// and `Send + Sync + 'static` (the handle crosses `.await`s on a
/// multi-threaded runtime). Implemented for every such type; the derive
/// asks for this one bound per field, so a type that falls short gets one
/// error at the field, in words that say what to do.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a session field: it must implement `Serialize` and `Deserialize`",
    label = "this type cannot be stored in a session",
    note = "derive `serde::Serialize` and `serde::Deserialize` for a type of your own (a type from another crate may have a `serde` feature); `Instant` has no serde form: store a `SystemTime` or Unix seconds; a borrowed `&str` cannot be decoded into: store a `String`"
)]
pub trait Storable: Send + Sync + 'static {
    /// Encodes the value with codec `C`.
    ///
    /// # Errors
    /// The codec's.
    fn encode_with<C: Codec>(&self) -> Result<Vec<u8>, BoxError>;

    /// Decodes a value with codec `C`.
    ///
    /// # Errors
    /// The codec's, when the bytes do not fit the type.
    fn decode_with<C: Codec>(bytes: &[u8]) -> Result<Self, BoxError>
    where
        Self: Sized;

    /// The shape of the type's serialized values, for the
    /// [schema lock](crate::schema_lock) (empty without its feature).
    #[doc(hidden)]
    fn shape() -> String
    where
        Self: Sized,
    {
        format!("opaque {}", std::any::type_name::<Self>())
    }
}

impl<T: Serialize + DeserializeOwned + Send + Sync + 'static> Storable for T {
    fn encode_with<C: Codec>(&self) -> Result<Vec<u8>, BoxError> {
        C::encode(self)
    }

    fn decode_with<C: Codec>(bytes: &[u8]) -> Result<Self, BoxError> {
        C::decode(bytes)
    }

    fn shape() -> String {
        shape_of::<T>()
    }
}
