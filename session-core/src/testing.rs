//! The store behaviour suite, written once and run against every store.
//!
//! Each check is a plain async function taking a fresh store; the
//! [`store_conformance_tests!`](crate::store_conformance_tests) macro turns
//! them into `#[tokio::test]`s for one store factory:
//!
//! ```ignore
//! async fn store() -> std::sync::Arc<dyn SessionStore> { /* a fresh, isolated store */ }
//! session_core::store_conformance_tests!(store);
//! ```
//!
//! The suite checks the store contract directly (expiry, no resurrection,
//! concurrent saves) and through a real session type, [`Cart`], counting the
//! statements each kind of request costs.

use std::sync::Arc;

use crate::clock::now;
use crate::config::Config;
use crate::manager::SessionManager;
use crate::schema::flush;
use crate::state::{CookieAction, Outcome};
use crate::store::{
    Changes, Expect, ExpiryUpdate, NewSession, Record, Rename, Saved, SessionStore, Validity,
    PREVIOUS_KEY_GRACE,
};
use crate::token::{StoreKey, Token};

/// The session type the suite runs through, made by the real
/// `#[derive(Session)]`: `user: Option<u64>`, `cart: Vec<String>`,
/// `visits: u32`, and a deferred `history: Vec<String>`.
#[derive(Debug, session_derive::Session)]
#[session(crate = "crate")]
pub struct Cart {
    /// The logged-in user.
    pub user: Option<u64>,
    /// Items.
    pub cart: Vec<String>,
    /// A counter.
    pub visits: u32,
    /// A large field, loaded only when used.
    #[session(deferred)]
    pub history: Vec<String>,
}

/// A second session type, used with [`Cart`] on one request: `theme` of
/// its own and `visits`, the same stored field as `Cart`'s.
#[derive(Debug, session_derive::Session)]
#[session(crate = "crate")]
pub struct Prefs {
    /// A preference of its own.
    pub theme: String,
    /// The same stored field as [`Cart::visits`].
    pub visits: u32,
}

/// The handle of [`Cart`].
pub type CartHandle = CartSession;

/// A session type with a versioned field: `#[session(versioned)] hits:
/// u64` and a plain `note: String`.
#[derive(Debug, session_derive::Session)]
#[session(crate = "crate")]
pub struct Counter {
    /// Changed by concurrent requests: compare-and-set.
    #[session(versioned)]
    pub hits: u64,
    /// A plain field written in the same requests.
    pub note: String,
}

/// A session type with an indexed field: `#[session(index)] user_id: u64`
/// and a plain `device: String`.
#[derive(Debug, session_derive::Session)]
#[session(crate = "crate")]
pub struct Account {
    /// Whose session this is: searchable across sessions.
    #[session(index)]
    pub user_id: u64,
    /// What a "your devices" page shows.
    pub device: String,
    /// Indexed and versioned: written by `update_team`.
    #[session(index, versioned)]
    pub team: u64,
}

/// Runs every conformance check against stores from `$factory`, an async
/// function returning a fresh, isolated store. With a second argument, an
/// async function taking `&Store`, that function tears the store down after
/// each passing check (a failing one leaves its data for inspection).
#[macro_export]
macro_rules! store_conformance_tests {
    ($factory:path) => {
        $crate::store_conformance_tests!($factory, $crate::testing::no_teardown);
    };
    ($factory:path, $teardown:path) => {
        $crate::store_conformance_tests!(@tests $factory, $teardown;
            create_then_load,
            load_skips_deferred_fields,
            create_refuses_a_taken_key,
            save_changes_only_named_fields,
            save_never_resurrects,
            remove_deletes_fields,
            expired_sessions_are_never_returned,
            rename_moves_data,
            rename_is_all_or_nothing,
            previous_key_reaches_the_session_for_destroy_only,
            every_key_replaced_within_the_grace_reaches_the_session,
            touch_never_shortens,
            expiry_updates_never_revive_a_dead_session,
            max_lifetime_bounds_writes_and_deferred_reads,
            expiry_is_capped_by_creation,
            cleanup_honours_max_lifetime,
            delete_expired_in_batches,
            concurrent_saves_of_different_fields_all_land,
            concurrent_adds_of_the_same_field_do_not_fail,
            binary_values_round_trip,
            statement_counts_per_request_kind,
            regenerate_keeps_data_and_kills_old_token,
            destroy_wins_over_a_slower_request,
            concurrent_sessions_lose_no_update,
            writes_racing_a_destroy_never_resurrect,
            concurrent_touches_and_writes_of_one_session_all_succeed,
            blind_write_to_a_dead_cookie_starts_a_fresh_session,
            undecodable_field_keeps_its_bytes_until_changed,
            requests_racing_a_regenerate,
            a_session_keeps_its_own_expiry,
            two_session_types_share_one_session,
            writes_after_an_interrupted_flush_report_it,
            an_update_of_fields_that_went_meanwhile_is_never_lost,
            versioned_writes_need_the_expected_version,
            concurrent_compare_and_set_increments_all_land,
            concurrent_updates_of_a_versioned_field_lose_nothing,
            plain_writes_of_a_versioned_field_conflict,
            encrypted_values_open_only_where_they_were_sealed,
            encryption_keys_rotate_and_survive_regenerates,
            log_out_everywhere_ends_a_users_other_sessions,
            indexed_fields_follow_their_writes,
        );
    };
    (@tests $factory:path, $teardown:path; $($name:ident,)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let store = ::std::sync::Arc::new($factory().await);
                $crate::testing::$name(store.clone()).await;
                $teardown(&*store).await;
            }
        )*
    };
}

/// A table prefix (or file name) no other test uses: `tag`, then ten
/// random characters, then `_`.
pub fn unique_prefix(tag: &str) -> String {
    let random = Token::generate().unwrap().to_cookie_value()[..10]
        .to_ascii_lowercase()
        .replace(['-', '_'], "x");
    format!("{tag}{random}_")
}

/// The teardown of stores that need none.
pub async fn no_teardown<S>(_: &S) {}

fn at() -> Validity {
    let now = now();
    Validity {
        now,
        created_after: now - 1_000_000,
    }
}

fn v(now: i64) -> Validity {
    Validity {
        now,
        created_after: now - 1_000_000,
    }
}

fn ns(created_at: i64, expires_at: i64) -> NewSession {
    NewSession {
        created_at,
        expires_at,
        idle_timeout: 3600,
        persistent: None,
    }
}

fn rename_to(to: StoreKey) -> Changes {
    Changes {
        rename: Some(Rename {
            to,
            previous_until: now() + PREVIOUS_KEY_GRACE,
        }),
        ..Changes::default()
    }
}

fn key() -> StoreKey {
    Token::generate().unwrap().store_key()
}

fn field<'a>(fields: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a [u8]> {
    fields
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_slice())
}

