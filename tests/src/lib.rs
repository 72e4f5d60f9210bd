//! The public-API snapshot from the other side: machinery that must stay
//! internal. Each block below must fail to compile; if one compiles, an
//! internal item became public API by accident (`cargo test` runs these
//! as doctests). Each names the path where the item really is (session-core
//! checks that they exist, in `lib.rs`'s `guarded_internals`), so a guard
//! cannot pass because its item moved. `tests/ui/pass/public-api.rs` names
//! what apps and store authors rely on.
//!
//! The clock (the crate's `now`, reachable only as the hidden
//! `session_core::now` the test suites use):
//!
//! ```compile_fail,E0603
//! use session_core::clock::now;
//! fn main() {}
//! ```
//!
//! The flush plan:
//!
//! ```compile_fail,E0603
//! use session_core::state::FlushPlan;
//! fn main() {}
//! ```
//!
//! The lifecycle enum:
//!
//! ```compile_fail,E0603
//! use session_core::state::Stage;
//! fn main() {}
//! ```
//!
//! The cleanup loop:
//!
//! ```compile_fail,E0603
//! use session_core::cleanup::run;
//! fn main() {}
//! ```
//!
//! The scheme registry:
//!
//! ```compile_fail,E0603
//! use session_core::open::SCHEMES;
//! fn main() {}
//! ```
//!
//! The table-prefix rule:
//!
//! ```compile_fail,E0603
//! use session_core::config::validate_prefix;
//! fn main() {}
//! ```
//!
//! A store's url opener:
//!
//! ```compile_fail,E0603
//! use session_rocket::store::memory::open_url;
//! fn main() {}
//! ```
//!
//! The sql driver contract:
//!
//! ```compile_fail,E0432
//! use session_rocket::store::sql::Stmt;
//! fn main() {}
//! ```
//!
//! The memory warning text:
//!
//! ```compile_fail,E0603
//! use session_core::open::MEMORY_WARNING;
//! fn main() {}
//! ```
//!
//! Planning a flush from a handler:
//!
//! ```compile_fail,E0624
//! fn f(s: &session_rocket::SessionState) { let _ = s.plan(|_| None); }
//! fn main() {}
//! ```
//!
//! The untouched check:
//!
//! ```compile_fail,E0624
//! fn f(s: &session_rocket::SessionState) { let _ = s.is_untouched(); }
//! fn main() {}
//! ```
//!
//! The cookie of a typed state:
//!
//! ```compile_fail,E0599
//! fn f(s: &mut session_rocket::SessionState) { let _ = s.take_cookie_action(); }
//! fn main() {}
//! ```
//!
//! The carrier seam (how a session rides in its cookie):
//!
//! ```compile_fail,E0603
//! use session_core::carrier::Carrier;
//! fn main() {}
//! ```
//!
//! The per-application context behind the manager:
//!
//! ```compile_fail,E0433
//! use session_core::context::Context;
//! fn main() {}
//! ```
//!
//! The stores' work counters (apps read `StoreStats`):
//!
//! ```compile_fail,E0603
//! use session_core::store::Counters;
//! fn main() {}
//! ```
//!
//! The benchmark's pool, from an app that depends on session-rocket alone:
//!
//! ```compile_fail,E0433
//! use session_rocket::store::__bench::ConnPool;
//! fn main() {}
//! ```
//!
//! The registry of URL schemes, from session-rocket:
//!
//! ```compile_fail,E0432
//! use session_rocket::store::open;
//! fn main() {}
//! ```
//!
//! The manager and a request's untyped session, from session-rocket:
//!
//! ```compile_fail,E0432
//! use session_rocket::SessionManager;
//! fn main() {}
//! ```
//!
//! ```compile_fail,E0432
//! use session_rocket::RequestSession;
//! fn main() {}
//! ```
//!
//! The manager behind the fairing's state:
//!
//! ```compile_fail,E0624
//! fn f(s: &session_rocket::SessionsState) { let _ = s.manager(); }
//! fn main() {}
//! ```
//!
//! A cookie mode asked of every store (gone: the carrier decides):
//!
//! ```compile_fail,E0599
//! fn f(s: &dyn session_rocket::store::SessionStore) { let _ = s.in_cookie(); }
//! fn main() {}
//! ```

/// The repository README's Rust examples, compiled and run as doctests
/// against session-rocket alone (as an app that depends on it alone sees
/// it).
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeExamples;

/// The crates.io README of session-rocket, likewise.
#[cfg(doctest)]
#[doc = include_str!("../../session-rocket/README.md")]
pub struct CrateReadmeExamples;
