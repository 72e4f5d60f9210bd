// The public API, listed in one place: every name an app, a store author
// or a web integration uses. Removing or renaming any of it fails this
// file; anything public that is not here is not meant to be (the
// compile-fail guards in `tests/src/lib.rs` check the internals).
#![allow(unused_imports, dead_code)]

// ---- An app: it depends on session-rocket alone. ----
use session_rocket::codec::{Codec, JsonCodec};
use session_rocket::config::{extract, EncryptionKey, OnDecodeError, SameSite, SigningKey};
use session_rocket::{
    Config, Error, Result, Session, SessionError, SessionInfo, SessionState, Sessions,
    SessionsState, Token,
};

// ---- An app's tests: the schema lock (feature `schema-lock`). ----
use session_rocket::schema_lock::{assert_locked, check, update, LockError};

// ---- A store author (or an app building a store in code). ----
use session_rocket::store::memory::{MemoryStore, DEFAULT_CAPACITY};
use session_rocket::store::{
    async_trait, BoxError, Changes, Expect, ExpiryUpdate, IndexTag, IndexUpdate, NewSession,
    PreviousKey, Record, Rename, Replaced, Saved, SessionIndexes, SessionStore, StoreKey,
    StoreStats, Timestamp, Validity, LIFETIME_PREFIX, PREVIOUS_KEY_GRACE,
};

// ---- A web integration for another framework: session-core. ----
use session_core::carrier::COOKIE_LIMIT;
use session_core::open::{needs_encryption_key, open, redact, Opened, Profile};
use session_core::state::{CookieAction, Outcome};
use session_core::schema::{Converted, Migration};
use session_core::{flush, FieldDef, RequestSession, SessionData, SessionHandle, SessionManager};

#[derive(Session)]
struct Shop {
    user: Option<u64>,
}

/// An app's handler.
#[rocket::get("/")]
async fn index(mut session: Session<Shop>) -> Result<String> {
    let user = *session.user().await?;
    session.set_user(user.or(Some(1)));
    let _: &SessionState = &session;
    Ok(format!("{user:?}"))
}

/// An app's view of a conflict.
fn is_conflict(error: &SessionError) -> bool {
    matches!(error, SessionError::Session(e) if e.is_conflict())
        && error.status() == rocket::http::Status::Conflict
}

/// An app's view of a session too large for its cookie.
fn too_large(error: &session_rocket::store::Error) -> Option<usize> {
    match error {
        session_rocket::store::Error::CookieTooLarge { size, limit } if *limit == COOKIE_LIMIT => {
            Some(*size)
        }
        _ => None,
    }
}

/// A store author's view of versioned writes.
fn outcome(saved: Saved, changes: &Changes) -> Option<u64> {
    match saved {
        Saved::Conflict => None,
        Saved::Saved | Saved::Gone | Saved::Moved => changes.expect.first().map(Expect::next),
    }
}

/// A store author's view of replaced keys and field lifetimes.
fn followed(previous: Option<PreviousKey>, record: &mut Record, now: Timestamp) -> bool {
    record.drop_expired(now);
    let _ = LIFETIME_PREFIX;
    previous.is_some_and(|p| p.within_grace && p.reason == Replaced::Rotated)
}

/// A store author's view of index entries.
fn index_entries(changes: &Changes) -> Vec<(&'static str, Option<IndexTag>)> {
    changes.index.iter().map(|u: &IndexUpdate| (u.name, u.tag)).collect()
}

/// An operator's view of the store's work.
fn retried(state: &SessionsState) -> u64 {
    let Some(store) = state.store() else { return 0 };
    let StoreStats { statements, retries, .. } = store.stats();
    retries.min(statements) + u64::from(store.indexes().is_some())
}

/// A web integration: a request's session, flushed, and its cookie.
async fn integrate<T: SessionData>(manager: &SessionManager, cookie: Option<&str>) -> bool {
    if manager.supports::<T>().is_err() {
        return false;
    }
    let request: RequestSession = manager.begin(cookie);
    let mut handle = request.open::<T>();
    let _: Option<Outcome> = flush(&mut handle).await.ok();
    let _: &[FieldDef] = T::FIELDS;
    let _: Option<Migration> = T::FIELDS.first().and_then(|f| f.migrate);
    let _: Option<fn(&[u8]) -> Converted> = T::FIELDS.first().and_then(|f| f.migrate).map(|m| m.convert);
    matches!(request.take_cookie_action(), Some(CookieAction::Set { .. }) | None)
}

async fn integrate_open(config: &Config) -> Option<SessionManager> {
    let _ = (needs_encryption_key(config), redact("mysql://u:p@h/d"));
    let opened: Opened = open(config, Profile::Development).await.ok()?;
    let _ = (opened.kind, opened.location, opened.warning);
    let _ = SessionManager::in_cookies(config.clone());
    Some(opened.manager)
}

/// An app's test of its sessions' schema (never called here: it writes a
/// file).
fn locked() -> Result<(), LockError> {
    assert_locked::<Shop>("sessions.lock");
    update::<Shop>("sessions.lock")?;
    let problems: usize = check::<Shop>("sessions.lock").err().map_or(0, |e| e.problems().len());
    let _ = problems;
    Ok(())
}

fn main() {
    let _ = Config::default().causal_reads;
    let _: fn(MemoryStore) -> Sessions = Sessions::with_store;
    let _ = Sessions::fairing();
    let _ = session_rocket::Result::<()>::Ok(());
    let _ = (DEFAULT_CAPACITY, PREVIOUS_KEY_GRACE);
    let _ = rocket::routes![index];
}
