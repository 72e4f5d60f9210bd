//! Typed, lazy, field-level server-side sessions for Rocket, stored in
//! MySQL (production), PostgreSQL, Redis, SQLite (embedded) or memory (tests).
//!
//! - **Typed**: `#[derive(Session)]` on a plain struct generates typed
//!   accessors per field. No string keys, no casts.
//! - **Lazy**: taking [`Session<T>`](struct@Session) costs nothing; the store is read the
//!   first time a handler reads a field, in one query, and a field's bytes
//!   are decoded only when that field is used.
//! - **Field-level**: only the fields whose bytes changed are written back,
//!   in one statement. A request that changed nothing writes nothing, and
//!   two concurrent requests that change different fields both keep their
//!   change.
//! - **Safe**: 256-bit tokens from the OS, stored only as SHA-256 hashes;
//!   `HttpOnly`, `SameSite=Lax` and `Secure` cookies by default;
//!   [`regenerate`](SessionState::regenerate) against session fixation;
//!   [`destroy`](Session::destroy) that no slower request can undo.
//!
//! # Quickstart
//!
//! 1. Depend on this crate alone (it re-exports the derive, the stores and
//!    the sqlx it uses):
//!
//!    ```toml
//!    [dependencies]
//!    rocket = "0.5"
//!    session-rocket = "0.1"          # features: mysql, sqlite, memory (default), postgres, redis
//!    serde = { version = "1", features = ["derive"] }
//!    ```
//!
//! 2. Choose a store in `Rocket.toml`:
//!
//!    ```toml
//!    [default.sessions]
//!    url = "sqlite://sessions.db"    # or "mysql://user:pass@host/db", or "memory"
//!    ```
//!
//! 3. Derive, attach, and use the guard:
//!
//! ```no_run
//! use rocket::response::Redirect;
//! use rocket::{get, post, routes};
//! use serde::{Deserialize, Serialize};
//! use session_rocket::{Session, SessionError, Sessions};
//!
//! #[derive(Serialize, Deserialize, Default, Clone)]
//! struct Item {
//!     sku: String,
//!     qty: u32,
//! }
//!
//! #[derive(Session)]
//! struct Shop {
//!     user_id: Option<u64>,
//!     cart: Vec<Item>,
//!     visits: u32,
//!     #[session(deferred)]          // large: loaded by its own query, only when used
//!     history: Vec<String>,
//!     #[session(rename = "lang")]   // stored under another name
//!     locale: String,
//! }
//!
//! #[get("/")]
//! async fn index(session: Session<Shop>) -> Result<String, SessionError> {
//!     let visits = *session.visits().await?;          // first use: one SELECT
//!     Ok(format!("{visits} visits"))
//! }
//!
//! #[post("/visit")]
//! async fn visit(mut session: Session<Shop>) -> Result<(), SessionError> {
//!     *session.visits_mut().await? += 1;              // only `visits` is written back
//!     Ok(())
//! }
//!
//! #[post("/login")]
//! fn login(mut session: Session<Shop>) -> Redirect {
//!     session.regenerate();                           // new id: no session fixation
//!     session.set_user_id(Some(42));                  // blind write: no SELECT needed
//!     Redirect::to("/")
//! }
//!
//! #[post("/logout")]
//! async fn logout(session: Session<Shop>) -> Result<Redirect, SessionError> {
//!     session.destroy().await?;                       // rows deleted, cookie removed
//!     Ok(Redirect::to("/"))
//! }
//!
//! #[rocket::launch]
//! fn rocket() -> _ {
//!     rocket::build()
//!         .attach(Sessions::fairing())                // reads [default.sessions]
//!         .mount("/", routes![index, visit, login, logout])
//! }
//! ```
//!
//! The derive's reference (attributes, generated methods, compile errors)
//! is on [`macro@Session`].
//!
//! # What a request costs
//!
//! | the handler… | statements |
//! |---|---|
//! | takes `Session<T>` and never uses it | 0 |
//! | reads any number of (non-deferred) fields | 1 (also for a cookie that names nothing) |
//! | changes one field of a loaded session | 2 (load + write) |
//! | writes blindly with `set_x` | 1 |
//! | logs in (new session with its fields) | 2 |
//! | regenerates and writes | 3 (move + the replaced token's record + write, one transaction) |
//! | destroys | 1 |
//! | first reads a deferred field | +1 |
//! | `update_x` of a `#[session(versioned)]` field | +1 per call (the write, at once; +1 reload per conflict) |
//! | writes a `#[session(index)]` field | +1 (its index entry, in the same transaction; +1 at login) |
//! | `sessions_by_x` / `destroy_other_sessions_by_x` | 1 + 1 per session listed / 1 |
//! | `destroy_session_by_x` ("sign out this device") | 2 (the list's query, the checked delete) |
//! | sets a `#[session(index, max_sessions = N)]` field | +1 (the value's sessions); past N, +1 per other session and +1 per session ended |
//!
//! With `encryption_keys`, the counts are the same, but for a regenerate of
//! a session not read in that request (+1: one field's query, for the keys
//! its values were sealed under) and a deferred field sealed before the
//! session's last login (+1 the first time).
//!
//! With `rotate_after`, a request whose token is not due costs the same.
//! The read that rotates costs what a read with `regenerate()` does (the
//! move in the same transaction as its writes); a request in flight with
//! the replaced token +2 (the replaced key's lookup, the load under the
//! new key); a cookie that names nothing 2 (its load, then the lookup that
//! tells a replayed token); with `encryption_keys` too, a blind write +1
//! (a load first) and a follower's write +1 (the session's keys); a first
//! read of a deferred field +1 (the session's load first).
//!
//! Once per `touch_after` seconds a request that loaded the session also
//! pushes its expiry forward (one more statement). [`Sessions::state`]
//! gives the store's [`stats`](store::SessionStore::stats).
//!
//! # Configuration
//!
//! Every option lives in the `sessions` table of Rocket's configuration, with
//! a safe default:
//!
//! | option | default | meaning |
//! |---|---|---|
//! | `url` | none | `mysql://…`, `postgres://…`, `redis://…`, `redis+cluster://a:6379,b:6379`, `sqlite://path.db` or `memory`; none means memory with a warning, and refusal outside the `debug` profile |
//! | `cookie_name` | `"session"` | cookie name; `"__Host-session"` is recommended on HTTPS (checked at launch: `secure`, `path = "/"`, no `domain`) |
//! | `ttl` | `86400` | idle timeout, seconds |
//! | `max_lifetime` | `2592000` | absolute lifetime, seconds |
//! | `touch_after` | `60` | expiry is pushed forward at most once per this many seconds; less than `ttl` |
//! | `rolling` | `false` | send the cookie on every response that used the session |
//! | `secure` | `true` | `Secure` cookie (browsers accept it on `http://localhost`) |
//! | `same_site` | `"lax"` | `"strict"`, `"lax"` or `"none"` (needs `secure`) |
//! | `domain` | none | cookie `Domain` |
//! | `path` | `"/"` | cookie `Path` |
//! | `persistent` | `true` | `Max-Age` follows the expiry; `false` = browser-session cookie |
//! | `create_tables` | `true` | create missing tables at launch |
//! | `table_prefix` | `""` | table names `{prefix}sessions`, `{prefix}session_fields`, `{prefix}session_index`, `{prefix}session_previous` |
//! | `cleanup_interval` | `300` | seconds between expired-session cleanups; `0` = off |
//! | `cleanup_batch` | `500` | sessions deleted per cleanup statement |
//! | `rotate_after` | none | seconds a token is used before the session moves to a fresh one (the first request that reads it after that sets the new cookie); a replaced token presented after `rotation_grace` ends the session for every holder. Not with `cookie` sessions nor on Redis Cluster |
//! | `rotation_grace` | `10` | seconds a replaced token still works for requests in flight (1 to 300, less than `rotate_after`) |
//! | `max_field_bytes` | `65536` | largest encoded field (≤ 16 MiB − 1) |
//! | `max_session_bytes` | `1048576` | largest session |
//! | `on_decode_error` | `"default"` | a field that no longer decodes: `"default"` (warn, use the default; its stored bytes stay until the handler really changes the value, and overwriting them is logged) or `"error"` (a 500) |
//! | `max_connections` | `10` | SQL pool size |
//! | `connect_timeout` | `5` | seconds to wait for a connection before answering 503 |
//! | `statement_timeout` | `5` | seconds a statement may take before answering 503; `0` = no limit |
//! | `slow_store_call_ms` | `1000` | a store call slower than this is logged at warn level; `0` = never |
//! | `skip_on_server_error` | `true` | persist nothing for a 5xx answer; a 4xx the handler returns itself (a `409`, a `403`) persists its changes (return a 5xx or skip the writes if that is not wanted); what the handler stored itself (`update_x`, `save()`, `destroy()`) stays stored |
//! | `causal_reads` | `true` | on a Galera node (detected at connect), every store statement first waits for writes committed on other nodes (`wsrep_sync_wait = 7`) |
//! | `memory_max_sessions` | `100000` | memory store cap: dead sessions go first, then new ones get a 503; live ones are never evicted |
//! | `device_info` | `false` | keep each new session's user agent and coarse address (IPv4 /24, IPv6 /48; `client_ip()`, so Rocket's `ip_header` behind a proxy) for a devices page (`SessionInfo::device`); stores with indexes |
//! | `signing_keys` | `[]` | HMAC-SHA256 keys (base64, at least 32 bytes) signing the cookie: the first signs, all verify; an unsigned or forged cookie is no cookie and costs no statement |
//! | `sign_with_secret_key` | `false` | sign the cookie with a key derived from Rocket's `secret_key` instead of `signing_keys` (refused without a `secret_key`) |
//! | `encryption_keys` | `[]` | AES-256-GCM keys (base64, exactly 32 bytes) sealing every stored value: the first seals, all open; a value that does not open falls back like an undecodable field |
//!
//! The same settings from the environment:
//! `ROCKET_SESSIONS='{url="mysql://root@db/app",ttl=3600}'`, or one per
//! variable, `ROCKET_SESSIONS_TTL=3600`. Unknown keys refuse launch, so a
//! typo never silently falls back to a default.
//!
//! # Errors and status codes
//!
//! Accessors return [`Result`], whose error is a [`SessionError`]: `?`
//! passes it on, and it is a [`Responder`](rocket::response::Responder):
//! a store outage is a `503 Service Unavailable`, a lost race (a
//! versioned field changed meanwhile) a `409 Conflict`, anything else a `500`,
//! and the cause is logged with its source chain. When the fairing's own
//! write fails after the handler answered, the response is replaced by a
//! 503 or 500: a client is never told a change worked when it did not.
//! When a concurrent request ended the session while this one ran (a logout
//! in another tab, an expiry, a login that replaced the token) and this
//! request's changes were dropped, the response becomes a `409 Conflict`.
//! A `Session<T>` kept past its handler (moved into a spawned task) turns
//! the response into a 500. Handlers that must know use [`Session::save`].
//! Bad input never fails a request: a malformed, oversized, forged or
//! expired cookie starts a fresh session (and a fresh id: an unknown token
//! is never adopted), and a write under it is stored there.
//!
//! # Stores
//!
//! | store | `url` | for |
//! |---|---|---|
//! | MySQL / MariaDB | `mysql://user:pass@host:3306/db` | production; several app instances |
//! | PostgreSQL (feature `postgres`) | `postgres://user@host:5432/db` | production on PostgreSQL; the MySQL layout and statement counts |
//! | Redis (feature `redis`) | `redis://host:6379/0`; a Redis Cluster: `redis+cluster://a:6379,b:6379` | production on Redis: one hash per session, each check-and-write one Lua script (on a cluster, what spans slots in single-slot steps) |
//! | SQLite | `sqlite://path/sessions.db` | one instance, no server; the example's default |
//! | memory | `memory` | tests and development |
//! | cookie (feature `cookie`) | `cookie` | no server-side store: the whole session sealed (AES-256-GCM) in its cookie, ≤ 4 KB; no revocation, no index or versioned fields |
//!
//! Every server-side store passes the same behaviour suite against its real
//! server; sessions kept in cookies pass the part of it that holds without
//! a server (the checks of whole requests), and their limits are stated
//! under "The cookie store" in the README.
//! The SQL stores share one layout: `sessions` (one row per session, keyed
//! by the SHA-256 of the token, with `created_at`, an indexed `expires_at`
//! and a JSON document of the session's small fields, so a read is one
//! lookup in one table) and `session_fields` (a row per field too large for
//! the document or versioned, cascading on delete). The DDL ships as `session-core/src/store/mysql/schema.sql` and
//! `…/sqlite/schema.sql` for users without the CREATE privilege
//! (`create_tables = false`). A store built in code is attached with
//! [`Sessions::with_store`]; a pool the app already has, with
//! [`Sessions::with_mysql_pool`] / [`Sessions::with_sqlite_pool`].
//!
//! ## Which sqlx
//!
//! This crate is on **sqlx 0.8**, re-exported as [`sqlx`] so a
//! pool you share has the matching version. 0.8 is what most of the
//! ecosystem runs (tower-sessions' stores, SeaORM 1.x), so a pool can be
//! shared with them. `rocket_db_pools` 0.2 is built on sqlx 0.7, whose MySQL
//! and SQLite drivers are affected by RUSTSEC-2024-0363; a `rocket_db_pools`
//! pool therefore cannot be handed to this crate. Give the sessions their
//! own connections with `url` (the usual choice: sessions then never wait
//! behind the app's long queries, and the store's own pool sends nothing but
//! its statements, where sqlx 0.8's pool pings every connection it gets
//! back), or build the app's pool with `session_rocket::sqlx` and share it:
//!
//! ```no_run
//! # #[cfg(feature = "mysql")] mod _inner {
//! use session_rocket::{sqlx::mysql::MySqlPoolOptions, Sessions};
//!
//! #[rocket::launch]
//! async fn rocket() -> _ {
//!     let pool = MySqlPoolOptions::new()
//!         .test_before_acquire(false)
//!         .connect_lazy("mysql://root@127.0.0.1/app")
//!         .expect("valid url");
//!     rocket::build()
//!         .manage(pool.clone())
//!         .attach(Sessions::with_mysql_pool(pool))
//! }
//! # }
//! ```
//!
//! # Guards built on the session
//!
//! Several guards of the same session type in one request share one state,
//! so the store is read at most once:
//!
//! ```
//! use rocket::http::Status;
//! use rocket::request::{FromRequest, Outcome, Request};
//! use session_rocket::Session;
//!
//! # #[derive(Session)]
//! # struct Shop { user_id: Option<u64> }
//! struct User(u64);
//!
//! #[rocket::async_trait]
//! impl<'r> FromRequest<'r> for User {
//!     type Error = ();
//!
//!     async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
//!         let Outcome::Success(session) = req.guard::<Session<Shop>>().await else {
//!             return Outcome::Error((Status::InternalServerError, ()));
//!         };
//!         match session.user_id().await {
//!             Ok(Some(id)) => Outcome::Success(User(*id)),
//!             Ok(None) => Outcome::Forward(Status::Unauthorized),
//!             Err(_) => Outcome::Error((Status::ServiceUnavailable, ())),
//!         }
//!     } // the session guard drops here; the handler may take its own
//! }
//! ```
//!
//! # Security model
//!
//! A session token is 256 bits from the operating system's random source,
//! sent only in an `HttpOnly` cookie (`Secure` and `SameSite=Lax` by
//! default). Stores see only its SHA-256, so a leaked table or backup holds
//! no usable token. Tokens are never chosen by the client: a cookie that
//! names no live session is ignored and a new token is issued when
//! something is stored; several cookies of the session's name with
//! different values (one may come from a sibling subdomain) are all
//! ignored; use a `__Host-` name so no other host can set one. Call
//! [`regenerate`](SessionState::regenerate) on login and privilege changes
//! (the move and the request's writes are one transaction; a logout sent
//! with the replaced token within 60 s still ends the session);
//! [`destroy`](Session::destroy) deletes the session server-side, and the
//! store refuses later writes to it, so a slower concurrent request cannot
//! log the user back in. Only the request that destroyed a session removes
//! the cookie. Expiry (idle and absolute) is enforced in every read and
//! write, not only by cleanup, and [`set_expiry`](SessionState::set_expiry)
//! gives a session its own idle timeout that later requests keep.
//!
//! # Writing your own store
//!
//! A store is a type implementing [`store::SessionStore`]: a small,
//! field-level, object-safe trait (load, load one field, create, save with
//! an optional regenerate, destroy, delete the expired), with indexes as an
//! optional capability ([`store::SessionIndexes`]). Everything a store
//! author needs is in [`store`]; session-core's store docs have a complete
//! store as a compiled example, and its `store_conformance_tests!` (feature
//! `testing`) runs the behaviour suite every store here passes against
//! yours. A store that a `url` names is one module plus one row in
//! session-core's registry of schemes; this crate never names a store.
//! Attach one built in code with [`Sessions::with_store`]:
//!
//! ```
//! use session_rocket::{store::memory::MemoryStore, Sessions};
//!
//! let rocket = rocket::build().attach(Sessions::with_store(MemoryStore::with_capacity(10_000)));
//! ```
//!
//! # Operating: metrics, traces, events
//!
//! The library emits metrics through the `metrics` facade (names in
//! [`metrics`](mod@metrics); the app installs the exporter), a debug-level
//! `session.store` span per store call, and, to the handlers registered
//! with [`Sessions::on_event`], one [`SessionEvent`](events::SessionEvent)
//! per lifecycle change: created, regenerated, destroyed, expired (found by
//! cleanup, reported once across instances), conflict. None of it carries
//! a token, a key or a value; sessions are named by their [`SessionId`].
//! The README's "Operating" section lists every metric and event.
//!
//! # Several session types
//!
//! `Session<Shop>` and `Session<Prefs>` on one request are views of one
//! session: one token, one cookie, and both types' changes are kept. A
//! stored name that two types share is one field.

