//! Values stored by an earlier type of a field (`#[session(from = Old)]`):
//! bytes that no longer decode as the field's type are tried as its
//! earlier types, newest first, and converted. The converted value is the
//! field's value in memory; it is written back only when the request
//! writes the field (a borrow that leaves it as converted writes nothing),
//! or at the end of the request that read it with `rewrite_on_read`.

use crate::codec::Storable;
use crate::config::OnDecodeError;
use crate::error::{BoxError, Error, Result};
use crate::state::SessionState;

/// A field's stored bytes of an earlier type as its type's bytes: `None`
/// when no earlier type decodes them, `Some(Err(_))` when one did and a
/// conversion failed.
pub type Converted = Option<Result<Vec<u8>, BoxError>>;

/// How a field's stored bytes of an earlier type become its type: what
/// `#[session(from = Old)]` generates. Not built by hand.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Decodes `bytes` as one of the field's earlier types (newest first),
    /// converts the value along the chain to the field's type and encodes
    /// it with the session type's codec. `None` when no earlier type
    /// decodes the bytes; `Some(Err(_))` when one did and a conversion
    /// failed.
    pub convert: fn(&[u8]) -> Converted,
    /// Written back by the request that read it (`rewrite_on_read`).
    pub on_read: bool,
}

impl PartialEq for Migration {
    fn eq(&self, other: &Self) -> bool {
        self.on_read == other.on_read && std::ptr::fn_addr_eq(self.convert, other.convert)
    }
}

impl Eq for Migration {}

/// One step of a `from` chain: `A`'s value as `B`, by `TryFrom` (so by
/// `From` too). For generated code.
#[doc(hidden)]
pub fn convert<A, B>(value: A) -> Result<B, BoxError>
where
    B: TryFrom<A>,
    B::Error: Into<BoxError>,
{
    B::try_from(value).map_err(Into::into)
}

/// One step of a `from(A, with = f)` chain: `f(value)`. For generated
/// code.
#[doc(hidden)]
pub fn convert_with<A, B, E>(f: fn(A) -> Result<B, E>, value: A) -> Result<B, BoxError>
where
    E: Into<BoxError>,
{
    f(value).map_err(Into::into)
}

/// Where a decoded value came from (kept as its `u8` in a slot).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Origin {
    /// The stored bytes (or the default of an absent field).
    Stored,
    /// The fallback of stored bytes that did not decode.
    FellBack,
    /// Stored bytes of an earlier type, converted.
    Migrated,
}

impl Origin {
    /// The value is not what the stored bytes say as they are: a borrow
    /// that leaves it unchanged must still write nothing.
    pub(crate) fn is_not_stored(self) -> bool {
        self != Origin::Stored
    }
}

/// The field's value from `bytes` of an earlier type, encoded as the
/// field's type now: `None` when the field has no earlier types or none
/// decodes the bytes.
pub(crate) fn migrated_bytes(migration: Option<Migration>, bytes: &[u8]) -> Converted {
    migration.and_then(|m| (m.convert)(bytes))
}

impl SessionState {
    /// Field `index`'s value from stored `bytes` that did not decode as its
    /// type (`error`; `None`: they did not open): converted from an
    /// earlier type when one decodes them, else the fallback
    /// `on_decode_error` says, as for any undecodable field.
    pub(super) fn decode_stored<C: crate::codec::Codec, T: Storable>(
        &self,
        index: usize,
        bytes: Option<&[u8]>,
        error: BoxError,
        default: fn() -> T,
    ) -> Result<(T, Origin)> {
        let field = self.schema[index];
        // The codec's message may quote the stored value and a
        // conversion's is the app's own: logs and errors carry the codec
        // error's category and position only.
        let (error, what) = match bytes.and_then(|b| migrated_bytes(field.migrate, b)) {
            Some(Ok(converted)) => match T::decode_with::<C>(&converted) {
                Ok(value) => {
                    if field.migrate.is_some_and(|m| m.on_read) {
                        self.note_rewrite(index);
                    }
                    crate::observe::field_migrated(field.name);
                    return Ok((value, Origin::Migrated));
                }
                Err(error) => (
                    crate::observe::redacted(&*error),
                    "was converted from an earlier type that does not decode back",
                ),
            },
            Some(Err(_)) => (
                "the conversion refused the value".to_owned(),
                "is of an earlier type whose conversion failed",
            ),
            None => (crate::observe::redacted(&*error), "no longer decodes"),
        };
        let name = field.name;
        match self.request.manager().config().on_decode_error {
            OnDecodeError::Default => {
                tracing::warn!(
                    field = name,
                    error = %error,
                    "stored session field {what}; using its default \
                     (the stored bytes stay until the field is changed)"
                );
                crate::observe::decode_fallback();
                Ok((default(), Origin::FellBack))
            }
            OnDecodeError::Error => Err(Error::Decode {
                field: name,
                source: error.into(),
            }),
        }
    }

    /// Notes that field `index` was converted on read with
    /// `rewrite_on_read`: the flush writes it back if the request leaves
    /// it clean.
    fn note_rewrite(&self, index: usize) {
        super::note_once(&self.rewrite, index);
    }

    /// Whether the flush writes field `index` back in its new type (read
    /// converted, with `rewrite_on_read`, and not changed since).
    pub(super) fn rewrites(&self, index: usize) -> bool {
        self.schema[index].migrate.is_some_and(|m| m.on_read)
            && self
                .rewrite
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .contains(&index)
    }

    /// Whether a field read converted waits to be written back.
    pub(super) fn has_rewrites(&self) -> bool {
        self.schema
            .iter()
            .any(|f| f.migrate.is_some_and(|m| m.on_read))
            && !self
                .rewrite
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .is_empty()
    }
}
