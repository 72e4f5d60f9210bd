//! Unit tests of the per-request state and its flush plan, through the
//! [`Cart`] session type of the test suite.

use std::sync::Arc;

use crate::store::memory::MemoryStore;
use crate::store::{Changes, SessionStore};
use crate::testing::{Cart, CartHandle};
use crate::{Config, SessionHandle, SessionManager};

use super::{Outcome, Target};
use crate::flush;

fn manager() -> (SessionManager, Arc<MemoryStore>) {
    let store = Arc::new(MemoryStore::new());
    let manager = SessionManager::new(store.clone(), Config::default()).unwrap();
    (manager, store)
}

fn plan(handle: &CartHandle) -> super::FlushPlan {
    handle.state().plan(|i| handle.encode_field(i)).unwrap()
}

async fn existing(manager: &SessionManager) -> String {
    let mut h = manager.open::<Cart>(None);
    h.set_user(Some(1));
    h.set_visits(3);
    h.cart_mut().await.unwrap().push("apple".into());
    assert_eq!(flush(&mut h).await.unwrap(), Outcome::Created);
    match h.request().take_cookie_action() {
        Some(super::CookieAction::Set { token, .. }) => token.to_cookie_value(),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn untouched_state_yields_an_empty_plan() {
    let (m, store) = manager();
    let cookie = existing(&m).await;
    let before = store.stats();
    let h = m.open::<Cart>(Some(&cookie));
    let p = plan(&h);
    assert!(p.is_empty());
    assert_eq!(p.changes, Changes::default());
    assert_eq!(store.stats(), before, "planning does no I/O");
    let fresh = m.open::<Cart>(None);
    assert!(plan(&fresh).is_empty());
    assert_eq!(plan(&fresh).target, Target::New);
}

#[tokio::test]
async fn reading_never_marks_dirty() {
    let (m, _) = manager();
    let cookie = existing(&m).await;
    let h = m.open::<Cart>(Some(&cookie));
    assert_eq!(*h.visits().await.unwrap(), 3);
    assert_eq!(*h.cart().await.unwrap(), ["apple"]);
    assert!(h.history().await.unwrap().is_empty());
    assert!(plan(&h).is_empty());
}

#[tokio::test]
async fn a_mut_access_that_leaves_the_bytes_equal_writes_nothing() {
    let (m, _) = manager();
    let cookie = existing(&m).await;
    let mut h = m.open::<Cart>(Some(&cookie));
    let cart = h.cart_mut().await.unwrap();
    cart.push("pear".into());
    cart.pop();
    *h.visits_mut().await.unwrap() += 0;
    assert!(plan(&h).is_empty());
    // the same holds for a field that is absent in the store: its default
    // borrowed mutably and left alone is not written
    let mut fresh = m.open::<Cart>(None);
    let _ = fresh.visits_mut().await.unwrap();
    let _ = fresh.cart_mut().await.unwrap();
    assert!(plan(&fresh).changes.upsert.is_empty());
    assert_eq!(flush(&mut fresh).await.unwrap(), Outcome::Unchanged);
    assert_eq!(
        fresh.request().take_cookie_action(),
        None,
        "nothing stored, no cookie"
    );
}

#[tokio::test]
async fn a_blind_set_writes_exactly_that_field_without_loading() {
    let (m, store) = manager();
    let cookie = existing(&m).await;
    let before = store.stats();
    let mut h = m.open::<Cart>(Some(&cookie));
    h.set_visits(4);
    let p = plan(&h);
    assert_eq!(p.changes.upsert, vec![("visits", b"4".to_vec())]);
    assert!(p.changes.remove.is_empty());
    assert_eq!(p.changes.expiry, None);
    assert!(!h.state().is_loaded());
    assert_eq!(store.stats(), before, "a blind set loads nothing");
}

#[tokio::test]
async fn a_removed_field_is_reported_as_removed() {
    let (m, _) = manager();
    let cookie = existing(&m).await;
    let mut h = m.open::<Cart>(Some(&cookie));
    h.remove_cart();
    assert!(
        h.cart().await.unwrap().is_empty(),
        "a removed field reads as its default"
    );
    let p = plan(&h);
    assert_eq!(p.changes.remove, vec!["cart"]);
    assert!(p.changes.upsert.is_empty());
    flush(&mut h).await.unwrap();
    let again = m.open::<Cart>(Some(&cookie));
    assert!(again.cart().await.unwrap().is_empty());
    assert_eq!(*again.visits().await.unwrap(), 3);
}

#[tokio::test]
async fn destroy_drops_earlier_changes_and_refuses_later_ones() {
    let (m, store) = manager();
    let cookie = existing(&m).await;
    let mut h = m.open::<Cart>(Some(&cookie));
    h.set_visits(100);
    h.destroy().await.unwrap();
    let p = plan(&h);
    assert_eq!(p.target, Target::Done);
    assert!(
        p.changes.is_empty(),
        "a change made before destroy goes with it"
    );
    assert_eq!(flush(&mut h).await.unwrap(), Outcome::Unchanged);
    assert!(store.is_empty());

    let cookie = existing(&m).await;
    let mut h = m.open::<Cart>(Some(&cookie));
    h.destroy().await.unwrap();
    h.set_user(Some(2));
    let err = flush(&mut h).await.unwrap_err();
    assert!(
        matches!(err, crate::Error::WriteAfterDestroy { field: "user" }),
        "a write after destroy fails loudly: {err}"
    );
    assert!(err.to_string().contains("start_over"), "{err}");
    assert!(store.is_empty());
}

#[tokio::test]
async fn a_deferred_field_is_not_part_of_the_first_load() {
    let (m, store) = manager();
    let mut h = m.open::<Cart>(None);
    h.set_history(vec!["/a".into(), "/b".into()]);
    h.set_visits(1);
    flush(&mut h).await.unwrap();
    let cookie = match h.request().take_cookie_action() {
        Some(super::CookieAction::Set { token, .. }) => token.to_cookie_value(),
        other => panic!("{other:?}"),
    };
    let key = crate::Token::parse(&cookie).unwrap().store_key();
    let at = crate::store::Validity {
        now: crate::clock::now(),
        created_after: 0,
    };
    let record = store.load(&key, Cart_DEFERRED, at).await.unwrap().unwrap();
    assert!(record.fields.iter().all(|(n, _)| n != "history"));

    let h = m.open::<Cart>(Some(&cookie));
    let before = store.stats();
    assert_eq!(*h.visits().await.unwrap(), 1);
    assert_eq!((store.stats() - before).statements, 1);
    assert_eq!(*h.history().await.unwrap(), ["/a", "/b"]);
    assert_eq!(
        (store.stats() - before).statements,
        2,
        "the deferred field took its own query"
    );
}

#[allow(non_upper_case_globals)]
const Cart_DEFERRED: &[&str] = <Cart as crate::SessionData>::DEFERRED;

#[tokio::test]
async fn size_limits_refuse_before_writing() {
    let store = Arc::new(MemoryStore::new());
    let config = Config {
        max_field_bytes: 10,
        max_session_bytes: 16,
        ..Config::default()
    };
    let m = SessionManager::new(store.clone(), config).unwrap();
    let mut h = m.open::<Cart>(None);
    h.cart_mut().await.unwrap().push("x".repeat(20));
    let err = flush(&mut h).await.unwrap_err();
    assert!(
        matches!(err, crate::Error::FieldTooLarge { field: "cart", .. }),
        "{err}"
    );
    assert!(err.to_string().contains("max_field_bytes"));
    let mut h = m.open::<Cart>(None);
    h.set_history(vec!["abcdef".into()]); // 10 bytes
    h.cart_mut().await.unwrap().push("abcd".into()); // 8 bytes
    let err = flush(&mut h).await.unwrap_err();
    assert!(
        matches!(
            err,
            crate::Error::SessionTooLarge {
                size: 18,
                limit: 16
            }
        ),
        "{err}"
    );
    assert!(store.is_empty(), "nothing was written");
}

#[tokio::test]
async fn undecodable_fields_fall_back_or_fail_as_configured() {
    let store = Arc::new(MemoryStore::new());
    let key = crate::Token::generate().unwrap();
    let now = crate::clock::now();
    store
        .create(
            &key.store_key(),
            crate::store::NewSession {
                created_at: now,
                expires_at: now + 86_400,
                idle_timeout: 86_400,
                persistent: None,
            },
            &[
                ("visits", b"\"not a number\"".to_vec()),
                ("user", b"5".to_vec()),
            ],
        )
        .await
        .unwrap();
    let cookie = key.to_cookie_value();
    let m = SessionManager::new(store.clone(), Config::default()).unwrap();
    let h = m.open::<Cart>(Some(&cookie));
    assert_eq!(*h.visits().await.unwrap(), 0, "falls back to the default");
    assert_eq!(
        *h.user().await.unwrap(),
        Some(5),
        "other fields are unaffected"
    );
    assert!(plan(&h).is_empty(), "a fallback is not a write");

    let strict = Config {
        on_decode_error: crate::config::OnDecodeError::Error,
        ..Config::default()
    };
    let m = SessionManager::new(store, strict).unwrap();
    let h = m.open::<Cart>(Some(&cookie));
    let err = h.visits().await.unwrap_err();
    assert!(
        matches!(
            err,
            crate::Error::Decode {
                field: "visits",
                ..
            }
        ),
        "{err}"
    );
    // serde's own message would quote the stored value ("not a number");
    // the error the app may log carries its category and position only.
    let cause = std::error::Error::source(&err).unwrap().to_string();
    assert!(!cause.contains("not a number"), "{cause}");
    assert!(cause.contains("line 1"), "{cause}");
}

#[tokio::test]
async fn touch_happens_only_after_touch_after() {
    let (m, store) = manager();
    let cookie = existing(&m).await;
    let now = crate::clock::now();
    let h = m.open_at::<Cart>(Some(&cookie), now + 30);
    let _ = h.visits().await.unwrap();
    assert_eq!(plan(&h).changes.expiry, None, "30 s < touch_after");
    let mut h = m.open_at::<Cart>(Some(&cookie), now + 120);
    let _ = h.visits().await.unwrap();
    let expiry = plan(&h).changes.expiry;
    assert!(
        matches!(expiry, Some(crate::store::ExpiryUpdate::Extend(at)) if at >= now + 120 + 86_400)
    );
    assert_eq!(flush(&mut h).await.unwrap(), Outcome::Saved);
    assert!(
        matches!(
            h.request().take_cookie_action(),
            Some(super::CookieAction::Set { .. })
        ),
        "a touch refreshes the cookie's Max-Age"
    );
    let _ = store;
}

#[tokio::test]
async fn an_unknown_cookie_never_becomes_the_session_id() {
    let (m, _) = manager();
    let planted = crate::Token::generate().unwrap().to_cookie_value();
    let mut h = m.open::<Cart>(Some(&planted));
    assert_eq!(*h.user().await.unwrap(), None);
    assert!(h.state().is_new());
    h.set_user(Some(1));
    assert_eq!(flush(&mut h).await.unwrap(), Outcome::Created);
    match h.request().take_cookie_action() {
        Some(super::CookieAction::Set { token, .. }) => {
            assert_ne!(token.to_cookie_value(), planted)
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_second_flush_writes_nothing() {
    let (m, store) = manager();
    let cookie = existing(&m).await;
    let mut h = m.open::<Cart>(Some(&cookie));
    *h.visits_mut().await.unwrap() += 1;
    assert_eq!(flush(&mut h).await.unwrap(), Outcome::Saved);
    let before = store.stats();
    assert_eq!(flush(&mut h).await.unwrap(), Outcome::Unchanged);
    assert_eq!(store.stats(), before);
    assert_eq!(*h.visits().await.unwrap(), 4);
}

/// A `clear()` on a request without a session, then a write saved with a
/// new session: the clear is done (a new session starts empty), so a
/// second flush in the same request clears nothing it just wrote.
#[tokio::test]
async fn a_clear_is_done_once_the_session_is_created() {
    let (m, _) = manager();
    let mut h = m.open::<Cart>(None);
    h.clear();
    h.set_user(Some(1));
    assert_eq!(flush(&mut h).await.unwrap(), Outcome::Created);
    h.set_visits(2);
    assert_eq!(flush(&mut h).await.unwrap(), Outcome::Saved);
    let cookie = match h.request().take_cookie_action() {
        Some(super::CookieAction::Set { token, .. }) => token.to_cookie_value(),
        other => panic!("{other:?}"),
    };
    let h = m.open::<Cart>(Some(&cookie));
    assert_eq!(
        *h.user().await.unwrap(),
        Some(1),
        "the first save's field stays"
    );
    assert_eq!(*h.visits().await.unwrap(), 2);
}