async fn make(store: &dyn SessionStore, fields: &[(&'static str, Vec<u8>)]) -> StoreKey {
    let key = key();
    let t = now();
    assert!(store.create(&key, ns(t, t + 3600), fields).await.unwrap());
    key
}

fn manager(store: Arc<dyn SessionStore>) -> SessionManager {
    SessionManager::new(store, Config::default()).unwrap()
}

/// A created session loads with all its fields and timestamps.
pub async fn create_then_load(store: Arc<dyn SessionStore>) {
    let t = now();
    let key = key();
    assert!(store
        .create(
            &key,
            ns(t, t + 60),
            &[("a", b"1".to_vec()), ("b", b"22".to_vec())]
        )
        .await
        .unwrap());
    let record = store
        .load(&key, &[], at())
        .await
        .unwrap()
        .expect("created session loads");
    assert_eq!(record.created_at, t);
    assert_eq!(record.expires_at, t + 60);
    assert_eq!(field(&record.fields, "a"), Some(&b"1"[..]));
    assert_eq!(field(&record.fields, "b"), Some(&b"22"[..]));
    assert_eq!(record.fields.len(), 2);
    assert!(
        store.load(&self::key(), &[], at()).await.unwrap().is_none(),
        "unknown key is None"
    );
}

/// `load` skips the named (deferred) fields; `load_field` fetches one.
pub async fn load_skips_deferred_fields(store: Arc<dyn SessionStore>) {
    let key = make(
        &*store,
        &[
            ("a", b"1".to_vec()),
            ("big", b"[1,2]".to_vec()),
            ("c", b"3".to_vec()),
        ],
    )
    .await;
    let record = store
        .load(&key, &["big", "c"], at())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.fields, vec![("a".to_string(), b"1".to_vec())]);
    assert_eq!(
        store
            .load_field(&key, "big", at())
            .await
            .unwrap()
            .as_deref(),
        Some(&b"[1,2]"[..])
    );
    assert_eq!(store.load_field(&key, "missing", at()).await.unwrap(), None);
    // a session with only deferred fields still loads (with no fields)
    let key2 = make(&*store, &[("big", b"1".to_vec())]).await;
    let record = store
        .load(&key2, &["big"], at())
        .await
        .unwrap()
        .expect("session exists");
    assert!(record.fields.is_empty());
}

/// `create` never overwrites: a taken key reports `false` and keeps its data.
pub async fn create_refuses_a_taken_key(store: Arc<dyn SessionStore>) {
    let key = make(&*store, &[("a", b"1".to_vec())]).await;
    let t = now();
    assert!(!store
        .create(&key, ns(t, t + 60), &[("a", b"2".to_vec())])
        .await
        .unwrap());
    let record = store.load(&key, &[], at()).await.unwrap().unwrap();
    assert_eq!(field(&record.fields, "a"), Some(&b"1"[..]));
}

/// `save` writes the named fields and leaves the others as they were.
pub async fn save_changes_only_named_fields(store: Arc<dyn SessionStore>) {
    let key = make(&*store, &[("a", b"1".to_vec()), ("b", b"2".to_vec())]).await;
    let changes = Changes {
        upsert: vec![("a", b"10".to_vec()), ("new", b"n".to_vec())],
        ..Changes::default()
    };
    assert_eq!(
        store.save(&key, &changes, at()).await.unwrap(),
        Saved::Saved
    );
    let record = store.load(&key, &[], at()).await.unwrap().unwrap();
    assert_eq!(field(&record.fields, "a"), Some(&b"10"[..]));
    assert_eq!(field(&record.fields, "b"), Some(&b"2"[..]));
    assert_eq!(field(&record.fields, "new"), Some(&b"n"[..]));
}

/// Saving to a destroyed, unknown or expired session writes nothing and
/// says so: a logout is never undone by a slower request.
pub async fn save_never_resurrects(store: Arc<dyn SessionStore>) {
    let key = make(&*store, &[("user", b"42".to_vec())]).await;
    store.destroy(&key, now()).await.unwrap();
    let changes = Changes {
        upsert: vec![("cart", b"[1]".to_vec())],
        ..Changes::default()
    };
    assert_eq!(store.save(&key, &changes, at()).await.unwrap(), Saved::Gone);
    assert!(store.load(&key, &[], at()).await.unwrap().is_none());
    assert_eq!(store.load_field(&key, "cart", at()).await.unwrap(), None);
    // unknown key
    let unknown = self::key();
    assert_eq!(
        store.save(&unknown, &changes, at()).await.unwrap(),
        Saved::Gone
    );
    assert!(store.load(&unknown, &[], at()).await.unwrap().is_none());
    // expired but not yet cleaned up
    let t = now();
    let expired = self::key();
    assert!(store
        .create(&expired, ns(t - 100, t - 1), &[("user", b"1".to_vec())])
        .await
        .unwrap());
    assert_eq!(
        store.save(&expired, &changes, at()).await.unwrap(),
        Saved::Gone
    );
    // destroying twice is fine
    store.destroy(&key, now()).await.unwrap();
}

/// Removed fields are gone; the rest stay.
pub async fn remove_deletes_fields(store: Arc<dyn SessionStore>) {
    let key = make(
        &*store,
        &[
            ("a", b"1".to_vec()),
            ("b", b"2".to_vec()),
            ("c", b"3".to_vec()),
        ],
    )
    .await;
    let changes = Changes {
        upsert: vec![("c", b"30".to_vec())],
        remove: vec!["a", "zzz"],
        ..Changes::default()
    };
    assert_eq!(
        store.save(&key, &changes, at()).await.unwrap(),
        Saved::Saved
    );
    let record = store.load(&key, &[], at()).await.unwrap().unwrap();
    let mut names: Vec<_> = record.fields.iter().map(|(n, _)| n.as_str()).collect();
    names.sort();
    assert_eq!(names, ["b", "c"]);
    assert_eq!(field(&record.fields, "c"), Some(&b"30"[..]));
}

/// Expired sessions (idle or past `max_lifetime`) are never returned, by
/// any read, whether or not cleanup ran.
pub async fn expired_sessions_are_never_returned(store: Arc<dyn SessionStore>) {
    let t = now();
    let idle = key();
    assert!(store
        .create(&idle, ns(t - 100, t), &[("a", b"1".to_vec())])
        .await
        .unwrap());
    let v = Validity {
        now: t,
        created_after: t - 1000,
    };
    assert!(
        store.load(&idle, &[], v).await.unwrap().is_none(),
        "expires_at == now is expired"
    );
    assert_eq!(store.load_field(&idle, "a", v).await.unwrap(), None);
    let old = key();
    assert!(store
        .create(&old, ns(t - 1000, t + 1000), &[("a", b"1".to_vec())])
        .await
        .unwrap());
    assert!(
        store.load(&old, &[], v).await.unwrap().is_none(),
        "created_at == created_after is too old"
    );
    let young = Validity {
        now: t,
        created_after: t - 1001,
    };
    assert!(store.load(&old, &[], young).await.unwrap().is_some());
    assert_eq!(
        store.save(&idle, &rename_to(key()), v).await.unwrap(),
        Saved::Gone,
        "an expired session cannot be renamed"
    );
}

/// A regenerate moves the data to the new key; the old key is dead for
/// reads and writes.
pub async fn rename_moves_data(store: Arc<dyn SessionStore>) {
    let from = make(&*store, &[("a", b"1".to_vec())]).await;
    let to = key();
    let changes = Changes {
        upsert: vec![("b", b"2".to_vec())],
        ..rename_to(to)
    };
    assert_eq!(
        store.save(&from, &changes, at()).await.unwrap(),
        Saved::Saved
    );
    assert!(store.load(&from, &[], at()).await.unwrap().is_none());
    assert_eq!(store.load_field(&from, "a", at()).await.unwrap(), None);
    let record = store.load(&to, &[], at()).await.unwrap().unwrap();
    assert_eq!(field(&record.fields, "a"), Some(&b"1"[..]));
    assert_eq!(
        field(&record.fields, "b"),
        Some(&b"2"[..]),
        "the write went to the new key"
    );
    assert_eq!(
        store.save(&key(), &rename_to(key()), at()).await.unwrap(),
        Saved::Gone,
        "renaming a missing session writes nothing"
    );
}

/// A regenerate whose rename cannot complete leaves everything as it was:
/// the old key still works and the request's writes are not half-applied.
pub async fn rename_is_all_or_nothing(store: Arc<dyn SessionStore>) {
    let from = make(&*store, &[("a", b"1".to_vec())]).await;
    let taken = make(&*store, &[("other", b"x".to_vec())]).await;
    let changes = Changes {
        upsert: vec![("a", b"2".to_vec())],
        ..rename_to(taken)
    };
    assert!(
        store.save(&from, &changes, at()).await.is_err(),
        "moving onto a taken key fails"
    );
    let record = store.load(&from, &[], at()).await.unwrap().unwrap();
    assert_eq!(
        field(&record.fields, "a"),
        Some(&b"1"[..]),
        "nothing half-written"
    );
    let other = store.load(&taken, &[], at()).await.unwrap().unwrap();
    assert_eq!(other.fields, vec![("other".to_string(), b"x".to_vec())]);
}

/// After a regenerate, the previous key reaches the session for a logout
/// during the grace, and for nothing else: a save with it reports `Moved`.
pub async fn previous_key_reaches_the_session_for_destroy_only(store: Arc<dyn SessionStore>) {
    let old = make(&*store, &[("user", b"1".to_vec())]).await;
    let new = key();
    assert_eq!(
        store.save(&old, &rename_to(new), at()).await.unwrap(),
        Saved::Saved
    );
    let write = Changes {
        upsert: vec![("cart", b"[1]".to_vec())],
        ..Changes::default()
    };
    assert_eq!(store.save(&old, &write, at()).await.unwrap(), Saved::Moved);
    assert!(
        store.load(&old, &[], at()).await.unwrap().is_none(),
        "no reads with the old key"
    );
    let record = store.load(&new, &[], at()).await.unwrap().unwrap();
    assert_eq!(
        field(&record.fields, "cart"),
        None,
        "the write with the old key was refused"
    );
    // After the grace, the old key reaches nothing.
    store
        .destroy(&old, now() + PREVIOUS_KEY_GRACE + 1)
        .await
        .unwrap();
    assert!(
        store.load(&new, &[], at()).await.unwrap().is_some(),
        "grace is over"
    );
    // Within it, a logout with the old key ends the session.
    store.destroy(&old, now()).await.unwrap();
    assert!(
        store.load(&new, &[], at()).await.unwrap().is_none(),
        "logout with the old key"
    );
    assert_eq!(store.save(&new, &write, at()).await.unwrap(), Saved::Gone);
}

/// Several regenerates within the grace (a login, then a privilege
/// change): a logout with any of the replaced keys ends the session, and a
/// save with any of them reports `Moved`.
pub async fn every_key_replaced_within_the_grace_reaches_the_session(store: Arc<dyn SessionStore>) {
    for logout_with in 0..3 {
        let first = make(&*store, &[("user", b"1".to_vec())]).await;
        let mut keys = vec![first];
        for _ in 0..3 {
            let next = key();
            let from = *keys.last().unwrap();
            assert_eq!(
                store.save(&from, &rename_to(next), at()).await.unwrap(),
                Saved::Saved
            );
            keys.push(next);
        }
        let current = keys[3];
        for old in &keys[..3] {
            assert!(store.is_previous_key(old, now()).await.unwrap());
            assert!(store.load(old, &[], at()).await.unwrap().is_none());
        }
        store.destroy(&keys[logout_with], now()).await.unwrap();
        assert!(
            store.load(&current, &[], at()).await.unwrap().is_none(),
            "a logout with the key replaced {} regenerates ago",
            3 - logout_with
        );
    }
}

async fn expires_at(store: &dyn SessionStore, key: &StoreKey) -> i64 {
    let record = store.load(key, &[], at()).await.unwrap();
    record.expect("session is alive").expires_at
}

/// A touch only moves the expiry forward; an explicit set may shorten it.
pub async fn touch_never_shortens(store: Arc<dyn SessionStore>) {
    let t = now();
    let key = key();
    assert!(store
        .create(&key, ns(t, t + 1000), &[("a", b"1".to_vec())])
        .await
        .unwrap());
    let earlier = Changes {
        expiry: Some(ExpiryUpdate::Extend(t + 500)),
        ..Changes::default()
    };
    store.save(&key, &earlier, at()).await.unwrap();
    assert_eq!(expires_at(&*store, &key).await, t + 1000);
    let later = Changes {
        expiry: Some(ExpiryUpdate::Extend(t + 2000)),
        ..Changes::default()
    };
    store.save(&key, &later, at()).await.unwrap();
    assert_eq!(expires_at(&*store, &key).await, t + 2000);
    let set = Changes {
        expiry: Some(ExpiryUpdate::Set {
            expires_at: t + 100,
            idle_timeout: 100,
            persistent: Some(true),
        }),
        ..Changes::default()
    };
    store.save(&key, &set, at()).await.unwrap();
    assert_eq!(expires_at(&*store, &key).await, t + 100);
}

/// Cleanup deletes expired sessions in bounded batches and keeps live ones.
pub async fn delete_expired_in_batches(store: Arc<dyn SessionStore>) {
    let t = now();
    let mut expired = Vec::new();
    for _ in 0..5 {
        let k = key();
        assert!(store
            .create(&k, ns(t - 100, t - 10), &[("a", b"1".to_vec())])
            .await
            .unwrap());
        expired.push(k);
    }
    let live = make(&*store, &[("a", b"1".to_vec())]).await;
    assert_eq!(store.delete_expired(v(t), 2).await.unwrap(), 2);
    assert_eq!(store.delete_expired(v(t), 2).await.unwrap(), 2);
    assert_eq!(store.delete_expired(v(t), 2).await.unwrap(), 1);
    assert_eq!(store.delete_expired(v(t), 2).await.unwrap(), 0);
    assert!(store.load(&live, &[], at()).await.unwrap().is_some());
    for k in &expired {
        let far_past = Validity {
            now: t - 1000,
            created_after: t - 10_000,
        };
        assert!(
            store.load(k, &[], far_past).await.unwrap().is_none(),
            "expired rows are really gone"
        );
    }
}

/// A touch or an explicit expiry on a session that is already dead (idle
/// or past `max_lifetime`, not cleaned up yet) writes nothing and never
/// brings it back.
pub async fn expiry_updates_never_revive_a_dead_session(store: Arc<dyn SessionStore>) {
    let t = now();
    let dead = key();
    assert!(store
        .create(&dead, ns(t - 100, t - 1), &[("a", b"1".to_vec())])
        .await
        .unwrap());
    for update in [
        ExpiryUpdate::Extend(t + 3600),
        ExpiryUpdate::Set {
            expires_at: t + 3600,
            idle_timeout: 3600,
            persistent: Some(true),
        },
    ] {
        let changes = Changes {
            expiry: Some(update),
            ..Changes::default()
        };
        assert_eq!(
            store.save(&dead, &changes, at()).await.unwrap(),
            Saved::Gone
        );
        assert!(
            store.load(&dead, &[], at()).await.unwrap().is_none(),
            "{update:?} revived it"
        );
    }
    let then = Validity {
        now: t - 50,
        created_after: t - 10_000,
    };
    let record = store.load(&dead, &[], then).await.unwrap().unwrap();
    assert_eq!(record.expires_at, t - 1, "the row was not touched");
}

/// A session past `max_lifetime` accepts no write and serves no deferred
/// read, however far its idle expiry is.
pub async fn max_lifetime_bounds_writes_and_deferred_reads(store: Arc<dyn SessionStore>) {
    let t = now();
    let old = key();
    assert!(store
        .create(&old, ns(t - 1000, t + 1000), &[("big", b"[1]".to_vec())])
        .await
        .unwrap());
    let too_old = Validity {
        now: t,
        created_after: t - 1000,
    };
    assert_eq!(store.load_field(&old, "big", too_old).await.unwrap(), None);
    for changes in [
        Changes {
            upsert: vec![("a", b"1".to_vec())],
            ..Changes::default()
        },
        Changes {
            expiry: Some(ExpiryUpdate::Extend(t + 2000)),
            ..Changes::default()
        },
        rename_to(key()),
    ] {
        assert_eq!(
            store.save(&old, &changes, too_old).await.unwrap(),
            Saved::Gone
        );
    }
    let young = Validity {
        now: t,
        created_after: t - 1001,
    };
    let record = store.load(&old, &[], young).await.unwrap().unwrap();
    assert_eq!(record.fields, vec![("big".to_string(), b"[1]".to_vec())]);
}

/// No expiry a store writes passes `created_at + max_lifetime`, whether or
/// not the request read the session first.
pub async fn expiry_is_capped_by_creation(store: Arc<dyn SessionStore>) {
    let t = now();
    let key = key();
    assert!(store.create(&key, ns(t - 900, t + 10), &[]).await.unwrap());
    let v = Validity {
        now: t,
        created_after: t - 1000,
    };
    let set = Changes {
        expiry: Some(ExpiryUpdate::Set {
            expires_at: t + 5000,
            idle_timeout: 5000,
            persistent: Some(true),
        }),
        ..Changes::default()
    };
    assert_eq!(store.save(&key, &set, v).await.unwrap(), Saved::Saved);
    let record = store.load(&key, &[], v).await.unwrap().unwrap();
    assert_eq!(record.expires_at, t + 100, "created_at + max_lifetime");
    assert_eq!(record.idle_timeout, 5000);
    let extend = Changes {
        expiry: Some(ExpiryUpdate::Extend(t + 9000)),
        ..Changes::default()
    };
    assert_eq!(store.save(&key, &extend, v).await.unwrap(), Saved::Saved);
    assert_eq!(
        store.load(&key, &[], v).await.unwrap().unwrap().expires_at,
        t + 100
    );
}

/// Cleanup deletes sessions past `max_lifetime` even when their idle
/// expiry is ahead, and keeps younger ones.
pub async fn cleanup_honours_max_lifetime(store: Arc<dyn SessionStore>) {
    let t = now();
    let old = key();
    assert!(store
        .create(&old, ns(t - 2000, t + 1000), &[("a", b"1".to_vec())])
        .await
        .unwrap());
    let young = make(&*store, &[("a", b"1".to_vec())]).await;
    let v = Validity {
        now: t,
        created_after: t - 1000,
    };
    assert_eq!(store.delete_expired(v, 10).await.unwrap(), 1);
    let any = Validity {
        now: t,
        created_after: t - 100_000,
    };
    assert!(
        store.load(&old, &[], any).await.unwrap().is_none(),
        "the row is gone"
    );
    assert!(store.load(&young, &[], v).await.unwrap().is_some());
}

/// N parallel saves, each of a different field of one session, all land.
pub async fn concurrent_saves_of_different_fields_all_land(store: Arc<dyn SessionStore>) {
    let key = make(&*store, &[("base", b"0".to_vec())]).await;
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let name: &'static str = Box::leak(format!("f{i}").into_boxed_str());
                let changes = Changes {
                    upsert: vec![(name, i.to_string().into_bytes())],
                    ..Changes::default()
                };
                store.save(&key, &changes, at()).await
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), Saved::Saved);
    }
    let record = store.load(&key, &[], at()).await.unwrap().unwrap();
    assert_eq!(record.fields.len(), 17);
    for i in 0..16 {
        assert_eq!(
            field(&record.fields, &format!("f{i}")),
            Some(i.to_string().as_bytes())
        );
    }
}

