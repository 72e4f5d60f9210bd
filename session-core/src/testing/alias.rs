//! Checks of old stored names (`#[session(alias = "old")]`): a session
//! written by one version of a type is read by its successor whose fields
//! were renamed, and a write moves each value to its new name in the same
//! save, concurrent requests included, sealed values included.

use super::*;

/// A session as [`Before`] wrote it: user 1, cart `["tea"]`, hits 3 (at
/// version 1); its cookie.
async fn written_before(m: &SessionManager) -> String {
    let mut h = m.open::<Before>(None);
    h.set_user(Some(1));
    h.set_cart(vec!["tea".into()]);
    h.set_hits(3);
    assert_eq!(flush(&mut h).await.unwrap(), Outcome::Created);
    cookie_token(&mut h)
}

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
