//! Encryption at rest and indexed fields ("log out everywhere").

use super::*;

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
    // MySQL has no `DELETE … RETURNING`: the statement that reports which
    // sessions ended is a locking SELECT, then the DELETE, in one
    // transaction. A Redis Cluster keeps the sessions on their own nodes:
    // the index page, a script per session on its node, the removal of the
    // ended ones from the index, and the wait for the replicas.
    let expected = match s.name() {
        "mysql" => 2,
        "redis-cluster" => 6,
        _ => 1,
    };
    assert_eq!(
        n, expected,
        "ending the other sessions is one statement (MySQL: two in one transaction)"
    );
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
        Token::parse(&renamed).unwrap().store_key().id(),
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

/// "Sign out this device": the devices page lists each session with an
/// opaque id; sending one back ends exactly that session, even with a
/// request of it in flight, and only if it holds the value given (another
/// user's id, or a made-up one, ends nothing); the current session's own
/// id destroys it as `destroy()` does.
pub async fn signing_out_one_device_ends_exactly_that_one(store: Arc<dyn SessionStore>) {
    let m = manager(store.clone());
    let laptop = sign_in(&m, 42, "laptop").await;
    let phone = sign_in(&m, 42, "phone").await;
    let tablet = sign_in(&m, 42, "tablet").await;
    let desk = sign_in(&m, 7, "desk").await;
    let id_of = |cookie: &str| Token::parse(cookie).unwrap().store_key().id();
    let listed: Vec<(crate::SessionId, String)> = m
        .open::<Account>(Some(&laptop))
        .sessions_by_user_id(&42)
        .await
        .unwrap()
        .iter()
        .map(|s| (s.id(), s.data().device))
        .collect();
    let phone_id = listed.iter().find(|(_, d)| d == "phone").unwrap().0;
    assert_eq!(phone_id, id_of(&phone));
    // The id a page prints is the one it reads back.
    assert_eq!(phone_id.to_string().parse(), Ok(phone_id));

    let mut in_flight = m.open::<Account>(Some(&phone));
    assert_eq!(*in_flight.device().await.unwrap(), "phone");
    let mut h = m.open::<Account>(Some(&laptop));
    assert!(h.destroy_session_by_user_id(&42, &phone_id).await.unwrap());
    assert!(!h.is_destroyed());
    assert_eq!(flush(&mut h).await.unwrap(), Outcome::Unchanged);
    in_flight.set_device("phone, renamed".into());
    assert_eq!(flush(&mut in_flight).await.unwrap(), Outcome::Interrupted);
    let h = m.open::<Account>(Some(&phone));
    assert_eq!(*h.user_id().await.unwrap(), 0, "the phone is signed out");
    assert!(h.is_new());
    assert_eq!(devices(&m, &laptop, 42).await, ["laptop*", "tablet"]);

    // Once is enough: the id names nothing now.
    let mut h = m.open::<Account>(Some(&laptop));
    assert!(!h.destroy_session_by_user_id(&42, &phone_id).await.unwrap());
    // Another user's session, by its id under this user's value: nothing.
    assert!(!h
        .destroy_session_by_user_id(&42, &id_of(&desk))
        .await
        .unwrap());
    assert_eq!(devices(&m, &desk, 7).await, ["desk*"]);
    // A made-up id: nothing.
    let made_up: crate::SessionId = "00112233445566778899aabbccddeeff".parse().unwrap();
    assert!(!h.destroy_session_by_user_id(&42, &made_up).await.unwrap());
    assert_eq!(devices(&m, &laptop, 42).await, ["laptop*", "tablet"]);

    // This request's own id: destroyed like `destroy()`.
    let mut h = m.open::<Account>(Some(&tablet));
    assert!(h
        .destroy_session_by_user_id(&42, &id_of(&tablet))
        .await
        .unwrap());
    assert!(h.is_destroyed());
    assert_eq!(flush(&mut h).await.unwrap(), Outcome::Unchanged);
    assert_eq!(
        crate::schema::SessionHandle::state(&h)
            .request()
            .take_cookie_action(),
        Some(CookieAction::Remove)
    );
    assert_eq!(devices(&m, &laptop, 42).await, ["laptop*"]);
}