/// Parallel saves that add the same new field do not fail on a duplicate key.
pub async fn concurrent_adds_of_the_same_field_do_not_fail(store: Arc<dyn SessionStore>) {
    let key = make(&*store, &[]).await;
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let changes = Changes {
                    upsert: vec![("same", format!("{i}").into_bytes())],
                    ..Changes::default()
                };
                store.save(&key, &changes, at()).await
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), Saved::Saved);
    }
    let record = store.load(&key, &[], at()).await.unwrap().unwrap();
    assert_eq!(record.fields.len(), 1);
}

/// Arbitrary bytes (every byte value, 60 KB) survive a round trip.
pub async fn binary_values_round_trip(store: Arc<dyn SessionStore>) {
    let value: Vec<u8> = (0..60_000u32).map(|i| (i % 256) as u8).collect();
    // Every byte value (NUL, separators, invalid UTF-8) and an empty value.
    let key = make(
        &*store,
        &[
            ("bin", value.clone()),
            ("empty", Vec::new()),
            ("seps", b",:;\0".to_vec()),
        ],
    )
    .await;
    let record = store.load(&key, &[], at()).await.unwrap().unwrap();
    assert_eq!(record.fields.len(), 3);
    assert_eq!(field(&record.fields, "bin"), Some(value.as_slice()));
    assert_eq!(field(&record.fields, "empty"), Some(&b""[..]));
    assert_eq!(field(&record.fields, "seps"), Some(&b",:;\0"[..]));
}

async fn statements(store: &dyn SessionStore, run: impl std::future::Future<Output = ()>) -> u64 {
    let before = store.stats();
    run.await;
    (store.stats() - before).statements
}

/// Logs a user in through the session layer (a new session holding
/// `user`) and returns the cookie value the response would carry.
pub async fn login(manager: &SessionManager, user: u64) -> String {
    let mut handle = manager.open::<Cart>(None);
    handle.set_user(Some(user));
    assert_eq!(flush(&mut handle).await.unwrap(), Outcome::Created);
    cookie_token(&mut handle)
}

/// The value of the Set-Cookie a flushed handle's response would carry.
pub fn cookie_token<H: crate::schema::SessionHandle>(handle: &mut H) -> String {
    match handle.state().request().take_cookie_action() {
        Some(CookieAction::Set { value, .. }) => value,
        other => panic!("expected a Set-Cookie, got {other:?}"),
    }
}

