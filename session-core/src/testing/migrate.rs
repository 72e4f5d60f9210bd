//! Checks of earlier field types (`#[session(from = Old)]`): a session
//! written by one release of a type is read by a later one whose fields
//! were renamed and retyped; each value is converted on read, written in
//! its new type only when the request writes it (or at once with
//! `rewrite_on_read`), concurrent requests and sealed values included, and
//! a value whose conversion fails falls back with its bytes kept.

use super::*;

/// The stored bytes of field `name`, as the store holds them.
async fn stored(store: &dyn SessionStore, cookie: &str, name: &str) -> Option<Vec<u8>> {
    raw_fields(store, cookie)
        .await
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, bytes)| bytes)
}

fn tea(qty: u32) -> Item {
    Item {
        name: "tea".into(),
        qty,
    }
}

/// Read converted in the one load; a read, or a borrow that changes
/// nothing, writes nothing (the earlier bytes stay); a write stores the
/// new type, moving the old name in the same save; `update_x` converts
/// and writes by compare-and-set.
pub async fn a_retyped_field_reads_its_earlier_type_and_converts_on_write(
    store: Arc<dyn SessionStore>,
) {
    let m = manager(store.clone());
    let cookie = written_before(&m).await;
    let n = statements(&*store, async {
        let mut h = m.open::<Later>(Some(&cookie));
        assert_eq!(*h.items().await.unwrap(), vec![tea(1)]);
        assert_eq!(*h.visits().await.unwrap(), Visits { count: 3 });
        // A borrow that leaves the converted value as it is.
        h.items_mut().await.unwrap().retain(|_| true);
        assert_eq!(flush(&mut h).await.unwrap(), Outcome::Unchanged);
    })
    .await;
    assert_eq!(n, 1, "converted in the one load, nothing written");
    assert_eq!(
        stored(&*store, &cookie, "cart").await.as_deref(),
        Some(&b"[\"tea\"]"[..]),
        "the earlier bytes stay until the field is written"
    );

    let mut h = m.open::<Later>(Some(&cookie));
    h.items_mut().await.unwrap()[0].qty = 2;
    assert_eq!(flush(&mut h).await.unwrap(), Outcome::Saved);
    assert_eq!(stored(&*store, &cookie, "cart").await, None, "moved");
    assert_eq!(
        stored(&*store, &cookie, "items").await.as_deref(),
        Some(&br#"[{"name":"tea","qty":2}]"#[..])
    );

    let mut h = m.open::<Later>(Some(&cookie));
    h.update_visits(|v| v.count += 1).await.unwrap();
    flush(&mut h).await.unwrap();
    assert_eq!(
        stored(&*store, &cookie, "visits").await.as_deref(),
        Some(&br#"{"count":4}"#[..])
    );
    assert_eq!(stored(&*store, &cookie, "hits").await, None);

    let h = m.open::<Later>(Some(&cookie));
    assert_eq!(*h.items().await.unwrap(), vec![tea(2)]);
    assert_eq!(*h.visits().await.unwrap(), Visits { count: 4 });
}

/// With `rewrite_on_read`, the request that reads the value converted
/// writes it back in its new type (a read costs the load and that save),
/// and the next read decodes it as it is.
pub async fn a_field_read_converted_is_written_back_with_rewrite_on_read(
    store: Arc<dyn SessionStore>,
) {
    let m = manager(store.clone());
    let cookie = written_before(&m).await;
    let n = statements(&*store, async {
        let mut h = m.open::<Later>(Some(&cookie));
        assert_eq!(*h.user().await.unwrap(), Some(User { id: 1 }));
        assert_eq!(flush(&mut h).await.unwrap(), Outcome::Saved);
    })
    .await;
    assert_eq!(n, 2, "the load, then the write back");
    assert_eq!(
        stored(&*store, &cookie, "user").await.as_deref(),
        Some(&br#"{"id":1}"#[..])
    );
    // Fields not read stay as they were.
    assert_eq!(
        stored(&*store, &cookie, "cart").await.as_deref(),
        Some(&b"[\"tea\"]"[..])
    );
    let n = statements(&*store, async {
        let mut h = m.open::<Later>(Some(&cookie));
        assert_eq!(*h.user().await.unwrap(), Some(User { id: 1 }));
        assert_eq!(flush(&mut h).await.unwrap(), Outcome::Unchanged);
    })
    .await;
    assert_eq!(n, 1, "stored in its new type: nothing to write back");
}

/// Each release of a field converts into the next: a value of the first
/// goes through the second to the field's type.
pub async fn a_chain_of_earlier_types_converts_step_by_step(store: Arc<dyn SessionStore>) {
    let m = manager(store.clone());
    let mut first = m.open::<Ranked1>(None);
    first.set_tier(LevelNumber(2));
    flush(&mut first).await.unwrap();
    let first = cookie_token(&mut first);
    let mut second = m.open::<Ranked2>(None);
    second.set_tier(LevelName("silver".into()));
    flush(&mut second).await.unwrap();
    let second = cookie_token(&mut second);

    let h = m.open::<Later>(Some(&first));
    assert_eq!(*h.tier().await.unwrap(), Tier::Gold, "number → name → tier");
    let mut h = m.open::<Later>(Some(&second));
    assert_eq!(*h.tier().await.unwrap(), Tier::Silver, "name → tier");
    *h.tier_mut().await.unwrap() = Tier::Gold;
    flush(&mut h).await.unwrap();
    assert_eq!(
        stored(&*store, &second, "tier").await.as_deref(),
        Some(&b"\"Gold\""[..])
    );
}

/// A value of an earlier type whose conversion fails falls back to the
/// default (with a warning) and keeps its bytes until the field is really
/// changed; under `on_decode_error = "error"` the read is a decode error
/// naming the field.
pub async fn a_failed_conversion_falls_back_and_keeps_its_bytes(store: Arc<dyn SessionStore>) {
    let m = manager(store.clone());
    let mut old = m.open::<Ranked2>(None);
    old.set_tier(LevelName("platinum".into()));
    flush(&mut old).await.unwrap();
    let cookie = cookie_token(&mut old);

    let mut h = m.open::<Later>(Some(&cookie));
    assert_eq!(*h.tier().await.unwrap(), Tier::Bronze, "the default");
    // A borrow that changes nothing, and another field's write.
    let _ = h.tier_mut().await.unwrap();
    h.set_visits(Visits { count: 1 });
    assert_eq!(flush(&mut h).await.unwrap(), Outcome::Saved);
    assert_eq!(
        stored(&*store, &cookie, "tier").await.as_deref(),
        Some(&b"\"platinum\""[..]),
        "the bytes stay"
    );

    let strict = SessionManager::new(
        store.clone(),
        Config {
            on_decode_error: crate::config::OnDecodeError::Error,
            ..Config::default()
        },
    )
    .unwrap();
    let h = strict.open::<Later>(Some(&cookie));
    match h.tier().await {
        Err(crate::Error::Decode { field, source }) => {
            assert_eq!(field, "tier");
            assert!(
                !source.to_string().contains("platinum"),
                "the error never quotes the value: {source}"
            );
        }
        other => panic!("expected a decode error, got {other:?}"),
    }

    // A real change replaces the bytes.
    let mut h = m.open::<Later>(Some(&cookie));
    *h.tier_mut().await.unwrap() = Tier::Silver;
    flush(&mut h).await.unwrap();
    let h = m.open::<Later>(Some(&cookie));
    assert_eq!(*h.tier().await.unwrap(), Tier::Silver);
}

/// Requests that all loaded the earlier values before any wrote: a
/// plain write, two compare-and-set updates and a write back on read all
/// land, and nothing is counted twice or lost.
pub async fn requests_converting_fields_at_once_lose_nothing(store: Arc<dyn SessionStore>) {
    let m = manager(store.clone());
    let cookie = written_before(&m).await;
    let mut a = m.open::<Later>(Some(&cookie));
    let mut b = m.open::<Later>(Some(&cookie));
    let mut c = m.open::<Later>(Some(&cookie));
    let mut d = m.open::<Later>(Some(&cookie));
    for h in [&a, &b, &c] {
        assert_eq!(*h.visits().await.unwrap(), Visits { count: 3 });
    }
    assert_eq!(*d.user().await.unwrap(), Some(User { id: 1 }));
    a.items_mut().await.unwrap().push(Item {
        name: "jam".into(),
        qty: 1,
    });
    b.update_visits(|v| v.count += 1).await.unwrap();
    c.update_visits(|v| v.count += 10).await.unwrap();
    for h in [&mut a, &mut b, &mut c, &mut d] {
        flush(h).await.unwrap();
    }
    let h = m.open::<Later>(Some(&cookie));
    assert_eq!(
        *h.items().await.unwrap(),
        vec![
            tea(1),
            Item {
                name: "jam".into(),
                qty: 1
            }
        ]
    );
    assert_eq!(*h.visits().await.unwrap(), Visits { count: 14 });
    assert_eq!(*h.user().await.unwrap(), Some(User { id: 1 }));
    let mut names: Vec<String> = raw_fields(&*store, &cookie)
        .await
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    names.sort();
    assert_eq!(names, ["items", "user", "visits"]);
}

/// A value sealed in its earlier type under an earlier encryption key
/// opens, converts, and is sealed in its new type when written.
pub async fn retyped_sealed_fields_open_and_convert(store: Arc<dyn SessionStore>) {
    let old = sealed_manager(store.clone(), &[7]);
    let cookie = written_before(&old).await;
    // The next release seals with a new key and still opens the old one.
    let m = sealed_manager(store.clone(), &[8, 7]);
    let mut h = m.open::<Later>(Some(&cookie));
    assert_eq!(*h.items().await.unwrap(), vec![tea(1)]);
    assert_eq!(*h.user().await.unwrap(), Some(User { id: 1 }));
    h.items_mut().await.unwrap()[0].qty = 5;
    flush(&mut h).await.unwrap();
    let raw = stored(&*store, &cookie, "items").await.unwrap();
    assert!(!contains(&raw, b"tea"), "sealed in its new type");
    let h = m.open::<Later>(Some(&cookie));
    assert_eq!(*h.items().await.unwrap(), vec![tea(5)]);
    assert_eq!(*h.user().await.unwrap(), Some(User { id: 1 }));
    assert_eq!(*h.visits().await.unwrap(), Visits { count: 3 });
}

/// An indexed field renamed and retyped (`rewrite_on_read`): a session is
/// found by its new value once a request read it, which rewrote it under
/// the new name with its new entry, the old one gone.
pub async fn an_indexed_field_read_converted_is_found_by_its_new_value(
    store: Arc<dyn SessionStore>,
) {
    let m = manager(store.clone());
    let mut old = m.open::<Badge>(None);
    old.set_uid(7);
    flush(&mut old).await.unwrap();
    let cookie = cookie_token(&mut old);
    let holder = Holder { id: 7 };

    let h = m.open::<Ticket>(Some(&cookie));
    assert!(
        h.sessions_by_holder(&holder).await.unwrap().is_empty(),
        "stored in the old type: not found by the new value yet"
    );
    let mut h = m.open::<Ticket>(Some(&cookie));
    assert_eq!(*h.holder().await.unwrap(), holder);
    assert_eq!(flush(&mut h).await.unwrap(), Outcome::Saved, "rewritten");

    let h = m.open::<Ticket>(Some(&cookie));
    let found = h.sessions_by_holder(&holder).await.unwrap();
    assert_eq!(found.len(), 1);
    assert!(found[0].is_current());
    assert_eq!(found[0].data().holder, holder);
    assert_eq!(stored(&*store, &cookie, "uid").await, None, "moved");
    // The old entry went with the old name: the bare id finds nothing.
    let b = m.open::<Badge>(None);
    assert!(b.sessions_by_uid(&7).await.unwrap().is_empty());
    let mut h = m.open::<Ticket>(Some(&cookie));
    assert_eq!(h.destroy_sessions_by_holder(&holder).await.unwrap(), 1);
}