/// With `device_info`, a new session keeps the device it began on (user
/// agent, coarse address), listed by `sessions_by_x()`; a login
/// (regenerate) keeps it; under `encryption_keys` it is sealed like the
/// values; without the option nothing is kept.
pub async fn devices_are_listed_where_they_began(store: Arc<dyn SessionStore>) {
    let agent = "Mozilla/5.0 (X11; Linux x86_64) Device-Test/1";
    let device = || crate::DeviceInfo::new(Some(agent), Some("198.51.100.23".parse().unwrap()));
    for sealed in [false, true] {
        let mut m = if sealed {
            sealed_manager(store.clone(), &[9])
        } else {
            manager(store.clone())
        };
        let mut config = m.config().clone();
        config.device_info = true;
        m = SessionManager::new(store.clone(), config).unwrap();
        let request = m.begin(None);
        request.set_device(device());
        let mut h = request.open::<Account>();
        h.set_user_id(5);
        h.set_device("laptop".into());
        assert_eq!(flush(&mut h).await.unwrap(), Outcome::Created);
        let cookie = cookie_token(&mut h);
        // A login later keeps where the session began.
        let mut login = m.open::<Account>(Some(&cookie));
        login.regenerate();
        login.set_user_id(6);
        assert_eq!(flush(&mut login).await.unwrap(), Outcome::Saved);
        let cookie = cookie_token(&mut login);
        let listed = m
            .open::<Account>(Some(&cookie))
            .sessions_by_user_id(&6)
            .await
            .unwrap();
        assert_eq!(listed.len(), 1);
        let seen = listed[0].device().expect("the device is listed");
        assert_eq!(seen.user_agent.as_deref(), Some(agent));
        assert_eq!(seen.address.as_deref(), Some("198.51.100.0/24"));
        let stored = raw_fields(&*store, &cookie).await;
        let bytes = field(&stored, crate::state::DEVICE).expect("kept in its field");
        assert_eq!(
            contains(bytes, b"Device-Test"),
            !sealed,
            "sealed under encryption keys, as values are"
        );
    }
    // Off: nothing kept, whatever the integration says.
    let m = manager(store.clone());
    let request = m.begin(None);
    request.set_device(device());
    let mut h = request.open::<Account>();
    h.set_user_id(8);
    flush(&mut h).await.unwrap();
    let listed = m
        .open::<Account>(None)
        .sessions_by_user_id(&8)
        .await
        .unwrap();
    assert_eq!(listed[0].device(), None);
    assert_eq!(
        field(
            &raw_fields(&*store, &cookie_token(&mut h)).await,
            crate::state::DEVICE
        ),
        None
    );
}

/// `#[session(index, max_sessions = 2)]`: six logins of one user at once
/// leave exactly two live sessions, and a later login ends the oldest;
/// with `when_full = "refuse"`, six at once leave exactly two, a refused
/// one answers `TooManySessions` with its session ended, and a later login
/// is refused while the two live.
pub async fn max_sessions_holds_under_parallel_logins(store: Arc<dyn SessionStore>) {
    let m = manager(store.clone());
    let logins = parallel_logins::<Seat>(&m, |h| h.set_user(1)).await;
    for (outcome, _) in logins {
        assert_eq!(outcome.unwrap(), Outcome::Created);
    }
    let live = m.open::<Seat>(None).sessions_by_user(&1).await.unwrap();
    assert_eq!(live.len(), 2, "six logins at once leave two");
    // A later login ends the oldest of the two.
    let later = m.begin_at(None, now() + 5);
    let mut h = later.open::<Seat>();
    h.set_user(1);
    assert_eq!(flush(&mut h).await.unwrap(), Outcome::Created);
    let newest = cookie_token(&mut h);
    let after: Vec<crate::SessionId> = m
        .open::<Seat>(None)
        .sessions_by_user(&1)
        .await
        .unwrap()
        .iter()
        .map(|s| s.id())
        .collect();
    assert_eq!(after.len(), 2);
    assert!(after.contains(&Token::parse(&newest).unwrap().store_key().id()));
    let ended: Vec<_> = live.iter().filter(|s| !after.contains(&s.id())).collect();
    assert_eq!(ended.len(), 1, "exactly one of the earlier two ended");

    // Refusing: six at once, two stay.
    let logins = parallel_logins::<Door>(&m, |h| h.set_user(2)).await;
    let mut refused = 0;
    for login in logins {
        match login {
            (Ok(outcome), _) => assert_eq!(outcome, Outcome::Created),
            (Err(crate::Error::TooManySessions { field, max }), cookie) => {
                assert_eq!((field, max), ("user", 2));
                // Ended: a new session's cookie is never sent, an older
                // one's is removed.
                assert!(
                    matches!(cookie, None | Some(CookieAction::Remove)),
                    "a refused session is ended: {cookie:?}"
                );
                refused += 1;
            }
            (Err(other), _) => panic!("{other:?}"),
        }
    }
    // Each login ranks after its own write; a login that ranked itself
    // within the limit before a concurrent one with an earlier time wrote
    // is ended by that one's ranking instead of refused. So: at most the
    // four past the limit refused, and exactly two left.
    assert!(refused <= 4, "{refused} refused");
    let live = m.open::<Door>(None).sessions_by_user(&2).await.unwrap();
    assert_eq!(live.len(), 2, "six logins at once leave two");
    let mut late = m.begin_at(None, now() + 5).open::<Door>();
    late.set_user(2);
    assert!(matches!(
        flush(&mut late).await,
        Err(crate::Error::TooManySessions { .. })
    ));
    assert_eq!(
        m.open::<Door>(None)
            .sessions_by_user(&2)
            .await
            .unwrap()
            .len(),
        2
    );
}

/// Six logins at once, each a new session of `T` that `login` gives the
/// value: each one's flush outcome and cookie action.
async fn parallel_logins<T: crate::SessionData>(
    m: &SessionManager,
    login: fn(&mut T::Handle),
) -> Vec<(crate::Result<Outcome>, Option<CookieAction>)> {
    let runs: Vec<_> = (0..6)
        .map(|_| {
            let m = m.clone();
            tokio::spawn(async move {
                let mut h = m.open::<T>(None);
                login(&mut h);
                let outcome = flush(&mut h).await;
                let cookie = crate::schema::SessionHandle::state(&h)
                    .request()
                    .take_cookie_action();
                (outcome, cookie)
            })
        })
        .collect();
    let mut done = Vec::new();
    for run in runs {
        done.push(run.await.unwrap());
    }
    done
}
