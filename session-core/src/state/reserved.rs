//! The fields the library keeps in a session beside the application's
//! own, under names no field can take (field names are made of
//! `[A-Za-z0-9_.-]`; these start with `@`), and which of them are stored in
//! the clear: values a store or another session's request must read, like
//! the session's own timestamps.

use crate::store::LIFETIME_PREFIX;

/// When the session took its current value of a `max_sessions` index
/// (Unix microseconds, as text): who is oldest.
pub(crate) const SINCE: &str = "@since";

/// When the session's token was issued (seconds), written by a regenerate
/// or rotation when `rotate_after` is set; a session without it was issued
/// its token at creation.
pub(crate) const ISSUED: &str = "@issued";

/// The id a rotated session is listed by (32 hex digits): the id of its
/// key before its first rotation, so that a devices page's "sign out this
/// device" still finds it after the rotations since the page was shown.
pub(crate) const LISTED_ID: &str = "@id";

/// Whether the reserved field `name` is stored in the clear, never sealed
/// under `encryption_keys`: the times and ids above, and each field's
/// lifetime ([`LIFETIME_PREFIX`]), which stores read.
pub(crate) fn in_clear(name: &str) -> bool {
    matches!(name, SINCE | ISSUED | LISTED_ID) || name.starts_with(LIFETIME_PREFIX)
}
