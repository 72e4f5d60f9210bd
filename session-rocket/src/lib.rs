//! Typed, lazy, field-level server-side sessions for Rocket (manual below).

#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod config;
mod cookie;
mod error;
mod fairing;
mod guard;

pub use error::SessionError;
pub use fairing::{Sessions, SessionsState, MEMORY_WARNING};
pub use guard::Session;

#[doc(hidden)]
pub use session_core::__private;
pub use session_derive::Session;

pub use session_core::config::{OnDecodeError, SameSite};
pub use session_core::{codec, store, Config, SessionManager, SessionState, StoreKey};

/// The sqlx this crate is built on, so a pool you share with
/// [`Sessions::with_mysql_pool`] has the matching version.
#[cfg(any(feature = "mysql", feature = "sqlite"))]
pub use sqlx;

/// `Result` with [`SessionError`] as the default error.
pub type Result<T, E = SessionError> = std::result::Result<T, E>;