#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod config;
mod cookie;
#[doc = include_str!("../docs/recipes.md")]
pub mod recipes {}
mod error;
mod fairing;
mod guard;
#[cfg(any(feature = "mysql", feature = "sqlite", feature = "postgres"))]
mod pools;
mod source;
mod state;
pub mod store;

pub use error::SessionError;
pub use fairing::Sessions;
pub use guard::Session;
pub use state::SessionsState;

#[doc = include_str!("../docs/derive.md")]
pub use session_derive::Session;

pub use session_core::{codec, Config, DeviceInfo, SessionId, SessionInfo, SessionState, Token};

/// Lifecycle events: what [`Sessions::on_event`] handlers receive (see
/// [`session_core::events`] for where each comes from and how it is
/// delivered).
pub mod events {
    pub use session_core::events::{DestroyCause, EventKind, IndexedValue, SessionEvent};
}

/// The names of the metrics this crate emits through the `metrics` facade
/// (the app installs the exporter; see the README's "Operating" section).
pub mod metrics {
    pub use session_core::observe::*;
}

/// The schema lock (feature `schema-lock`, for dev-dependencies): a test
/// that fails before a deploy that would leave stored sessions unreadable.
///
/// ```no_run
/// # use session_rocket::Session;
/// # #[derive(Session)]
/// # struct Shop { user: Option<u64> }
/// // tests/sessions.rs of the app; `sessions.lock` is committed.
/// #[test]
/// fn stored_sessions_still_read() {
///     session_rocket::schema_lock::assert_locked::<Shop>("sessions.lock");
/// }
/// ```
///
/// A field whose type changed shape fails with the attribute to add,
/// `#[session(from = OldType)]`; a stored name no field reads any more
/// with `#[session(alias = "old")]`. After a deliberate change, rerun
/// with `SESSION_LOCK=update` and commit the diff. See
/// [`session_core::schema_lock`] for what a shape records.
#[cfg(feature = "schema-lock")]
pub mod schema_lock {
    pub use session_core::schema_lock::{assert_locked, check, update, LockError};
}

