//! Checks of old stored names (`#[session(alias = "old")]`): a session
//! written by one version of a type is read by its successor whose fields
//! were renamed, and a write moves each value to its new name in the same
//! save, concurrent requests included, sealed values included.

use super::*;

/// The stored names of the session behind `cookie`, sorted.
async fn names(store: &dyn SessionStore, cookie: &str) -> Vec<String> {
    let mut names: Vec<String> = raw_fields(store, cookie)
        .await
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    names.sort();
    names
}

/// The successor reads the old names in its one load; a write of each
/// field moves it (the old name goes in the same save), a plain write and
/// a compare-and-set alike; from then on the stored name is read.
pub async fn a_renamed_field_reads_its_old_name_and_moves_on_write(store: Arc<dyn SessionStore>) {
    let m = manager(store.clone());
    let cookie = written_before(&m).await;
    let n = statements(&*store, async {
        let h = m.open::<After>(Some(&cookie));
        assert_eq!(*h.items().await.unwrap(), vec!["tea".to_string()]);
        assert_eq!(*h.visits().await.unwrap(), 3);
    })
    .await;
    assert_eq!(n, 1, "old names come with the one load");

    let mut h = m.open::<After>(Some(&cookie));
    h.items_mut().await.unwrap().push("jam".into());
    assert_eq!(flush(&mut h).await.unwrap(), Outcome::Saved);
    assert_eq!(names(&*store, &cookie).await, ["hits", "items", "user"]);

    let mut h = m.open::<After>(Some(&cookie));
    h.update_visits(|v| *v += 1).await.unwrap();
    flush(&mut h).await.unwrap();
    assert_eq!(names(&*store, &cookie).await, ["items", "user", "visits"]);

    let h = m.open::<After>(Some(&cookie));
    assert_eq!(
        *h.items().await.unwrap(),
        vec!["tea".to_string(), "jam".into()]
    );
    assert_eq!(*h.visits().await.unwrap(), 4);
    assert_eq!(*h.user().await.unwrap(), Some(1));
}

/// Requests that loaded the old names before any of them wrote: each
/// write lands, the versioned one by compare-and-set on the old name (a
/// second update finds it moved, reloads the new name and counts on).
pub async fn requests_moving_renamed_fields_at_once_lose_nothing(store: Arc<dyn SessionStore>) {
    let m = manager(store.clone());
    let cookie = written_before(&m).await;
    let mut a = m.open::<After>(Some(&cookie));
    let mut b = m.open::<After>(Some(&cookie));
    let mut c = m.open::<After>(Some(&cookie));
    for h in [&a, &b, &c] {
        assert_eq!(*h.visits().await.unwrap(), 3);
    }
    a.items_mut().await.unwrap().push("jam".into());
    // Written at once, each: the second finds the old name gone.
    b.update_visits(|v| *v += 1).await.unwrap();
    c.update_visits(|v| *v += 10).await.unwrap();
    assert_eq!(flush(&mut a).await.unwrap(), Outcome::Saved);
    for h in [&mut b, &mut c] {
        flush(h).await.unwrap();
    }
    let h = m.open::<After>(Some(&cookie));
    assert_eq!(
        *h.items().await.unwrap(),
        vec!["tea".to_string(), "jam".into()]
    );
    assert_eq!(*h.visits().await.unwrap(), 14, "both updates counted");
    assert_eq!(names(&*store, &cookie).await, ["items", "user", "visits"]);
}

/// A value sealed under its old name opens under it, and is sealed under
/// the new one when it moves.
pub async fn renamed_sealed_fields_open_and_move(store: Arc<dyn SessionStore>) {
    let m = sealed_manager(store.clone(), &[6]);
    let cookie = written_before(&m).await;
    let mut h = m.open::<After>(Some(&cookie));
    assert_eq!(*h.items().await.unwrap(), vec!["tea".to_string()]);
    h.items_mut().await.unwrap().push("jam".into());
    flush(&mut h).await.unwrap();
    let h = m.open::<After>(Some(&cookie));
    assert_eq!(
        *h.items().await.unwrap(),
        vec!["tea".to_string(), "jam".into()]
    );
    assert_eq!(*h.visits().await.unwrap(), 3);
    assert!(!names(&*store, &cookie).await.contains(&"cart".to_string()));
}