/// What each kind of request costs in statements, through a real session
/// type: unused 0, read 1, one-field change of a loaded session 2 (load +
/// write), blind write 1, new login 1-2, destroy 1, deferred read 1 more.
pub async fn statement_counts_per_request_kind(store: Arc<dyn SessionStore>) {
    let m = manager(store.clone());
    let s = &*store;

    // new login: create with its fields (at most 2)
    let mut login = m.open::<Cart>(None);
    let n = statements(s, async {
        login.set_user(Some(7));
        login.set_visits(1);
        assert_eq!(flush(&mut login).await.unwrap(), Outcome::Created);
    })
    .await;
    assert!((1..=2).contains(&n), "login took {n} statements");
    let cookie = cookie_token(&mut login);

    // a request that takes the session and does not use it: 0
    let mut unused = m.open::<Cart>(Some(&cookie));
    let n = statements(s, async {
        assert_eq!(flush(&mut unused).await.unwrap(), Outcome::Unchanged);
    })
    .await;
    assert_eq!(n, 0);
    assert_eq!(unused.request().take_cookie_action(), None);

    // read two fields: 1
    let mut read = m.open::<Cart>(Some(&cookie));
    let n = statements(s, async {
        assert_eq!(*read.user().await.unwrap(), Some(7));
        assert_eq!(*read.visits().await.unwrap(), 1);
        assert_eq!(flush(&mut read).await.unwrap(), Outcome::Unchanged);
    })
    .await;
    assert_eq!(n, 1);
    assert_eq!(
        read.request().take_cookie_action(),
        None,
        "a read sends no cookie"
    );

    // a cookie that names nothing (unknown, expired, logged out): 1, the
    // load (whether it is a key a regenerate just replaced is asked only
    // if the request writes)
    let unknown = Token::generate().unwrap().to_cookie_value();
    let mut stranger = m.open::<Cart>(Some(&unknown));
    let n = statements(s, async {
        assert_eq!(*stranger.user().await.unwrap(), None);
        assert_eq!(flush(&mut stranger).await.unwrap(), Outcome::Unchanged);
    })
    .await;
    assert_eq!(n, 1, "an unknown cookie");
    assert!(stranger.is_new());

    // change one field of a loaded session: 2
    let mut bump = m.open::<Cart>(Some(&cookie));
    let before = store.stats();
    *bump.visits_mut().await.unwrap() += 1;
    assert_eq!(flush(&mut bump).await.unwrap(), Outcome::Saved);
    let d = store.stats() - before;
    assert_eq!(d.statements, 2);
    assert_eq!(d.rows_written, 1, "only the changed field is written");
    assert_eq!(d.bytes_written, 1, "`2` is one byte");

    // a _mut borrow that changes nothing writes nothing: 1 (the load)
    let mut same = m.open::<Cart>(Some(&cookie));
    let n = statements(s, async {
        let v = same.visits_mut().await.unwrap();
        *v += 0;
        assert_eq!(flush(&mut same).await.unwrap(), Outcome::Unchanged);
    })
    .await;
    assert_eq!(n, 1);

    // blind write on an existing session: 1
    let mut blind = m.open::<Cart>(Some(&cookie));
    let n = statements(s, async {
        blind.set_visits(10);
        assert_eq!(flush(&mut blind).await.unwrap(), Outcome::Saved);
    })
    .await;
    assert_eq!(n, 1);

    // deferred field: not part of the first load, 1 statement of its own
    let deferred = m.open::<Cart>(Some(&cookie));
    let n = statements(s, async {
        assert_eq!(*deferred.visits().await.unwrap(), 10);
        assert!(deferred.history().await.unwrap().is_empty());
        let _ = deferred.history().await.unwrap();
    })
    .await;
    assert_eq!(n, 2);

    // destroy: 1
    let mut logout = m.open::<Cart>(Some(&cookie));
    let n = statements(s, async {
        logout.destroy().await.unwrap();
        assert_eq!(flush(&mut logout).await.unwrap(), Outcome::Unchanged);
    })
    .await;
    assert_eq!(n, 1);
    assert_eq!(
        logout.request().take_cookie_action(),
        Some(CookieAction::Remove)
    );
    let mut after = m.open::<Cart>(Some(&cookie));
    assert_eq!(
        *after.user().await.unwrap(),
        None,
        "destroyed session is gone"
    );
    assert!(after.is_new());
    assert_eq!(flush(&mut after).await.unwrap(), Outcome::Unchanged);
    assert_eq!(
        after.request().take_cookie_action(),
        None,
        "a dead cookie is left alone: only the request that destroyed a session removes the cookie"
    );
}

/// `regenerate` issues a new token that keeps the data; the old token is
/// worthless afterwards.
pub async fn regenerate_keeps_data_and_kills_old_token(store: Arc<dyn SessionStore>) {
    let m = manager(store.clone());
    let mut first = m.open::<Cart>(None);
    first.cart_mut().await.unwrap().push("apple".into());
    flush(&mut first).await.unwrap();
    let old = cookie_token(&mut first);

    let mut login = m.open::<Cart>(Some(&old));
    login.regenerate();
    login.set_user(Some(1));
    let n = statements(&*store, async {
        assert_eq!(flush(&mut login).await.unwrap(), Outcome::Saved);
    })
    .await;
    // SQL: the rename, the record of the replaced key and the upsert, in
    // one transaction; memory, Redis: one call.
    assert!((1..=3).contains(&n), "rename + write took {n} statements");
    let new = cookie_token(&mut login);
    assert_ne!(old, new);

    let fresh = m.open::<Cart>(Some(&new));
    assert_eq!(*fresh.user().await.unwrap(), Some(1));
    assert_eq!(*fresh.cart().await.unwrap(), ["apple"]);
    let stale = m.open::<Cart>(Some(&old));
    assert_eq!(*stale.user().await.unwrap(), None);
    assert!(stale.cart().await.unwrap().is_empty());
    assert!(stale.is_new());
}

/// A request that loaded the session before a logout and saves after it
/// writes nothing and reports the interruption.
pub async fn destroy_wins_over_a_slower_request(store: Arc<dyn SessionStore>) {
    let m = manager(store.clone());
    let mut login = m.open::<Cart>(None);
    login.set_user(Some(5));
    flush(&mut login).await.unwrap();
    let cookie = cookie_token(&mut login);

    let mut slow = m.open::<Cart>(Some(&cookie));
    slow.cart_mut().await.unwrap().push("pear".into());
    let mut blind = m.open::<Cart>(Some(&cookie));
    blind.set_visits(3);

    let mut logout = m.open::<Cart>(Some(&cookie));
    logout.destroy().await.unwrap();

    assert_eq!(flush(&mut slow).await.unwrap(), Outcome::Interrupted);
    assert_eq!(
        slow.request().take_cookie_action(),
        None,
        "only the request that destroyed the session removes the cookie"
    );
    // A blind write cannot tell a logged-out cookie from an unknown one: it
    // starts a fresh session, which holds nothing of the old one.
    assert_eq!(flush(&mut blind).await.unwrap(), Outcome::Created);
    let fresh = cookie_token(&mut blind);
    assert_ne!(fresh, cookie);
    let check = m.open::<Cart>(Some(&fresh));
    assert_eq!(
        *check.user().await.unwrap(),
        None,
        "nothing of the old session"
    );
    assert_eq!(*check.visits().await.unwrap(), 3);
    let check = m.open::<Cart>(Some(&cookie));
    assert_eq!(*check.user().await.unwrap(), None);
    assert!(check.cart().await.unwrap().is_empty());
    assert_eq!(*check.visits().await.unwrap(), 0);
}

/// Parallel requests through the session layer, each changing a different
/// field of one session, lose no update.
pub async fn concurrent_sessions_lose_no_update(store: Arc<dyn SessionStore>) {
    let m = manager(store.clone());
    let mut login = m.open::<Cart>(None);
    login.set_user(Some(9));
    flush(&mut login).await.unwrap();
    let cookie = cookie_token(&mut login);

    let tasks: Vec<_> = (0..3)
        .map(|i| {
            let m = m.clone();
            let cookie = cookie.clone();
            tokio::spawn(async move {
                let mut h = m.open::<Cart>(Some(&cookie));
                // every request loads first, as a real handler would
                let _ = h.user().await?;
                match i {
                    0 => h.cart_mut().await?.push("fig".into()),
                    1 => *h.visits_mut().await? += 41,
                    _ => h.set_history(vec!["/shop".into()]),
                }
                flush(&mut h).await
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), Outcome::Saved);
    }
    let check = m.open::<Cart>(Some(&cookie));
    assert_eq!(*check.user().await.unwrap(), Some(9));
    assert_eq!(*check.cart().await.unwrap(), ["fig"]);
    assert_eq!(*check.visits().await.unwrap(), 41);
    assert_eq!(*check.history().await.unwrap(), ["/shop"]);
}

/// Many writers race one logout on the same session: whatever the
/// interleaving, once the logout is done the session stays gone. Each
/// writer saves until it is refused; the logout waits until writes have
/// landed, so every round really races (asserted: writes landed before the
/// logout, and every writer was refused after it).
pub async fn writes_racing_a_destroy_never_resurrect(store: Arc<dyn SessionStore>) {
    use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
    for round in 0..5 {
        let key = make(&*store, &[("user", b"1".to_vec())]).await;
        let landed = Arc::new(AtomicU64::new(0));
        let writers: Vec<_> = (0..8)
            .map(|i| {
                let store = store.clone();
                let landed = landed.clone();
                tokio::spawn(async move {
                    for j in 0.. {
                        let value = format!("{round}-{i}-{j}").into_bytes();
                        let changes = Changes {
                            upsert: vec![("cart", value)],
                            ..Changes::default()
                        };
                        match store.save(&key, &changes, at()).await.unwrap() {
                            Saved::Saved => landed.fetch_add(1, SeqCst),
                            _ => return j,
                        };
                        tokio::task::yield_now().await;
                    }
                    unreachable!()
                })
            })
            .collect();
        while landed.load(SeqCst) < 8 {
            tokio::task::yield_now().await;
        }
        store.destroy(&key, now()).await.unwrap();
        let before = landed.load(SeqCst);
        for w in writers {
            w.await.unwrap();
        }
        assert!(
            before >= 8,
            "round {round}: writes landed before the logout"
        );
        assert!(
            store.load(&key, &[], at()).await.unwrap().is_none(),
            "round {round}: a write resurrected the session"
        );
        assert_eq!(store.load_field(&key, "cart", at()).await.unwrap(), None);
        let changes = Changes {
            upsert: vec![("cart", b"late".to_vec())],
            ..Changes::default()
        };
        assert_eq!(store.save(&key, &changes, at()).await.unwrap(), Saved::Gone);
    }
}

/// Many saves of one session at once, each writing its own field and
/// pushing the expiry forward (what a busy session does when `touch_after`
/// falls due): all succeed, none deadlocks into an error, all land.
pub async fn concurrent_touches_and_writes_of_one_session_all_succeed(
    store: Arc<dyn SessionStore>,
) {
    let key = make(&*store, &[]).await;
    let t = now();
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let name: &'static str = Box::leak(format!("t{i}").into_boxed_str());
                let changes = Changes {
                    upsert: vec![(name, b"1".to_vec())],
                    remove: vec!["nothing"],
                    expiry: Some(ExpiryUpdate::Extend(t + 7200 + i)),
                    ..Changes::default()
                };
                store.save(&key, &changes, at()).await
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), Saved::Saved);
    }
    let record = store.load(&key, &[], at()).await.unwrap().unwrap();
    assert_eq!(record.fields.len(), 16);
    assert_eq!(
        record.expires_at,
        t + 7200 + 15,
        "the latest touch wins, none moves it back"
    );
}

