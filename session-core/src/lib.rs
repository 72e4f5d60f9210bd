//! The model behind typed, lazy, field-level server-side sessions.
//!
//! This crate has no web framework and no proc-macro code in it; Rocket
//! applications use it through `session-rocket`, which re-exports what they
//! need. It holds:
//!
//! - [`schema`]: what `#[derive(Session)]` implements ([`SessionData`],
//!   [`SessionHandle`]);
//! - [`state`]: one request's session: lazy load, per-field decode, change
//!   markers, and the [`flush`] that writes only what changed;
//! - [`store`]: the field-level [`SessionStore`](store::SessionStore) trait and the
//!   stores: memory, MySQL, PostgreSQL, SQLite and Redis, each behind its
//!   cargo feature;
//! - [`carrier`]: how a session rides in its cookie: a token, a signed
//!   token, or (`url = "cookie"`) the whole session sealed;
//! - [`open`]: sessions opened from a configuration's `url`, for web
//!   integrations;
//! - [`events`]: lifecycle events (created, regenerated, destroyed,
//!   expired, conflict), each reported once, to the app's handlers;
//! - [`observe`]: the metrics and tracing spans operators see;
//! - [`token`]: 256-bit tokens and the SHA-256 keys stores see;
//! - [`codec`], [`config`], [`error`].
//!
//! # How a request flows
//! 1. [`SessionManager::open`] turns a cookie into a handle; no I/O.
//! 2. The first field read loads every non-deferred field in one store call
//!    and keeps raw bytes; only the field used is decoded. A request begun
//!    for a route ([`SessionManager::begin_for`]) loads first only the
//!    fields earlier requests of that route used, and the rest in one more
//!    call if a handler reads another ("loads learned per route").
//! 3. Writes flip a per-field marker; a blind `set_x` loads nothing.
//! 4. [`flush`] encodes the written fields, drops those whose bytes
//!    did not change, and hands the store exactly the rest.

#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]
// Helpers shared by the stores and the sealed carrier go unused when the
// features that use them are all off.
#![cfg_attr(
    not(all(feature = "memory", feature = "cookie")),
    allow(dead_code, unused_imports)
)]

pub mod carrier;
mod cleanup;
mod clock;
pub mod codec;
pub mod config;
mod context;
pub mod error;
pub mod events;
mod manager;
pub mod observe;
pub mod open;
pub mod schema;
pub mod schema_lock;
pub mod sealing;
pub mod signing;
pub mod state;
pub mod store;
pub mod token;

#[cfg(feature = "testing")]
pub mod testing;

#[doc(hidden)]
pub mod __private;

/// The internals that the compile-fail guards of the `session-tests` crate
/// (`tests/src/lib.rs`) expect to be unreachable from outside exist at the
/// paths they name: a guard on a path that moved would pass for the wrong
/// reason.
#[cfg(all(test, feature = "memory", feature = "sql"))]
#[allow(unused_imports)]
mod guarded_internals {
    use crate::carrier::Carrier;
    use crate::cleanup::run;
    use crate::clock::now;
    use crate::config::validate_prefix;
    use crate::context::Context;
    use crate::open::MEMORY_WARNING;
    use crate::open::SCHEMES;
    use crate::state::{FlushPlan, Stage};
    use crate::store::memory::open_url;
    use crate::store::Counters;
}

pub use async_trait::async_trait;
#[doc(hidden)]
pub use clock::now;
pub use config::Config;
pub use error::{BoxError, Error, Result};
pub use manager::SessionManager;
pub use schema::{flush, FieldDef, SessionData, SessionHandle};
pub use state::{DeviceInfo, RequestSession, SessionInfo, SessionState};
pub use token::{InvalidSessionId, SessionId, StoreKey, Token};
