//! Typed, lazy, field-level server-side sessions for Rocket (work in progress).

#![deny(missing_docs)]

#[doc(hidden)]
pub use session_core::__private;
pub use session_derive::Session;
