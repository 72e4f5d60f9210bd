//! Checks of `#[session(flash)]`: a value set for the next request is
//! taken once, by exactly one of the requests taking it at once, at the
//! cost of one statement when it is there and none when it is not.

use super::*;

/// A new session at `at` holding `user` and the flash `notice`; its cookie.
async fn with_notice(m: &SessionManager, notice: &str) -> String {
    let mut h = m.open::<Notice>(None);
    h.set_user(Some(5));
    h.set_notice(notice.into());
    assert_eq!(flush(&mut h).await.unwrap(), Outcome::Created);
    cookie_token(&mut h)
}

/// Takes the notice in a request of its own; what it got and the
/// statements it cost.
async fn take(m: &SessionManager, store: &dyn SessionStore, cookie: &str) -> (Option<String>, u64) {
    let mut taken = None;
    let n = statements(store, async {
        let mut h = m.open::<Notice>(Some(cookie));
        taken = h.take_notice().await.unwrap();
        flush(&mut h).await.unwrap();
    })
    .await;
    (taken, n)
}

/// Set in one request, taken by the next (its load and the removal: what a
/// read and a `remove_x` cost), gone for the one after (its load only); a
/// request without a session takes nothing at no cost. Set and taken in
/// one request, it is never stored.
pub async fn a_flash_is_taken_once(store: Arc<dyn SessionStore>) {
    let m = manager(store.clone());
    let other = with_notice(&m, "removed").await;
    let removal = statements(&*store, async {
        let mut h = m.open::<Notice>(Some(&other));
        assert_eq!(*h.user().await.unwrap(), Some(5));
        h.remove_notice();
        assert_eq!(flush(&mut h).await.unwrap(), Outcome::Saved);
    })
    .await;
    let cookie = with_notice(&m, "order placed").await;
    assert_eq!(
        take(&m, &*store, &cookie).await,
        (Some("order placed".into()), removal),
        "a take costs what a read and a removal do"
    );
    assert_eq!(
        take(&m, &*store, &cookie).await,
        (None, 1),
        "taken once; a take of nothing costs no statement"
    );
    let mut none = m.open::<Notice>(None);
    assert_eq!(none.take_notice().await.unwrap(), None);

    // Set, then taken in the same request: returned, never stored.
    let mut h = m.open::<Notice>(Some(&cookie));
    h.set_notice("shown at once".into());
    assert_eq!(
        h.take_notice().await.unwrap().as_deref(),
        Some("shown at once")
    );
    assert_eq!(h.take_notice().await.unwrap(), None);
    flush(&mut h).await.unwrap();
    assert_eq!(take(&m, &*store, &cookie).await.0, None);

    // The session's other fields are untouched by a take.
    let h = m.open::<Notice>(Some(&cookie));
    assert_eq!(*h.user().await.unwrap(), Some(5));
}

/// 32 requests take one notice at once: exactly one gets it, none fails.
pub async fn a_flash_taken_by_many_requests_at_once_goes_to_one(store: Arc<dyn SessionStore>) {
    let m = Arc::new(manager(store.clone()));
    let cookie = with_notice(&m, "once").await;
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let (m, cookie) = (m.clone(), cookie.clone());
            tokio::spawn(async move {
                let mut h = m.open::<Notice>(Some(&cookie));
                let taken = h.take_notice().await.unwrap();
                flush(&mut h).await.unwrap();
                taken
            })
        })
        .collect();
    let mut got = Vec::new();
    for task in tasks {
        got.extend(task.await.unwrap());
    }
    assert_eq!(got, vec!["once".to_string()], "exactly one request took it");
}

/// A request that read the session before another set a new notice takes
/// the new one (its removal finds the version moved, and it looks again);
/// a notice survives a login (`regenerate`), goes with `clear()`, and is
/// taken the same way when values are encrypted.
pub async fn a_flash_follows_the_session(store: Arc<dyn SessionStore>) {
    let m = manager(store.clone());
    let cookie = with_notice(&m, "first").await;
    let mut reader = m.open::<Notice>(Some(&cookie));
    assert_eq!(*reader.user().await.unwrap(), Some(5));
    let mut setter = m.open::<Notice>(Some(&cookie));
    setter.set_notice("second".into());
    flush(&mut setter).await.unwrap();
    assert_eq!(
        reader.take_notice().await.unwrap().as_deref(),
        Some("second")
    );
    flush(&mut reader).await.unwrap();
    assert_eq!(take(&m, &*store, &cookie).await.0, None);

    // Set at login, taken under the new token.
    let mut login = m.open::<Notice>(Some(&cookie));
    login.set_notice("welcome".into());
    login.regenerate();
    assert_eq!(flush(&mut login).await.unwrap(), Outcome::Saved);
    let after = cookie_token(&mut login);
    assert_eq!(
        take(&m, &*store, &after).await.0.as_deref(),
        Some("welcome")
    );

    // Gone with `clear()`.
    let mut h = m.open::<Notice>(Some(&after));
    h.set_notice("cleared".into());
    flush(&mut h).await.unwrap();
    let mut h = m.open::<Notice>(Some(&after));
    h.clear();
    flush(&mut h).await.unwrap();
    assert_eq!(take(&m, &*store, &after).await.0, None);

    // Sealed.
    let sealed = sealed_manager(store.clone(), &[3]);
    let cookie = with_notice(&sealed, "sealed").await;
    assert_eq!(
        take(&sealed, &*store, &cookie).await.0.as_deref(),
        Some("sealed")
    );
    assert_eq!(take(&sealed, &*store, &cookie).await.0, None);
}
