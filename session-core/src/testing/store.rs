//! The store contract, checked on the store alone: what `load`, `create`,
//! `save`, `rename`, `destroy` and cleanup must do, and what they must never
//! do (resurrect, shorten, return the expired).

use super::*;

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
            let previous = store.previous(old, now()).await.unwrap().expect("replaced");
            assert_eq!(previous.current, current, "names the session's key today");
            assert_eq!(previous.reason, Replaced::Regenerated);
            assert!(previous.within_grace);
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
    let mut reported = Vec::new();
    for expected in [2, 2, 1, 0] {
        let ended = store.delete_expired(v(t), 2).await.unwrap();
        assert_eq!(ended.len(), expected, "batches of at most 2");
        for session in ended {
            assert_eq!(
                session.fields,
                [("a".to_string(), b"1".to_vec())],
                "an ended session comes back with its small fields (what its event is described by)"
            );
            reported.push(session.key);
        }
    }
    reported.sort();
    expired.sort();
    assert_eq!(reported, expired, "each expired session is reported once");
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
    let ended = store.delete_expired(v, 10).await.unwrap();
    assert_eq!(ended.iter().map(|e| e.key).collect::<Vec<_>>(), [old]);
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

/// After a complete cleanup pass, a store that counts its live sessions
/// (`count_live`: the `sessions_live` gauge) counts exactly those alive.
pub async fn live_sessions_are_counted_after_a_cleanup_pass(store: Arc<dyn SessionStore>) {
    let t = now();
    for _ in 0..3 {
        make(&*store, &[("a", b"1".to_vec())]).await;
    }
    for _ in 0..2 {
        assert!(store
            .create(&key(), ns(t - 100, t - 10), &[])
            .await
            .unwrap());
    }
    // One pass, in batches smaller than what it deletes.
    let mut ended = 0;
    loop {
        let batch = store.delete_expired(at(), 1).await.unwrap();
        ended += batch.len();
        if batch.is_empty() {
            break;
        }
    }
    assert_eq!(ended, 2);
    let counted = store.count_live(at()).await.unwrap();
    if let Some(live) = counted {
        assert_eq!(live, 3, "the live sessions, and only they");
    }
    // Every store of this crate counts (a store of its own may not).
    let ours = [
        "memory",
        "mysql",
        "postgres",
        "sqlite",
        "redis",
        "redis-cluster",
    ];
    assert!(
        counted.is_some() || !ours.contains(&store.name()),
        "{} counts its live sessions",
        store.name()
    );
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

/// `destroy_one` checks the session's index entry and deletes in one
/// step: a tag the session does not hold ends nothing, the one it holds
/// ends it (its entry goes with it), and a second call finds nothing.
pub async fn destroy_one_checks_the_index_entry(store: Arc<dyn SessionStore>) {
    let indexes = store
        .indexes()
        .expect("the suite's index checks need a store with indexes");
    let key = make(&*store, &[("user", b"42".to_vec())]).await;
    let (mine, theirs) = ([1u8; 32], [2u8; 32]);
    let changes = Changes {
        index: vec![crate::store::IndexUpdate {
            name: "user",
            tag: Some(mine),
        }],
        ..Changes::default()
    };
    assert_eq!(
        store.save(&key, &changes, at()).await.unwrap(),
        Saved::Saved
    );
    assert!(!indexes.destroy_one("user", &[theirs], &key).await.unwrap());
    assert!(!indexes.destroy_one("other", &[mine], &key).await.unwrap());
    assert!(
        store.load(&key, &[], at()).await.unwrap().is_some(),
        "left alone"
    );
    assert!(indexes
        .destroy_one("user", &[theirs, mine], &key)
        .await
        .unwrap());
    assert_eq!(store.load(&key, &[], at()).await.unwrap(), None);
    assert!(indexes
        .find("user", &[mine], at())
        .await
        .unwrap()
        .is_empty());
    assert!(!indexes.destroy_one("user", &[mine], &key).await.unwrap());
}

/// Cleanups racing over one database, on two store instances (`a` and
/// `b`, as two app instances would be) and two tasks each, report every
/// expired session exactly once between them: the statement that deletes
/// is the one that reports.
pub async fn racing_cleanups_report_each_session_once(
    a: Arc<dyn SessionStore>,
    b: Arc<dyn SessionStore>,
) {
    let t = now();
    let mut expired = Vec::new();
    for _ in 0..120 {
        let k = key();
        assert!(a
            .create(&k, ns(t - 100, t - 10), &[("user", b"7".to_vec())])
            .await
            .unwrap());
        expired.push(k);
    }
    let live = make(&*b, &[("user", b"8".to_vec())]).await;
    let cleaners: Vec<_> = [a.clone(), b.clone(), a.clone(), b.clone()]
        .into_iter()
        .map(|store| {
            tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let ended = store.delete_expired(v(t), 7).await.unwrap();
                    if ended.is_empty() {
                        return mine;
                    }
                    mine.extend(ended.into_iter().map(|e| e.key));
                }
            })
        })
        .collect();
    let mut reported = Vec::new();
    let mut by_cleaner = Vec::new();
    for cleaner in cleaners {
        let mine = cleaner.await.unwrap();
        by_cleaner.push(mine.len());
        reported.extend(mine);
    }
    assert_eq!(
        reported.len(),
        expired.len(),
        "every expired session reported, none twice (per cleaner: {by_cleaner:?})"
    );
    reported.sort();
    expired.sort();
    assert_eq!(reported, expired);
    assert!(a.load(&live, &[], at()).await.unwrap().is_some());
    assert!(a.delete_expired(v(t), 7).await.unwrap().is_empty());
}