/// Sequential requests through a SQL store with its own pool reuse one
/// connection: every statement hands its connection back (a missed hand-back
/// would open a connection per statement).
/// `idle_connections` reads the store's own pool.
pub async fn sequential_requests_reuse_one_connection(
    store: Arc<dyn SessionStore>,
    idle_connections: impl Fn() -> Option<usize>,
) {
    let manager = manager(store.clone());
    let cookie = login(&manager, 7).await;
    for _ in 0..5 {
        let mut h = manager.open::<Cart>(Some(&cookie));
        *h.visits_mut().await.unwrap() += 1;
        flush(&mut h).await.unwrap();
    }
    let check = manager.open::<Cart>(Some(&cookie));
    assert_eq!(*check.visits().await.unwrap(), 5);
    assert_eq!(
        idle_connections(),
        Some(1),
        "every statement went back to the pool and the next one reused it"
    );
}

/// A blind write (no read first) under a cookie that names no live session
/// (unknown, expired, or logged out in another tab) is stored under a fresh
/// token, never answered as saved while storing nothing.
pub async fn blind_write_to_a_dead_cookie_starts_a_fresh_session(store: Arc<dyn SessionStore>) {
    let m = manager(store.clone());
    let logged_out = login(&m, 3).await;
    let mut logout = m.open::<Cart>(Some(&logged_out));
    logout.destroy().await.unwrap();
    let unknown = Token::generate().unwrap().to_cookie_value();
    for cookie in [logged_out, unknown] {
        let mut blind = m.open::<Cart>(Some(&cookie));
        blind.set_visits(5);
        assert_eq!(flush(&mut blind).await.unwrap(), Outcome::Created);
        let fresh = cookie_token(&mut blind);
        assert_ne!(fresh, cookie, "never the client's token");
        let check = m.open::<Cart>(Some(&fresh));
        assert_eq!(*check.visits().await.unwrap(), 5);
        assert_eq!(*check.user().await.unwrap(), None);
        let old = m.open::<Cart>(Some(&cookie));
        assert!(old.user().await.unwrap().is_none() && old.is_new());
    }
}

/// A stored field that no longer decodes falls back to its default; a
/// mutable borrow that leaves that default as it is writes nothing, so the
/// stored bytes stay until the app really changes the value.
pub async fn undecodable_field_keeps_its_bytes_until_changed(store: Arc<dyn SessionStore>) {
    let m = manager(store.clone());
    let key_token = Token::generate().unwrap();
    let t = now();
    let stored = br#""x""#.to_vec(); // a string where `cart` is now a list
    assert!(store
        .create(
            &key_token.store_key(),
            ns(t, t + 3600),
            &[("cart", stored.clone())]
        )
        .await
        .unwrap());
    let cookie = key_token.to_cookie_value();
    let stored_key = key_token.store_key();
    let cart_bytes = |store: Arc<dyn SessionStore>| async move {
        let record = store.load(&stored_key, &[], at()).await.unwrap().unwrap();
        field(&record.fields, "cart").map(<[u8]>::to_vec)
    };

    let mut h = m.open::<Cart>(Some(&cookie));
    h.cart_mut().await.unwrap().retain(|_| true);
    assert_eq!(flush(&mut h).await.unwrap(), Outcome::Unchanged);
    assert_eq!(
        cart_bytes(store.clone()).await,
        Some(stored.clone()),
        "untouched"
    );

    // read first, borrow after: the same
    let mut h = m.open::<Cart>(Some(&cookie));
    assert!(h.cart().await.unwrap().is_empty());
    h.cart_mut().await.unwrap().clear();
    assert_eq!(flush(&mut h).await.unwrap(), Outcome::Unchanged);
    assert_eq!(cart_bytes(store.clone()).await, Some(stored.clone()));

    // a real change replaces the bytes
    let mut h = m.open::<Cart>(Some(&cookie));
    h.cart_mut().await.unwrap().push("apple".into());
    assert_eq!(flush(&mut h).await.unwrap(), Outcome::Saved);
    assert_eq!(
        cart_bytes(store.clone()).await,
        Some(br#"["apple"]"#.to_vec())
    );
}

/// Requests in flight with the token a regenerate just replaced: their
/// reads find nothing, their writes are refused (reported, never applied
/// to the new session), none removes the cookie, and a logout with that
/// token still ends the session.
pub async fn requests_racing_a_regenerate(store: Arc<dyn SessionStore>) {
    let m = manager(store.clone());
    let old = login(&m, 1).await;
    let mut inflight = m.open::<Cart>(Some(&old));
    assert_eq!(*inflight.user().await.unwrap(), Some(1));
    let mut blind = m.open::<Cart>(Some(&old));

    let mut regen = m.open::<Cart>(Some(&old));
    regen.regenerate();
    regen.set_user(Some(2));
    assert_eq!(flush(&mut regen).await.unwrap(), Outcome::Saved);
    let new = cookie_token(&mut regen);

    inflight.cart_mut().await.unwrap().push("late".into());
    assert_eq!(flush(&mut inflight).await.unwrap(), Outcome::Interrupted);
    assert_eq!(inflight.request().take_cookie_action(), None);
    blind.set_visits(9);
    assert_eq!(
        flush(&mut blind).await.unwrap(),
        Outcome::Interrupted,
        "a blind write with the replaced token starts no session that would log the browser out"
    );
    assert_eq!(blind.request().take_cookie_action(), None);
    let reader = m.open::<Cart>(Some(&old));
    assert_eq!(
        *reader.user().await.unwrap(),
        None,
        "no reads with the old token"
    );
    // A request with the old token that starts after the regenerate: its
    // read finds the key moved, so its write starts no session either
    // (whose cookie would log the browser out).
    let mut late = m.open::<Cart>(Some(&old));
    assert_eq!(*late.user().await.unwrap(), None);
    late.set_visits(3);
    assert_ne!(flush(&mut late).await.unwrap(), Outcome::Created);
    assert_eq!(late.request().take_cookie_action(), None);

    let check = m.open::<Cart>(Some(&new));
    assert_eq!(*check.user().await.unwrap(), Some(2));
    assert!(check.cart().await.unwrap().is_empty());
    assert_eq!(*check.visits().await.unwrap(), 0);

    let mut logout = m.open::<Cart>(Some(&old));
    logout.destroy().await.unwrap();
    assert_eq!(
        logout.request().take_cookie_action(),
        Some(CookieAction::Remove)
    );
    let check = m.open::<Cart>(Some(&new));
    assert_eq!(
        *check.user().await.unwrap(),
        None,
        "the logout with the old token ended it"
    );
}

/// `set_expiry` gives the session its own idle timeout: later requests
/// slide the expiry by it, not by `ttl`.
pub async fn a_session_keeps_its_own_expiry(store: Arc<dyn SessionStore>) {
    let m = manager(store.clone());
    let mut h = m.open::<Cart>(None);
    h.set_user(Some(1));
    h.set_expiry(600);
    assert_eq!(flush(&mut h).await.unwrap(), Outcome::Created);
    let token = match h.request().take_cookie_action() {
        Some(CookieAction::Set { token, max_age, .. }) => {
            assert_eq!(
                max_age,
                Some(600),
                "the cookie follows the session's own expiry"
            );
            token
        }
        other => panic!("expected a Set-Cookie, got {other:?}"),
    };
    let key = token.store_key();
    let token = token.to_cookie_value();
    let record = store.load(&key, &[], at()).await.unwrap().unwrap();
    assert!(record.expires_at - record.created_at == 600);
    assert_eq!(record.idle_timeout, 600);
    // 400 s later the touch is due: it slides by 600, not by ttl (a day).
    let later = record.created_at + 400;
    let mut next = m.open_at::<Cart>(Some(&token), later);
    assert_eq!(*next.user().await.unwrap(), Some(1));
    assert_eq!(flush(&mut next).await.unwrap(), Outcome::Saved, "the touch");
    let record = store.load(&key, &[], v(later)).await.unwrap().unwrap();
    assert_eq!(record.expires_at, later + 600);
    assert_eq!(record.idle_timeout, 600);

    // A blind set_expiry on a session created long ago is capped by its
    // creation, not by now.
    let t = now();
    let old_token = Token::generate().unwrap();
    assert!(store
        .create(
            &old_token.store_key(),
            ns(t - 86_000, t + 100),
            &[("user", b"1".to_vec())]
        )
        .await
        .unwrap());
    let config = Config {
        max_lifetime: 86_400,
        ..Config::default()
    };
    let capped = SessionManager::new(store.clone(), config).unwrap();
    let mut h = capped.open::<Cart>(Some(&old_token.to_cookie_value()));
    h.set_expiry(30 * 86_400);
    assert_eq!(flush(&mut h).await.unwrap(), Outcome::Saved);
    let record = store
        .load(&old_token.store_key(), &[], at())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        record.expires_at,
        t - 86_000 + 86_400,
        "created_at + max_lifetime"
    );
}

/// Two session types on one request with no cookie: one session, one
/// token, one cookie, and both types' writes kept.
pub async fn two_session_types_share_one_session(store: Arc<dyn SessionStore>) {
    let m = manager(store.clone());
    let request = m.begin(None);
    let mut cart = request.open::<Cart>();
    let mut prefs = request.open::<Prefs>();
    cart.set_user(Some(4));
    prefs.set_theme("dark".into());
    assert_eq!(flush(&mut cart).await.unwrap(), Outcome::Created);
    assert_eq!(flush(&mut prefs).await.unwrap(), Outcome::Saved);
    let token = match request.take_cookie_action() {
        Some(CookieAction::Set { token, .. }) => token.to_cookie_value(),
        other => panic!("expected one Set-Cookie, got {other:?}"),
    };
    assert_eq!(request.take_cookie_action(), None, "one cookie");
    let next = m.begin(Some(&token));
    let cart = next.open::<Cart>();
    let prefs = next.open::<Prefs>();
    assert_eq!(*cart.user().await.unwrap(), Some(4));
    assert_eq!(prefs.theme().await.unwrap(), "dark");
    // `visits` is one stored field seen by both types
    let request = m.begin(Some(&token));
    let mut prefs = request.open::<Prefs>();
    *prefs.visits_mut().await.unwrap() += 2;
    assert_eq!(flush(&mut prefs).await.unwrap(), Outcome::Saved);
    let cart = m.open::<Cart>(Some(&token));
    assert_eq!(*cart.visits().await.unwrap(), 2);
    // a regenerate through one type moves the session of both
    let request = m.begin(Some(&token));
    let mut cart = request.open::<Cart>();
    let mut prefs = request.open::<Prefs>();
    cart.regenerate();
    prefs.set_theme("light".into());
    assert_eq!(flush(&mut cart).await.unwrap(), Outcome::Saved);
    assert_eq!(flush(&mut prefs).await.unwrap(), Outcome::Saved);
    let moved = match request.take_cookie_action() {
        Some(CookieAction::Set { token, .. }) => token.to_cookie_value(),
        other => panic!("expected a Set-Cookie, got {other:?}"),
    };
    assert_ne!(moved, token);
    let check = m.begin(Some(&moved));
    assert_eq!(check.open::<Prefs>().theme().await.unwrap(), "light");
    assert_eq!(*check.open::<Cart>().user().await.unwrap(), Some(4));
}

