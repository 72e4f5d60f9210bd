//! How field values become bytes.
//!
//! The codec is chosen at compile time, per session type, with
//! `#[session(codec = "path::To::Codec")]`; the default is [`JsonCodec`].
//! A compile-time choice keeps the accessors free of dynamic dispatch and
//! lets a codec use serde's generic entry points directly.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::BoxError;

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
