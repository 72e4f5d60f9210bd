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

use crate::codec::JsonCodec;
use crate::config::Config;
use crate::error::{BoxError, Result};
use crate::manager::{now, SessionManager};
use crate::schema::{FieldDef, SessionData, SessionHandle};
use crate::state::{flush, CookieAction, Outcome, SessionState, Slot};
use crate::store::{Changes, ExpiryUpdate, Saved, SessionStore, Validity};
use crate::token::{StoreKey, Token};

/// A session type written out by hand the way `#[derive(Session)]` writes
/// it, so this crate can test the whole flow without the proc-macro:
/// `user: Option<u64>`, `cart: Vec<String>`, `visits: u32`, and a deferred
/// `history: Vec<String>`.
#[derive(Debug)]
pub struct Cart;

type CartSlots = (
    Slot<Option<u64>>,
    Slot<Vec<String>>,
    Slot<u32>,
    Slot<Vec<String>>,
);

/// The typed handle of [`Cart`].
#[derive(Debug)]
pub struct CartHandle {
    state: SessionState,
    slots: CartSlots,
}

impl SessionData for Cart {
    const FIELDS: &'static [FieldDef] = &[
        FieldDef {
            name: "user",
            deferred: false,
        },
        FieldDef {
            name: "cart",
            deferred: false,
        },
        FieldDef {
            name: "visits",
            deferred: false,
        },
        FieldDef {
            name: "history",
            deferred: true,
        },
    ];
    const DEFERRED: &'static [&'static str] = &["history"];
    type Codec = JsonCodec;
    type Handle = CartHandle;
}

impl SessionHandle for CartHandle {
    type Data = Cart;

    fn from_state(state: SessionState) -> Self {
        CartHandle {
            state,
            slots: Default::default(),
        }
    }

    fn state(&self) -> &SessionState {
        &self.state
    }

    fn state_mut(&mut self) -> &mut SessionState {
        &mut self.state
    }

    fn encode_field(&self, index: usize) -> Option<Result<Vec<u8>, BoxError>> {
        match index {
            0 => self.slots.0.encode::<JsonCodec>(),
            1 => self.slots.1.encode::<JsonCodec>(),
            2 => self.slots.2.encode::<JsonCodec>(),
            3 => self.slots.3.encode::<JsonCodec>(),
            _ => None,
        }
    }
}

#[allow(missing_docs)]
impl CartHandle {
    pub async fn user(&self) -> Result<&Option<u64>> {
        self.slots
            .0
            .get::<JsonCodec>(&self.state, 0, Default::default)
            .await
    }
    pub fn set_user(&mut self, v: Option<u64>) {
        self.slots.0.set(&mut self.state, 0, v)
    }
    pub async fn cart(&self) -> Result<&Vec<String>> {
        self.slots
            .1
            .get::<JsonCodec>(&self.state, 1, Default::default)
            .await
    }
    pub async fn cart_mut(&mut self) -> Result<&mut Vec<String>> {
        self.slots
            .1
            .get_mut::<JsonCodec>(&mut self.state, 1, Default::default)
            .await
    }
    pub fn remove_cart(&mut self) {
        self.slots.1.remove(&mut self.state, 1, Default::default)
    }
    pub async fn visits(&self) -> Result<&u32> {
        self.slots
            .2
            .get::<JsonCodec>(&self.state, 2, Default::default)
            .await
    }
    pub async fn visits_mut(&mut self) -> Result<&mut u32> {
        self.slots
            .2
            .get_mut::<JsonCodec>(&mut self.state, 2, Default::default)
            .await
    }
    pub fn set_visits(&mut self, v: u32) {
        self.slots.2.set(&mut self.state, 2, v)
    }
    pub async fn history(&self) -> Result<&Vec<String>> {
        self.slots
            .3
            .get::<JsonCodec>(&self.state, 3, Default::default)
            .await
    }
    pub fn set_history(&mut self, v: Vec<String>) {
        self.slots.3.set(&mut self.state, 3, v)
    }
    pub fn state_ref(&self) -> &SessionState {
        &self.state
    }
    pub fn state_mut_ref(&mut self) -> &mut SessionState {
        &mut self.state
    }
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
            touch_never_shortens,
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

/// The teardown of stores that need none.
pub async fn no_teardown<S>(_: &S) {}

fn at() -> Validity {
    let now = now();
    Validity {
        now,
        created_after: now - 1_000_000,
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
    assert!(store.create(&key, t, t + 3600, fields).await.unwrap());
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
            t,
            t + 60,
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
        .create(&key, t, t + 60, &[("a", b"2".to_vec())])
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
    store.destroy(&key).await.unwrap();
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
        .create(&expired, t - 100, t - 1, &[("user", b"1".to_vec())])
        .await
        .unwrap());
    assert_eq!(
        store.save(&expired, &changes, at()).await.unwrap(),
        Saved::Gone
    );
    // destroying twice is fine
    store.destroy(&key).await.unwrap();
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
        expiry: None,
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
        .create(&idle, t - 100, t, &[("a", b"1".to_vec())])
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
        .create(&old, t - 1000, t + 1000, &[("a", b"1".to_vec())])
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
    assert!(
        !store.rename(&idle, &key(), v).await.unwrap(),
        "an expired session cannot be renamed"
    );
}

/// `rename` moves the data to the new key; the old key is dead.
pub async fn rename_moves_data(store: Arc<dyn SessionStore>) {
    let from = make(&*store, &[("a", b"1".to_vec())]).await;
    let to = key();
    assert!(store.rename(&from, &to, at()).await.unwrap());
    assert!(store.load(&from, &[], at()).await.unwrap().is_none());
    let record = store.load(&to, &[], at()).await.unwrap().unwrap();
    assert_eq!(field(&record.fields, "a"), Some(&b"1"[..]));
    assert!(
        !store.rename(&from, &key(), at()).await.unwrap(),
        "renaming a missing session is false"
    );
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
        .create(&key, t, t + 1000, &[("a", b"1".to_vec())])
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
        expiry: Some(ExpiryUpdate::Set(t + 100)),
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
            .create(&k, t - 100, t - 10, &[("a", b"1".to_vec())])
            .await
            .unwrap());
        expired.push(k);
    }
    let live = make(&*store, &[("a", b"1".to_vec())]).await;
    assert_eq!(store.delete_expired(t, 2).await.unwrap(), 2);
    assert_eq!(store.delete_expired(t, 2).await.unwrap(), 2);
    assert_eq!(store.delete_expired(t, 2).await.unwrap(), 1);
    assert_eq!(store.delete_expired(t, 2).await.unwrap(), 0);
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
    let key = make(&*store, &[("bin", value.clone()), ("empty", Vec::new())]).await;
    let record = store.load(&key, &[], at()).await.unwrap().unwrap();
    assert_eq!(field(&record.fields, "bin"), Some(value.as_slice()));
    assert_eq!(field(&record.fields, "empty"), Some(&b""[..]));
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