/// A session of [`Badge`] for `uid`; its cookie.
async fn badge(m: &SessionManager, uid: u64) -> String {
    let mut h = m.open::<Badge>(None);
    h.set_uid(uid);
    assert_eq!(flush(&mut h).await.unwrap(), Outcome::Created);
    cookie_token(&mut h)
}

/// The users of the sessions listed for `user`, sorted.
async fn listed(m: &SessionManager, cookie: &str, user: u64) -> Vec<(String, u64)> {
    let h = m.open::<Pass>(Some(cookie));
    let mut found: Vec<(String, u64)> = h
        .sessions_by_user(&user)
        .await
        .unwrap()
        .iter()
        .map(|s| (s.id().to_string(), s.data().user))
        .collect();
    found.sort();
    found
}

/// An indexed field renamed: sessions not written since are found under
/// the old name, their values shown under the new one; a write moves the
/// index entry with the value (a later change of the value is not found
/// under the old one); signing out one device, logging out everywhere and
/// `max_sessions` count both names.
pub async fn a_renamed_indexed_field_is_found_under_both_names_and_moves(
    store: Arc<dyn SessionStore>,
) {
    let m = manager(store.clone());
    let a = badge(&m, 7).await;
    let b = badge(&m, 7).await;
    let c = badge(&m, 8).await;
    let found = listed(&m, &c, 7).await;
    assert_eq!(found.len(), 2, "both old sessions of user 7");
    assert!(found.iter().all(|(_, user)| *user == 7), "{found:?}");

    // `a` reads its value and changes it: the entry moves to the new name
    // and the new value, and nothing is left under the old one.
    let mut h = m.open::<Pass>(Some(&a));
    assert_eq!(*h.user().await.unwrap(), 7);
    h.set_user(9);
    assert_eq!(flush(&mut h).await.unwrap(), Outcome::Saved);
    assert_eq!(listed(&m, &c, 7).await.len(), 1, "a is not listed for 7");
    assert_eq!(listed(&m, &c, 9).await.len(), 1);

    // A blind write of a session under the old name moves it too.
    let f = badge(&m, 11).await;
    let mut h = m.open::<Pass>(Some(&f));
    h.set_user(12);
    flush(&mut h).await.unwrap();
    assert!(listed(&m, &c, 11).await.is_empty(), "no stale old entry");
    assert_eq!(listed(&m, &c, 12).await.len(), 1);

    // Sign out `b`, indexed under the old name only, by its listed id.
    let id: crate::SessionId = listed(&m, &c, 7).await[0].0.parse().unwrap();
    let mut h = m.open::<Pass>(Some(&c));
    assert!(h.destroy_session_by_user(&7, &id).await.unwrap());
    assert!(
        m.open::<Pass>(Some(&b)).user().await.unwrap() == &0,
        "b ended"
    );

    // Two more old sessions of 9 and a login of the new release: three,
    // so the oldest (an old one) ends, whatever name it is under.
    let _d = badge(&m, 9).await;
    let mut e = m.open::<Pass>(None);
    e.set_user(9);
    flush(&mut e).await.unwrap();
    let e = cookie_token(&mut e);
    assert_eq!(listed(&m, &e, 9).await.len(), 2, "held to max_sessions");

    // Log out everywhere counts both names.
    let mut h = m.open::<Pass>(Some(&e));
    assert_eq!(h.destroy_sessions_by_user(&9).await.unwrap(), 2);
    assert!(listed(&m, &c, 9).await.is_empty());
}
