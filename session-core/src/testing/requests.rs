//! Whole requests through the typed layer over a store: what each kind of
//! request costs, and what racing requests (logouts, regenerates, touches,
//! blind writes) leave stored.

use super::*;

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

    // destroy: 1 (on a Redis Cluster, 2: the destroy waits until a
    // replica has it, so that a failover cannot undo the logout)
    let mut logout = m.open::<Cart>(Some(&cookie));
    let n = statements(s, async {
        logout.destroy().await.unwrap();
        assert_eq!(flush(&mut logout).await.unwrap(), Outcome::Unchanged);
    })
    .await;
    assert_eq!(n, if s.name() == "redis-cluster" { 2 } else { 1 });
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
    // one transaction; memory, Redis: one call; a Redis Cluster, where the
    // new key is in another slot: the check that it is free, then the
    // protocol's three steps (the session has no index entry to move).
    let most = if store.name() == "redis-cluster" {
        4
    } else {
        3
    };
    assert!(
        (1..=most).contains(&n),
        "rename + write took {n} statements"
    );
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

/// Requests of one route (`begin_for`) load first only the fields earlier
/// requests of that route used: the same one statement, fewer fields. A
/// read of another field loads the rest (one more statement, once), with
/// the right values; writes keep every field they do not change; and a
/// session that ends between the two loads of a request has ended for it.
pub async fn a_route_loads_the_fields_it_used_before(store: Arc<dyn SessionStore>) {
    let m = manager(store.clone());
    let mut h = m.open::<Cart>(None);
    h.set_user(Some(7));
    h.set_cart(vec!["apple".into(), "pear".into()]);
    h.set_visits(3);
    assert_eq!(flush(&mut h).await.unwrap(), Outcome::Created);
    let c = cookie_token(&mut h);
    let (route, other) = (0x5eed_u64, 0x07e4_u64);
    let loaded = |store: &Arc<dyn SessionStore>| store.stats().fields_loaded;

    // The route's first request loads every non-deferred field.
    let h = m.begin_for(Some(&c), route).open::<Cart>();
    let before = loaded(&store);
    assert_eq!(*h.user().await.unwrap(), Some(7));
    assert_eq!(loaded(&store) - before, 3, "user, cart, visits");

    // Later ones load what it used: one statement, one field.
    let h = m.begin_for(Some(&c), route).open::<Cart>();
    let (before, statements) = (loaded(&store), store.stats().statements);
    assert_eq!(*h.user().await.unwrap(), Some(7));
    assert_eq!(store.stats().statements - statements, 1);
    assert_eq!(loaded(&store) - before, 1, "only user");

    // A field the route had not used: the rest, once, with its value.
    assert_eq!(*h.visits().await.unwrap(), 3);
    assert_eq!(*h.cart().await.unwrap(), vec!["apple", "pear"]);
    assert_eq!(
        store.stats().statements - statements,
        2,
        "one more load, once"
    );
    assert_eq!(loaded(&store) - before, 3);

    // The route learned it: user and visits (and cart) come first now.
    let mut h = m.begin_for(Some(&c), route).open::<Cart>();
    let statements = store.stats().statements;
    *h.visits_mut().await.unwrap() += 1;
    assert_eq!(flush(&mut h).await.unwrap(), Outcome::Saved);
    assert_eq!(
        store.stats().statements - statements,
        2,
        "the load and the write"
    );
    let check = m.begin_for(Some(&c), other).open::<Cart>();
    assert_eq!(*check.visits().await.unwrap(), 4);
    assert_eq!(*check.user().await.unwrap(), Some(7), "kept");
    assert_eq!(check.cart().await.unwrap().len(), 2, "kept");

    // A write of a field the first load did not fetch, after a read of one
    // it did: written, the others kept.
    let third = 0x7e57;
    let _ = m
        .begin_for(Some(&c), third)
        .open::<Cart>()
        .user()
        .await
        .unwrap();
    let mut h = m.begin_for(Some(&c), third).open::<Cart>();
    assert_eq!(*h.user().await.unwrap(), Some(7));
    h.cart_mut().await.unwrap().push("plum".into());
    assert_eq!(flush(&mut h).await.unwrap(), Outcome::Saved);
    let check = m.open::<Cart>(Some(&c));
    assert_eq!(check.cart().await.unwrap().len(), 3);
    assert_eq!(*check.visits().await.unwrap(), 4);

    // The session ends between the request's two loads: the rest finds it
    // gone, and the request's writes are dropped, never a fresh session.
    let mut h = m.begin_for(Some(&c), third).open::<Cart>();
    assert_eq!(*h.user().await.unwrap(), Some(7));
    let mut logout = m.open::<Cart>(Some(&c));
    logout.destroy().await.unwrap();
    assert_eq!(*h.visits().await.unwrap(), 0, "gone: the default");
    h.set_visits(9);
    assert_eq!(flush(&mut h).await.unwrap(), Outcome::Interrupted);
    assert_eq!(h.request().take_cookie_action(), None);

    // Encrypted values sealed before a regenerate open from either load.
    let m = sealed_manager(store.clone(), &[1]);
    let mut h = m.open::<Cart>(None);
    h.set_user(Some(8));
    h.set_visits(5);
    assert_eq!(flush(&mut h).await.unwrap(), Outcome::Created);
    let c = cookie_token(&mut h);
    let mut h = m.open::<Cart>(Some(&c));
    h.regenerate();
    assert_eq!(flush(&mut h).await.unwrap(), Outcome::Saved);
    let c = cookie_token(&mut h);
    let route = 0x5ea1;
    let first = m.begin_for(Some(&c), route).open::<Cart>();
    assert_eq!(*first.user().await.unwrap(), Some(8));
    let h = m.begin_for(Some(&c), route).open::<Cart>();
    assert_eq!(*h.user().await.unwrap(), Some(8), "the partial load opens");
    assert_eq!(*h.visits().await.unwrap(), 5, "the rest opens");
}
