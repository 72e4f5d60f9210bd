//! Checks of fields with a lifetime of their own (`#[session(ttl = …)]`):
//! a value reads as absent from the second its lifetime ends, counted
//! from its last write (and, `sliding`, its last read), on the store's
//! side too; at no extra statement on a read; through regenerates,
//! `clear()`, encryption and compare-and-set.

use super::*;

/// A new [`Timed`] session at `at` with `code` (ttl 10 s) and `sudo`
/// (sliding, 60 s) set; its cookie.
async fn timed(m: &SessionManager, at: i64) -> String {
    let mut h = m.open_at::<Timed>(None, at);
    h.set_user(Some(1));
    h.set_code("123456".into());
    h.set_sudo(true);
    assert_eq!(flush(&mut h).await.unwrap(), Outcome::Created);
    cookie_token(&mut h)
}

/// `code` and `sudo` as a request at `at` reads them, and what the request
/// cost.
async fn read_at(
    m: &SessionManager,
    store: &dyn SessionStore,
    cookie: &str,
    at: i64,
) -> ((String, bool), u64) {
    let mut seen = (String::new(), false);
    let n = statements(store, async {
        let mut h = m.open_at::<Timed>(Some(cookie), at);
        seen = (h.code().await.unwrap().clone(), *h.sudo().await.unwrap());
        flush(&mut h).await.unwrap();
    })
    .await;
    (seen, n)
}

/// The raw fields the store returns for the session at `at`.
async fn stored_at(store: &dyn SessionStore, cookie: &str, at: i64) -> Vec<String> {
    let key = Token::parse(cookie).unwrap().store_key();
    let mut names: Vec<String> = store
        .load(&key, &[], v(at))
        .await
        .unwrap()
        .expect("alive")
        .fields
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    names.sort();
    names
}

/// Written at t, a 10 s field reads at t + 9 and not at t + 10, and the
/// store itself no longer returns it then (nor by `load_only`); a read
/// costs its load alone and does not restart the clock; a write does.
pub async fn a_field_expires_at_the_edge_of_its_lifetime(store: Arc<dyn SessionStore>) {
    let m = manager(store.clone());
    let t0 = now();
    let cookie = timed(&m, t0).await;
    assert_eq!(
        read_at(&m, &*store, &cookie, t0 + 9).await,
        (("123456".into(), true), 1),
        "alive at its last second, for one statement"
    );
    assert_eq!(
        read_at(&m, &*store, &cookie, t0 + 10).await,
        ((String::new(), true), 1),
        "gone at its edge"
    );
    assert!(!stored_at(&*store, &cookie, t0 + 10)
        .await
        .contains(&"code".to_string()));
    assert!(stored_at(&*store, &cookie, t0 + 9)
        .await
        .contains(&"code".to_string()));
    let key = Token::parse(&cookie).unwrap().store_key();
    let only = store
        .load_only(&key, &["code", "@ttl:code"], v(t0 + 10))
        .await
        .unwrap()
        .unwrap();
    assert!(
        only.fields.iter().all(|(n, _)| n != "code"),
        "load_only neither"
    );

    // A write restarts the clock; a read did not.
    let mut h = m.open_at::<Timed>(Some(&cookie), t0 + 30);
    h.set_code("654321".into());
    flush(&mut h).await.unwrap();
    assert_eq!(read_at(&m, &*store, &cookie, t0 + 39).await.0 .0, "654321");
    assert_eq!(read_at(&m, &*store, &cookie, t0 + 40).await.0 .0, "");
}

/// A `sliding` field lives while it is read: a read with more than half
/// its lifetime left writes nothing; one with less restarts the clock (one
/// write); unread for its whole lifetime, it is gone.
pub async fn a_sliding_field_lives_while_it_is_read(store: Arc<dyn SessionStore>) {
    let m = manager(store.clone());
    let t0 = now();
    let cookie = timed(&m, t0).await;
    assert_eq!(
        read_at(&m, &*store, &cookie, t0 + 20).await,
        ((String::new(), true), 1)
    );
    let (seen, n) = read_at(&m, &*store, &cookie, t0 + 40).await;
    assert!(seen.1);
    assert_eq!(n, 2, "the read with less than half left restarts the clock");
    assert!(
        read_at(&m, &*store, &cookie, t0 + 99).await.0 .1,
        "alive until t0 + 40 + 60"
    );
    assert!(
        !read_at(&m, &*store, &cookie, t0 + 99 + 60).await.0 .1,
        "unread for 60 s: gone"
    );
}