/// The error of this crate, [`SessionError`], under the name `?`-heavy code
/// expects: what the generated accessors return, a
/// [`Responder`](rocket::response::Responder), and convertible into
/// [`Status`](rocket::http::Status).
pub type Error = SessionError;

/// `Result` with [`SessionError`] as the default error: what the generated
/// accessors return, and what a handler can return.
pub type Result<T, E = SessionError> = std::result::Result<T, E>;

/// The sqlx this crate is built on, so a pool you share with
/// [`Sessions::with_mysql_pool`] has the matching version.
#[cfg(any(feature = "mysql", feature = "sqlite", feature = "postgres"))]
pub use sqlx;

/// The internals that the compile-fail guards of the `session-tests` crate
/// (`tests/src/lib.rs`) expect to be unreachable from outside exist as
/// they name them: a guard on a path that moved would pass for the wrong
/// reason.
#[cfg(test)]
mod guarded_internals {
    #[allow(dead_code)]
    fn manager(state: &crate::SessionsState) -> &session_core::SessionManager {
        state.manager()
    }
}

/// What `#[derive(Session)]` output names. Not public API.
#[doc(hidden)]
pub mod __private {
    pub use session_core::__private::*;

    /// The accessors' result in a Rocket app: [`SessionError`](crate::SessionError),
    /// so `?` works in handlers returning it, `Status` or anything it converts into.
    pub type Result<T, E = crate::SessionError> = core::result::Result<T, E>;

    /// Lifts the runtime's error into [`SessionError`](crate::SessionError).
    #[inline]
    pub fn lift<T>(result: session_core::Result<T>) -> Result<T> {
        result.map_err(crate::SessionError::from)
    }
}
