// What apps and store authors rely on, named once: removing or renaming any
// of it fails this file.
#![allow(unused_imports, dead_code)]

use session_core::store::cookie::{CookieStore, COOKIE_LIMIT};
use session_core::store::memory::{MemoryStore, DEFAULT_CAPACITY};
use session_core::store::open::{open, redact, Opened, Profile};
use session_core::store::{
    Changes, Counters, Expect, ExpiryUpdate, IndexTag, IndexUpdate, NewSession, Record, Rename,
    Saved, SessionStore, StoreStats, Timestamp, Validity, PREVIOUS_KEY_GRACE,
};
use session_core::sealing::{derive_encryption_key, EncryptionKey};
use session_core::signing::SigningKey;
use session_core::{
    flush, BoxError, Config, Error, FieldDef, RequestSession, Result, SessionData, SessionHandle,
    SessionInfo, SessionManager, SessionState, StoreKey, Token,
};
use session_rocket::codec::{Codec, JsonCodec};
use session_rocket::config::extract;
use session_core::state::{CookieAction, Outcome};
use session_rocket::{OnDecodeError, SameSite, Session, SessionError, Sessions, SessionsState};

/// A store author's view of versioned writes.
fn outcome(saved: Saved, changes: &Changes) -> Option<u64> {
    match saved {
        Saved::Conflict => None,
        Saved::Saved | Saved::Gone | Saved::Moved => changes.expect.first().map(Expect::next),
    }
}

/// A store author's view of index entries.
fn index_entries(changes: &Changes) -> Vec<(&'static str, Option<IndexTag>)> {
    changes.index.iter().map(|u: &IndexUpdate| (u.name, u.tag)).collect()
}

/// An app's view of a conflict.
fn is_conflict(error: &Error) -> bool {
    matches!(error, Error::Conflict { field: _ }) && error.is_conflict()
}

/// An app's view of a session too large for its cookie.
fn too_large(error: &Error) -> Option<usize> {
    match error {
        Error::CookieTooLarge { size, limit } if *limit == COOKIE_LIMIT => Some(*size),
        _ => None,
    }
}

/// An operator's view of the store's work, conflicts included.
fn retried(store: &dyn SessionStore) -> u64 {
    let StoreStats { statements, retries, .. } = store.stats();
    retries.min(statements)
}

/// Whether a session type fits the configured store (the cookie store
/// refuses index and versioned fields).
fn fits<T: SessionData>(manager: &SessionManager) -> bool {
    manager.supports::<T>().is_ok()
}

fn main() {
    let _ = CookieStore::new().in_cookie();
    let _ = Config::default().causal_reads;
    let _: fn(MemoryStore) -> Sessions = Sessions::with_store;
    let _ = Sessions::fairing();
    let _ = session_rocket::Result::<()>::Ok(());
}