/// A lifetime moves with its session through a regenerate, goes with
/// `clear()`, and works the same with values encrypted (the expiry, like
/// the session's own, is in the clear; the value sealed).
pub async fn lifetimes_survive_regenerate_clear_and_encryption(store: Arc<dyn SessionStore>) {
    let m = manager(store.clone());
    let t0 = now();
    let cookie = timed(&m, t0).await;
    let mut login = m.open_at::<Timed>(Some(&cookie), t0 + 1);
    login.set_user(Some(2));
    login.regenerate();
    assert_eq!(flush(&mut login).await.unwrap(), Outcome::Saved);
    let moved = cookie_token(&mut login);
    assert_eq!(read_at(&m, &*store, &moved, t0 + 9).await.0 .0, "123456");
    assert_eq!(read_at(&m, &*store, &moved, t0 + 10).await.0 .0, "");

    let mut h = m.open_at::<Timed>(Some(&moved), t0 + 11);
    h.clear();
    flush(&mut h).await.unwrap();
    let mut h = m.open_at::<Timed>(Some(&moved), t0 + 12);
    h.set_user(Some(2));
    flush(&mut h).await.unwrap();
    assert_eq!(
        stored_at(&*store, &moved, t0 + 12).await,
        vec!["user".to_string()],
        "nothing of the lifetimes is left"
    );

    let sealed = sealed_manager(store.clone(), &[4]);
    let cookie = timed(&sealed, t0).await;
    let raw = raw_fields(&*store, &cookie).await;
    let until = raw
        .iter()
        .find(|(n, _)| n == "@ttl:code")
        .map(|(_, v)| v.clone());
    assert_eq!(
        until,
        Some((t0 + 10).to_string().into_bytes()),
        "the expiry in the clear"
    );
    assert!(
        !contains(&raw.iter().find(|(n, _)| n == "code").unwrap().1, b"123456"),
        "the value sealed"
    );
    assert_eq!(
        read_at(&sealed, &*store, &cookie, t0 + 9).await.0 .0,
        "123456"
    );
    assert_eq!(read_at(&sealed, &*store, &cookie, t0 + 10).await.0 .0, "");
}

/// A versioned field past its lifetime reads as absent and is written
/// again by compare-and-set at the version the store still holds: no
/// conflict, and the old value is not carried into the new one.
pub async fn an_expired_versioned_field_is_written_again(store: Arc<dyn SessionStore>) {
    let m = manager(store.clone());
    let t0 = now();
    let cookie = timed(&m, t0).await;
    let mut h = m.open_at::<Timed>(Some(&cookie), t0);
    h.update_tries(|t| *t += 3).await.unwrap();
    flush(&mut h).await.unwrap();
    let mut h = m.open_at::<Timed>(Some(&cookie), t0 + 10);
    assert_eq!(*h.tries().await.unwrap(), 0, "expired");
    h.update_tries(|t| *t += 1).await.unwrap();
    flush(&mut h).await.unwrap();
    let h = m.open_at::<Timed>(Some(&cookie), t0 + 11);
    assert_eq!(*h.tries().await.unwrap(), 1, "counted afresh");
    // A plain write at the end of a request, after another expiry.
    let mut h = m.open_at::<Timed>(Some(&cookie), t0 + 25);
    assert_eq!(*h.tries().await.unwrap(), 0);
    *h.tries_mut().await.unwrap() += 7;
    assert_eq!(flush(&mut h).await.unwrap(), Outcome::Saved);
    let h = m.open_at::<Timed>(Some(&cookie), t0 + 26);
    assert_eq!(*h.tries().await.unwrap(), 7);
}