/// Once a flush found the session ended, later changes in the same request
/// are reported dropped, not saved.
pub async fn writes_after_an_interrupted_flush_report_it(store: Arc<dyn SessionStore>) {
    let m = manager(store.clone());
    let cookie = login(&m, 8).await;
    let request = m.begin(Some(&cookie));
    let mut cart = request.open::<Cart>();
    let mut prefs = request.open::<Prefs>();
    assert_eq!(*cart.user().await.unwrap(), Some(8));
    let mut logout = m.open::<Cart>(Some(&cookie));
    logout.destroy().await.unwrap();
    cart.cart_mut().await.unwrap().push("x".into());
    assert_eq!(flush(&mut cart).await.unwrap(), Outcome::Interrupted);
    prefs.set_theme("dark".into());
    assert_eq!(flush(&mut prefs).await.unwrap(), Outcome::Interrupted);
    assert_eq!(request.take_cookie_action(), None);
}

/// A request that read a field and changes it is written as a plain update
/// when the store can; if the field was removed meanwhile it is written
/// anyway, and if the session was destroyed meanwhile nothing is.
pub async fn an_update_of_fields_that_went_meanwhile_is_never_lost(store: Arc<dyn SessionStore>) {
    let m = manager(store.clone());
    let cookie = login(&m, 1).await;
    let mut seed = m.open::<Cart>(Some(&cookie));
    seed.set_visits(1);
    seed.cart_mut().await.unwrap().push("a".into());
    flush(&mut seed).await.unwrap();

    // two fields read, then one of them removed by another request
    let mut slow = m.open::<Cart>(Some(&cookie));
    *slow.visits_mut().await.unwrap() += 1;
    slow.cart_mut().await.unwrap().push("b".into());
    let mut other = m.open::<Cart>(Some(&cookie));
    other.remove_cart();
    flush(&mut other).await.unwrap();
    assert_eq!(flush(&mut slow).await.unwrap(), Outcome::Saved);
    let check = m.open::<Cart>(Some(&cookie));
    assert_eq!(*check.visits().await.unwrap(), 2);
    assert_eq!(
        *check.cart().await.unwrap(),
        ["a", "b"],
        "the removed field is written back"
    );

    // read, then the session destroyed by another request
    let mut slow = m.open::<Cart>(Some(&cookie));
    *slow.visits_mut().await.unwrap() += 1;
    let mut logout = m.open::<Cart>(Some(&cookie));
    logout.destroy().await.unwrap();
    assert_eq!(flush(&mut slow).await.unwrap(), Outcome::Interrupted);
    let check = m.open::<Cart>(Some(&cookie));
    assert!(check.user().await.unwrap().is_none() && check.is_new());
}

fn version_of(record: &Record, name: &str) -> u64 {
    record
        .versions
        .iter()
        .find(|(n, _)| n == name)
        .map_or(0, |(_, v)| *v)
}

fn cas(name: &'static str, value: Option<&[u8]>, version: Option<u64>) -> Changes {
    Changes {
        upsert: value.map(|v| (name, v.to_vec())).into_iter().collect(),
        remove: if value.is_none() { vec![name] } else { vec![] },
        expect: vec![Expect { name, version }],
        ..Changes::default()
    }
}

/// A save with an expectation applies only at the expected version (a
/// present field never written with one is at 0; `None` means absent),
/// bumps the version, and otherwise writes nothing at all, other fields
/// of the same save included. Writes without an expectation keep the
/// version.
pub async fn versioned_writes_need_the_expected_version(store: Arc<dyn SessionStore>) {
    let key = make(&*store, &[("v", b"0".to_vec()), ("other", b"a".to_vec())]).await;
    let load = || async { store.load(&key, &[], at()).await.unwrap().unwrap() };
    assert_eq!(version_of(&load().await, "v"), 0);

    assert_eq!(
        store
            .save(&key, &cas("v", Some(b"1"), Some(0)), at())
            .await
            .unwrap(),
        Saved::Saved
    );
    let record = load().await;
    assert_eq!(field(&record.fields, "v"), Some(&b"1"[..]));
    assert_eq!(version_of(&record, "v"), 1);

    // A stale version: nothing written, not even the plain field beside it.
    let mut stale = cas("v", Some(b"2"), Some(0));
    stale.upsert.push(("other", b"b".to_vec()));
    assert_eq!(
        store.save(&key, &stale, at()).await.unwrap(),
        Saved::Conflict
    );
    let record = load().await;
    assert_eq!(field(&record.fields, "v"), Some(&b"1"[..]));
    assert_eq!(field(&record.fields, "other"), Some(&b"a"[..]));
    assert_eq!(version_of(&record, "v"), 1);

    // Expecting absence of a present field conflicts; of an absent one, adds it.
    assert_eq!(
        store
            .save(&key, &cas("v", Some(b"9"), None), at())
            .await
            .unwrap(),
        Saved::Conflict
    );
    assert_eq!(
        store
            .save(&key, &cas("w", Some(b"1"), None), at())
            .await
            .unwrap(),
        Saved::Saved
    );
    assert_eq!(version_of(&load().await, "w"), 1);

    // A plain write keeps the version.
    let plain = Changes {
        upsert: vec![("v", b"5".to_vec())],
        ..Changes::default()
    };
    assert_eq!(store.save(&key, &plain, at()).await.unwrap(), Saved::Saved);
    assert_eq!(version_of(&load().await, "v"), 1);

    // Removal: only at the expected version.
    assert_eq!(
        store
            .save(&key, &cas("v", None, Some(0)), at())
            .await
            .unwrap(),
        Saved::Conflict
    );
    assert_eq!(
        store
            .save(&key, &cas("v", None, Some(1)), at())
            .await
            .unwrap(),
        Saved::Saved
    );
    assert_eq!(field(&load().await.fields, "v"), None);

    // A dead session is gone, not a conflict.
    store.destroy(&key, now()).await.unwrap();
    assert_eq!(
        store
            .save(&key, &cas("w", Some(b"2"), Some(1)), at())
            .await
            .unwrap(),
        Saved::Gone
    );
}

/// Tasks incrementing one field by load-then-compare-and-set, retrying on
/// conflict, lose no increment.
pub async fn concurrent_compare_and_set_increments_all_land(store: Arc<dyn SessionStore>) {
    let key = make(&*store, &[("n", b"0".to_vec())]).await;
    let (tasks, each) = (8, 25);
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut conflicts = 0u32;
                for _ in 0..each {
                    loop {
                        let record = store.load(&key, &[], at()).await.unwrap().unwrap();
                        let n: u64 = std::str::from_utf8(field(&record.fields, "n").unwrap())
                            .unwrap()
                            .parse()
                            .unwrap();
                        let next = (n + 1).to_string();
                        let version = Some(version_of(&record, "n"));
                        match store
                            .save(&key, &cas("n", Some(next.as_bytes()), version), at())
                            .await
                            .unwrap()
                        {
                            Saved::Saved => break,
                            Saved::Conflict => conflicts += 1,
                            other => panic!("unexpected {other:?}"),
                        }
                    }
                }
                conflicts
            })
        })
        .collect();
    let mut conflicts = 0;
    for h in handles {
        conflicts += h.await.unwrap();
    }
    let record = store.load(&key, &[], at()).await.unwrap().unwrap();
    assert_eq!(
        field(&record.fields, "n"),
        Some((tasks * each).to_string().as_bytes())
    );
    assert_eq!(version_of(&record, "n"), tasks * each);
    // Not asserted, but the race must be real for the check to mean anything.
    eprintln!("{conflicts} conflicts along the way");
}

/// `update_x` from many parallel requests: every increment lands, and an
/// uncontended update costs the load and one write.
pub async fn concurrent_updates_of_a_versioned_field_lose_nothing(store: Arc<dyn SessionStore>) {
    let m = manager(store.clone());
    let mut login = m.open::<Counter>(None);
    login.set_note("start".into());
    assert_eq!(flush(&mut login).await.unwrap(), Outcome::Created);
    let cookie = cookie_token(&mut login);

    // Uncontended: load + one compare-and-set, nothing more at the flush.
    let statements = {
        let before = store.stats();
        let mut h = m.open::<Counter>(Some(&cookie));
        assert_eq!(
            h.update_hits(|n| {
                *n += 1;
                *n
            })
            .await
            .unwrap(),
            1
        );
        assert_eq!(flush(&mut h).await.unwrap(), Outcome::Unchanged);
        (store.stats() - before).statements
    };
    assert_eq!(statements, 2);

    let (tasks, each) = (16u64, 20u64);
    let runs: Vec<_> = (0..tasks)
        .map(|_| {
            let m = m.clone();
            let cookie = cookie.clone();
            tokio::spawn(async move {
                for _ in 0..each {
                    let mut h = m.open::<Counter>(Some(&cookie));
                    h.update_hits(|n| *n += 1).await?;
                    flush(&mut h).await?;
                }
                Ok::<_, crate::Error>(())
            })
        })
        .collect();
    for run in runs {
        run.await.unwrap().unwrap();
    }
    let check = m.open::<Counter>(Some(&cookie));
    assert_eq!(*check.hits().await.unwrap(), 1 + tasks * each);
    assert_eq!(*check.note().await.unwrap(), "start");
}