fn cookie_token(handle: &mut CartHandle) -> String {
    match handle.state_mut_ref().take_cookie_action() {
        Some(CookieAction::Set { token, .. }) => token.to_cookie_value(),
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
    assert_eq!(unused.state_mut_ref().take_cookie_action(), None);

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
        read.state_mut_ref().take_cookie_action(),
        None,
        "a read sends no cookie"
    );

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
        logout.state_mut_ref().destroy().await.unwrap();
        assert_eq!(flush(&mut logout).await.unwrap(), Outcome::Unchanged);
    })
    .await;
    assert_eq!(n, 1);
    assert_eq!(
        logout.state_mut_ref().take_cookie_action(),
        Some(CookieAction::Remove)
    );
    let mut after = m.open::<Cart>(Some(&cookie));
    assert_eq!(
        *after.user().await.unwrap(),
        None,
        "destroyed session is gone"
    );
    assert!(after.state_ref().is_new());
    assert_eq!(flush(&mut after).await.unwrap(), Outcome::Unchanged);
    assert_eq!(
        after.state_mut_ref().take_cookie_action(),
        Some(CookieAction::Remove),
        "a dead cookie is removed"
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
    login.state_mut_ref().regenerate();
    login.set_user(Some(1));
    let n = statements(&*store, async {
        assert_eq!(flush(&mut login).await.unwrap(), Outcome::Saved);
    })
    .await;
    assert_eq!(n, 2, "rename + write");
    let new = cookie_token(&mut login);
    assert_ne!(old, new);

    let fresh = m.open::<Cart>(Some(&new));
    assert_eq!(*fresh.user().await.unwrap(), Some(1));
    assert_eq!(*fresh.cart().await.unwrap(), ["apple"]);
    let stale = m.open::<Cart>(Some(&old));
    assert_eq!(*stale.user().await.unwrap(), None);
    assert!(stale.cart().await.unwrap().is_empty());
    assert!(stale.state_ref().is_new());
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
    logout.state_mut_ref().destroy().await.unwrap();

    assert_eq!(flush(&mut slow).await.unwrap(), Outcome::Interrupted);
    assert_eq!(
        slow.state_mut_ref().take_cookie_action(),
        Some(CookieAction::Remove)
    );
    assert_eq!(flush(&mut blind).await.unwrap(), Outcome::Interrupted);
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
/// interleaving, once the logout is done the session stays gone.
pub async fn writes_racing_a_destroy_never_resurrect(store: Arc<dyn SessionStore>) {
    for round in 0..5 {
        let key = make(&*store, &[("user", b"1".to_vec())]).await;
        let writers: Vec<_> = (0..8)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    let mut gone = 0;
                    for j in 0..10 {
                        let value = format!("{round}-{i}-{j}").into_bytes();
                        let changes = Changes {
                            upsert: vec![("cart", value)],
                            ..Changes::default()
                        };
                        if store.save(&key, &changes, at()).await.unwrap() == Saved::Gone {
                            gone += 1;
                        }
                        tokio::task::yield_now().await;
                    }
                    gone
                })
            })
            .collect();
        tokio::task::yield_now().await;
        store.destroy(&key).await.unwrap();
        for w in writers {
            w.await.unwrap();
        }
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
#[cfg(feature = "sql")]
pub async fn sequential_requests_reuse_one_connection<B: crate::store::sql::Backend>(
    store: Arc<crate::store::sql::SqlStore<B>>,
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
        store.idle_connections(),
        Some(1),
        "every statement went back to the pool and the next one reused it"
    );
}