/// Two requests that both change a versioned field with plain writes: the
/// second flush is a conflict error, writes nothing (its plain field
/// neither), and the stored value is the first one's.
pub async fn plain_writes_of_a_versioned_field_conflict(store: Arc<dyn SessionStore>) {
    let m = manager(store.clone());
    let mut login = m.open::<Counter>(None);
    login.set_hits(10);
    flush(&mut login).await.unwrap();
    let cookie = cookie_token(&mut login);

    let mut a = m.open::<Counter>(Some(&cookie));
    let mut b = m.open::<Counter>(Some(&cookie));
    *a.hits_mut().await.unwrap() += 1;
    a.set_note("a".into());
    *b.hits_mut().await.unwrap() += 100;
    b.set_note("b".into());
    assert_eq!(flush(&mut a).await.unwrap(), Outcome::Saved);
    match flush(&mut b).await {
        Err(crate::Error::Conflict { field }) => assert_eq!(field, "hits"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    let check = m.open::<Counter>(Some(&cookie));
    assert_eq!(*check.hits().await.unwrap(), 11);
    assert_eq!(*check.note().await.unwrap(), "a");

    // A blind write of a versioned field is checked too: the flush loads
    // its version first, so it writes at the version it saw.
    let mut blind = m.open::<Counter>(Some(&cookie));
    blind.set_hits(0);
    assert_eq!(flush(&mut blind).await.unwrap(), Outcome::Saved);
    let check = m.open::<Counter>(Some(&cookie));
    assert_eq!(*check.hits().await.unwrap(), 0);
}

/// A manager whose stored values are sealed with keys made of these bytes
/// (the first seals).
fn sealed_manager(store: Arc<dyn SessionStore>, keys: &[u8]) -> SessionManager {
    use base64::Engine as _;
    let config = Config {
        encryption_keys: keys
            .iter()
            .map(|&b| {
                crate::sealing::EncryptionKey::new(
                    base64::engine::general_purpose::STANDARD.encode([b; 32]),
                )
            })
            .collect(),
        ..Config::default()
    };
    SessionManager::new(store, config).unwrap()
}

/// The stored bytes of every field of the session behind `cookie`, as the
/// store holds them.
async fn raw_fields(store: &dyn SessionStore, cookie: &str) -> Vec<(String, Vec<u8>)> {
    let key = Token::parse(cookie).unwrap().store_key();
    store.load(&key, &[], at()).await.unwrap().unwrap().fields
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// With `encryption_keys`, no stored value holds its plaintext (deferred
/// fields included), and a value opens only in the session and field it
/// was sealed for: copied to another session, to another field, a whole
/// session copied under another token, read with another key or altered,
/// it falls back like an undecodable field, and its stored bytes stay
/// until the app changes the field.
pub async fn encrypted_values_open_only_where_they_were_sealed(store: Arc<dyn SessionStore>) {
    let m = sealed_manager(store.clone(), &[1]);
    let s = &*store;
    let mut h = m.open::<Cart>(None);
    h.set_user(Some(4_242_424));
    h.set_cart(vec!["secret-apple".into()]);
    h.set_history(vec!["secret-history".into()]);
    assert_eq!(flush(&mut h).await.unwrap(), Outcome::Created);
    let a = cookie_token(&mut h);
    let mut h = m.open::<Cart>(None);
    h.set_cart(vec!["b-item".into()]);
    flush(&mut h).await.unwrap();
    let b = cookie_token(&mut h);

    let stored = raw_fields(s, &a).await;
    assert_eq!(stored.len(), 3, "{stored:?}");
    for (name, value) in &stored {
        for plain in [&b"secret"[..], b"4242424", b"apple"] {
            assert!(!contains(value, plain), "{name} holds plaintext");
        }
        assert!(
            value.len() >= crate::sealing::OVERHEAD,
            "{name} is not sealed"
        );
    }
    // Through the manager, everything opens, the deferred field by its
    // own load.
    let h = m.open::<Cart>(Some(&a));
    assert_eq!(*h.user().await.unwrap(), Some(4_242_424));
    assert_eq!(*h.cart().await.unwrap(), ["secret-apple"]);
    assert_eq!(*h.history().await.unwrap(), ["secret-history"]);

    // `a`'s cart copied into `b`: does not open there, and stays as it is
    // through a borrow that changes nothing.
    let a_cart = field(&stored, "cart").unwrap().to_vec();
    let a_user = field(&stored, "user").unwrap().to_vec();
    let b_key = Token::parse(&b).unwrap().store_key();
    let copy = |name: &'static str, bytes: Vec<u8>| Changes {
        upsert: vec![(name, bytes)],
        ..Changes::default()
    };
    assert_eq!(
        s.save(&b_key, &copy("cart", a_cart.clone()), at())
            .await
            .unwrap(),
        Saved::Saved
    );
    let mut h = m.open::<Cart>(Some(&b));
    assert!(
        h.cart_mut().await.unwrap().is_empty(),
        "opened in another session"
    );
    assert_eq!(flush(&mut h).await.unwrap(), Outcome::Unchanged);
    assert_eq!(field(&raw_fields(s, &b).await, "cart"), Some(&a_cart[..]));
    // Under `on_decode_error = "error"` it is a decode error naming it.
    let strict = SessionManager::new(
        store.clone(),
        Config {
            on_decode_error: crate::config::OnDecodeError::Error,
            ..m.config().clone()
        },
    )
    .unwrap();
    let err = strict.open::<Cart>(Some(&b)).cart().await.unwrap_err();
    assert!(
        matches!(err, crate::Error::Decode { field: "cart", .. }),
        "{err}"
    );

    // `a`'s user copied into `a`'s visits: the right session, the wrong
    // field.
    let a_key = Token::parse(&a).unwrap().store_key();
    s.save(&a_key, &copy("visits", a_user.clone()), at())
        .await
        .unwrap();
    let h = m.open::<Cart>(Some(&a));
    assert_eq!(*h.visits().await.unwrap(), 0, "opened as another field");
    assert_eq!(*h.user().await.unwrap(), Some(4_242_424));

    // The whole session copied under another token: nothing opens.
    let thief = Token::generate().unwrap();
    let t = now();
    let all: Vec<(&'static str, Vec<u8>)> = ["user", "cart", "history"]
        .into_iter()
        .map(|n| (n, field(&stored, n).unwrap().to_vec()))
        .collect();
    assert!(s
        .create(&thief.store_key(), ns(t, t + 3600), &all)
        .await
        .unwrap());
    let h = m.open::<Cart>(Some(&thief.to_cookie_value()));
    assert_eq!(*h.user().await.unwrap(), None);
    assert!(h.cart().await.unwrap().is_empty());
    assert!(h.history().await.unwrap().is_empty());

    // Another key, or no key at all, opens nothing.
    for other in [sealed_manager(store.clone(), &[2]), manager(store.clone())] {
        let h = other.open::<Cart>(Some(&a));
        assert_eq!(*h.user().await.unwrap(), None);
        assert!(h.cart().await.unwrap().is_empty());
    }

    // One altered byte: the field falls back, the others still open.
    let mut altered = a_cart.clone();
    let last = altered.len() - 1;
    altered[last] ^= 1;
    s.save(&a_key, &copy("cart", altered), at()).await.unwrap();
    let mut h = m.open::<Cart>(Some(&a));
    assert!(h.cart().await.unwrap().is_empty());
    assert_eq!(*h.user().await.unwrap(), Some(4_242_424));
    // A real change replaces the altered bytes with a sealed value.
    h.cart_mut().await.unwrap().push("pear".into());
    assert_eq!(flush(&mut h).await.unwrap(), Outcome::Saved);
    assert_eq!(*m.open::<Cart>(Some(&a)).cart().await.unwrap(), ["pear"]);
}

/// With `encryption_keys`, a rotated key list opens values sealed with an
/// old key and re-seals what it writes with the new one; values sealed
/// before a regenerate (deferred ones included) still open after it, and
/// after a second one; reads, blind writes and versioned updates cost the
/// statements they cost without encryption.
pub async fn encryption_keys_rotate_and_survive_regenerates(store: Arc<dyn SessionStore>) {
    let s = &*store;
    let old = sealed_manager(store.clone(), &[1]);
    let mut h = old.open::<Cart>(None);
    h.set_user(Some(1));
    h.set_cart(vec!["a".into()]);
    h.set_history(vec!["h".into()]);
    flush(&mut h).await.unwrap();
    let cookie = cookie_token(&mut h);

    let rotated = sealed_manager(store.clone(), &[2, 1]);
    let new_only = sealed_manager(store.clone(), &[2]);
    let h = rotated.open::<Cart>(Some(&cookie));
    assert_eq!(*h.cart().await.unwrap(), ["a"]);
    assert_eq!(*h.history().await.unwrap(), ["h"]);
    assert!(new_only
        .open::<Cart>(Some(&cookie))
        .cart()
        .await
        .unwrap()
        .is_empty());
    // Written through the rotated list: sealed with the new key.
    let mut h = rotated.open::<Cart>(Some(&cookie));
    h.cart_mut().await.unwrap().push("b".into());
    assert_eq!(flush(&mut h).await.unwrap(), Outcome::Saved);
    let h = new_only.open::<Cart>(Some(&cookie));
    assert_eq!(*h.cart().await.unwrap(), ["a", "b"]);
    assert_eq!(
        *h.user().await.unwrap(),
        None,
        "not written: still the old key's"
    );
    assert_eq!(
        *old.open::<Cart>(Some(&cookie)).user().await.unwrap(),
        Some(1)
    );

    // Costs: a read is one statement, a blind write one.
    let m = rotated;
    let n = statements(s, async {
        let h = m.open::<Cart>(Some(&cookie));
        assert_eq!(*h.user().await.unwrap(), Some(1));
    })
    .await;
    assert_eq!(n, 1, "read");
    let n = statements(s, async {
        let mut h = m.open::<Cart>(Some(&cookie));
        h.set_visits(5);
        assert_eq!(flush(&mut h).await.unwrap(), Outcome::Saved);
    })
    .await;
    assert_eq!(n, 1, "blind write");

    // A regenerate keeps every value readable, the deferred one included,
    // though only `user` is written again.
    let mut cookie = cookie;
    for round in 0..2u64 {
        let mut login = m.open::<Cart>(Some(&cookie));
        login.regenerate();
        login.set_user(Some(10 + round));
        assert_eq!(flush(&mut login).await.unwrap(), Outcome::Saved);
        let next = cookie_token(&mut login);
        assert_ne!(next, cookie);
        cookie = next;
        // The deferred field first, alone: its own load, then the list of
        // previous keys.
        let h = m.open::<Cart>(Some(&cookie));
        assert_eq!(*h.history().await.unwrap(), ["h"], "round {round}");
        assert_eq!(*h.user().await.unwrap(), Some(10 + round));
        assert_eq!(*h.cart().await.unwrap(), ["a", "b"]);
        assert_eq!(*h.visits().await.unwrap(), 5);
    }
    // Two logins racing on one cookie: as without encryption, the second
    // finds the session moved and writes nothing (a 409 over HTTP).
    let mut first = m.open::<Cart>(Some(&cookie));
    let mut second = m.open::<Cart>(Some(&cookie));
    for h in [&mut first, &mut second] {
        h.regenerate();
        h.set_user(Some(20));
    }
    assert_eq!(flush(&mut first).await.unwrap(), Outcome::Saved);
    assert_eq!(flush(&mut second).await.unwrap(), Outcome::Interrupted);
    cookie = cookie_token(&mut first);

    // The list of previous keys is sealed too.
    let stored = raw_fields(s, &cookie).await;
    let list = field(&stored, crate::state::PREVIOUS_KEYS).expect("previous keys stored");
    assert_eq!(list.len(), 3 * 32 + crate::sealing::OVERHEAD);

    // Versioned updates go through sealed.
    let mut h = m.open::<Counter>(None);
    h.set_note("n".into());
    flush(&mut h).await.unwrap();
    let counter = cookie_token(&mut h);
    for _ in 0..3 {
        let mut h = m.open::<Counter>(Some(&counter));
        h.update_hits(|n| *n += 1).await.unwrap();
        flush(&mut h).await.unwrap();
    }
    assert_eq!(*m.open::<Counter>(Some(&counter)).hits().await.unwrap(), 3);
    // Concurrent ones too: a conflict's reload opens the fresh value.
    let runs: Vec<_> = (0..8)
        .map(|_| {
            let (m, counter) = (m.clone(), counter.clone());
            tokio::spawn(async move {
                for _ in 0..5 {
                    let mut h = m.open::<Counter>(Some(&counter));
                    h.update_hits(|n| *n += 1).await?;
                    flush(&mut h).await?;
                }
                Ok::<_, crate::Error>(())
            })
        })
        .collect();
    for run in runs {
        run.await.unwrap().unwrap();
    }
    assert_eq!(*m.open::<Counter>(Some(&counter)).hits().await.unwrap(), 43);
}

/// Logs `user` in on `device` as an [`Account`]; returns the cookie.
async fn sign_in(m: &SessionManager, user: u64, device: &str) -> String {
    let mut h = m.open::<Account>(None);
    h.set_user_id(user);
    h.set_device(device.into());
    assert_eq!(flush(&mut h).await.unwrap(), Outcome::Created);
    cookie_token(&mut h)
}

/// The devices of `user`'s live sessions, sorted, as seen from `cookie`'s
/// request, with the current one marked `*`.
async fn devices(m: &SessionManager, cookie: &str, user: u64) -> Vec<String> {
    let h = m.open::<Account>(Some(cookie));
    let mut found: Vec<String> = h
        .sessions_by_user_id(&user)
        .await
        .unwrap()
        .iter()
        .map(|s| {
            let device: String = s.field("device").unwrap();
            assert!(s.created_at() > 0 && s.last_seen() >= s.created_at());
            assert!(s.expires_at() > s.last_seen());
            if s.is_current() {
                format!("{device}*")
            } else {
                device
            }
        })
        .collect();
    found.sort();
    found
}

/// "Log out everywhere": a user's sessions are listed from any one of
/// them; ending all but the current one leaves it and every other user's
/// sessions intact; a request in flight on an ended session cannot bring
/// it back; ending all ends the current one too.
pub async fn log_out_everywhere_ends_a_users_other_sessions(store: Arc<dyn SessionStore>) {
    let m = manager(store.clone());
    let s = &*store;
    let laptop = sign_in(&m, 42, "laptop").await;
    let phone = sign_in(&m, 42, "phone").await;
    let tablet = sign_in(&m, 42, "tablet").await;
    let other_user = sign_in(&m, 7, "desk").await;
    assert_eq!(
        devices(&m, &laptop, 42).await,
        ["laptop*", "phone", "tablet"]
    );
    assert_eq!(devices(&m, &laptop, 7).await, ["desk"]);

    // A request on the phone, in flight: it has loaded the session.
    let mut in_flight = m.open::<Account>(Some(&phone));
    assert_eq!(*in_flight.device().await.unwrap(), "phone");

    let mut h = m.open::<Account>(Some(&laptop));
    let n = statements(s, async {
        assert_eq!(h.destroy_other_sessions_by_user_id(&42).await.unwrap(), 2);
    })
    .await;
    assert_eq!(n, 1, "ending the other sessions is one statement");
    assert_eq!(flush(&mut h).await.unwrap(), Outcome::Unchanged);

    // The in-flight request's write is refused, and the phone stays out.
    in_flight.set_device("phone, renamed".into());
    assert_eq!(flush(&mut in_flight).await.unwrap(), Outcome::Interrupted);
    for ended in [&phone, &tablet] {
        let h = m.open::<Account>(Some(ended));
        assert_eq!(*h.user_id().await.unwrap(), 0);
        assert!(h.is_new());
    }
    assert_eq!(devices(&m, &laptop, 42).await, ["laptop*"]);
    assert_eq!(devices(&m, &other_user, 7).await, ["desk*"]);
    assert_eq!(
        *m.open::<Account>(Some(&laptop)).device().await.unwrap(),
        "laptop"
    );

    // All of them, this one included: it is destroyed like `destroy()`.
    let phone = sign_in(&m, 42, "phone").await;
    let mut h = m.open::<Account>(Some(&laptop));
    assert_eq!(h.destroy_sessions_by_user_id(&42).await.unwrap(), 2);
    assert!(h.is_destroyed());
    assert_eq!(flush(&mut h).await.unwrap(), Outcome::Unchanged);
    assert_eq!(
        crate::schema::SessionHandle::state(&h)
            .request()
            .take_cookie_action(),
        Some(CookieAction::Remove)
    );
    assert!(devices(&m, &phone, 42).await.is_empty());
    assert_eq!(devices(&m, &other_user, 7).await, ["desk*"]);

    // Another user's request ending user 7's sessions keeps its own.
    let mut admin = m.open::<Account>(Some(&laptop));
    assert_eq!(admin.destroy_sessions_by_user_id(&7).await.unwrap(), 1);
    assert!(!admin.is_destroyed());
    let h = m.open::<Account>(Some(&other_user));
    assert_eq!(*h.user_id().await.unwrap(), 0);
    assert!(h.is_new());
}

/// The index follows the indexed field's writes and nothing else does:
/// a change of the value moves the session to the new value, a removal
/// or a `clear` takes it out, a regenerate keeps it (under the new key),
/// writes of other fields cost what they cost without an index, and with
/// `encryption_keys` the index is keyed and survives a rotation.
pub async fn indexed_fields_follow_their_writes(store: Arc<dyn SessionStore>) {
    let m = manager(store.clone());
    let s = &*store;
    let moved = sign_in(&m, 42, "moved").await;
    let removed = sign_in(&m, 42, "removed").await;
    let cleared = sign_in(&m, 42, "cleared").await;
    let renamed = sign_in(&m, 42, "renamed").await;

    let mut h = m.open::<Account>(Some(&moved));
    h.set_user_id(43);
    flush(&mut h).await.unwrap();
    let mut h = m.open::<Account>(Some(&removed));
    h.remove_user_id();
    flush(&mut h).await.unwrap();
    let mut h = m.open::<Account>(Some(&cleared));
    h.clear();
    h.set_device("cleared".into());
    flush(&mut h).await.unwrap();
    let mut h = m.open::<Account>(Some(&renamed));
    h.regenerate();
    h.set_device("renamed".into());
    flush(&mut h).await.unwrap();
    let renamed = cookie_token(&mut h);

    assert_eq!(devices(&m, &renamed, 42).await, ["renamed*"]);
    assert_eq!(devices(&m, &renamed, 43).await, ["moved"]);
    let found = m
        .open::<Account>(Some(&renamed))
        .sessions_by_user_id(&42)
        .await
        .unwrap();
    assert_eq!(
        found[0].id(),
        Token::parse(&renamed).unwrap().store_key(),
        "listed under its new key"
    );

    // A write of a field that is not indexed costs what it costs without
    // an index: the load and one write.
    let n = statements(s, async {
        let mut h = m.open::<Account>(Some(&renamed));
        h.device_mut().await.unwrap().push('!');
        assert_eq!(flush(&mut h).await.unwrap(), Outcome::Saved);
    })
    .await;
    assert_eq!(n, 2, "a plain field's write");

    // An indexed field written by `update_x` (versioned) is indexed too.
    let mut h = m.open::<Account>(Some(&renamed));
    h.update_team(|t| *t = 5).await.unwrap();
    flush(&mut h).await.unwrap();
    let found = m
        .open::<Account>(Some(&moved))
        .sessions_by_team(&5)
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(
        found[0].field::<String>("device").as_deref(),
        Some("renamed!")
    );

    // Keyed by the encryption key: a rotated list finds entries written
    // under the old key.
    let old = sealed_manager(store.clone(), &[1]);
    let first = sign_in(&old, 99, "first").await;
    sign_in(&old, 99, "second").await;
    let rotated = sealed_manager(store.clone(), &[2, 1]);
    assert_eq!(devices(&rotated, &first, 99).await, ["first*", "second"]);
    assert!(
        devices(&m, &first, 99).await.is_empty(),
        "unkeyed digests differ"
    );
    let mut h = rotated.open::<Account>(Some(&first));
    assert_eq!(h.destroy_other_sessions_by_user_id(&99).await.unwrap(), 1);
    assert_eq!(devices(&rotated, &first, 99).await, ["first*"]);
}
