//! Sessions kept in their cookies: the behaviour suite's checks of whole
//! requests (`cookie_conformance_tests!`), then what only this mode has:
//! the seal, the keys, and the limits it documents.

use std::sync::Arc;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use session_core::carrier::COOKIE_LIMIT;
use session_core::schema::flush;
use session_core::sealing::EncryptionKey;
use session_core::state::{CookieAction, Outcome};
use session_core::testing::{Account, Cart, Counter, Notice};
use session_core::{Config, Error, SessionManager};

session_core::cookie_conformance_tests!();

fn key(byte: u8) -> EncryptionKey {
    EncryptionKey::new(STANDARD.encode([byte; 32]))
}

fn manager_with(config: Config) -> SessionManager {
    SessionManager::in_cookies(config).unwrap()
}

fn manager() -> SessionManager {
    manager_with(Config {
        encryption_keys: vec![key(1)],
        ..Config::default()
    })
}

/// The cookie a request's response carries: `Some(Some(value))` set,
/// `Some(None)` removed, `None` untouched.
fn cookie<H: session_core::SessionHandle>(h: &H) -> Option<Option<String>> {
    match h.state().request().take_cookie_action()? {
        CookieAction::Set { value, .. } => Some(Some(value)),
        CookieAction::Remove => Some(None),
    }
}

fn set(cookie: Option<Option<String>>) -> String {
    cookie.flatten().expect("a Set-Cookie")
}

async fn login(m: &SessionManager, user: u64) -> String {
    let mut h = m.open::<Cart>(None);
    h.set_user(Some(user));
    h.set_history(vec!["a".repeat(100)]);
    assert_eq!(flush(&mut h).await.unwrap(), Outcome::Created);
    set(cookie(&h))
}

#[tokio::test]
async fn the_session_travels_in_its_sealed_cookie() {
    let m = manager();
    let c = login(&m, 42).await;
    assert!(c.len() < COOKIE_LIMIT);
    // Sealed: neither the value nor the field's name shows.
    let raw = URL_SAFE_NO_PAD.decode(&c).unwrap();
    assert!(!raw.windows(4).any(|w| w == b"user"));
    assert!(!raw.windows(3).any(|w| w == b"aaa"));
    let h = m.open::<Cart>(Some(&c));
    assert_eq!(*h.user().await.unwrap(), Some(42));
    // Nothing ever reaches a server: there is none.
    assert!(m.store().is_none());
}

#[tokio::test]
async fn a_cookie_that_does_not_open_is_no_session() {
    let m = manager();
    let c = login(&m, 7).await;
    let mut raw = URL_SAFE_NO_PAD.decode(&c).unwrap();
    let last = raw.len() - 1;
    raw[last] ^= 1;
    let tampered = URL_SAFE_NO_PAD.encode(&raw);
    let other_key = manager_with(Config {
        encryption_keys: vec![key(2)],
        ..Config::default()
    });
    let other_name = manager_with(Config {
        encryption_keys: vec![key(1)],
        cookie_name: "other".into(),
        ..Config::default()
    });
    let oversized = "A".repeat(COOKIE_LIMIT + 10);
    for (what, m, value) in [
        ("altered byte", &m, tampered.as_str()),
        ("garbage", &m, "not-a-cookie"),
        ("oversized", &m, oversized.as_str()),
        ("other key", &other_key, c.as_str()),
        ("other cookie name", &other_name, c.as_str()),
    ] {
        let mut h = m.open::<Cart>(Some(value));
        assert_eq!(*h.user().await.unwrap(), None, "{what}");
        assert!(h.is_new(), "{what}");
        // A write starts a fresh session under a fresh id.
        h.set_visits(1);
        assert_eq!(flush(&mut h).await.unwrap(), Outcome::Created, "{what}");
        let fresh = set(cookie(&h));
        let h = m.open::<Cart>(Some(&fresh));
        assert_eq!(*h.user().await.unwrap(), None, "{what}");
        assert_eq!(*h.visits().await.unwrap(), 1, "{what}");
    }
}

#[tokio::test]
async fn rotated_keys_open_old_cookies_and_seal_with_the_first() {
    let old = manager();
    let c = login(&old, 5).await;
    let rotated = manager_with(Config {
        encryption_keys: vec![key(2), key(1)],
        ..Config::default()
    });
    let mut h = rotated.open::<Cart>(Some(&c));
    assert_eq!(*h.user().await.unwrap(), Some(5));
    h.set_visits(3);
    flush(&mut h).await.unwrap();
    let resealed = set(cookie(&h));
    let only_new = manager_with(Config {
        encryption_keys: vec![key(2)],
        ..Config::default()
    });
    let h = only_new.open::<Cart>(Some(&resealed));
    assert_eq!(*h.user().await.unwrap(), Some(5));
    let h = only_new.open::<Cart>(Some(&c));
    assert_eq!(
        *h.user().await.unwrap(),
        None,
        "the retired key opens nothing"
    );
}

#[tokio::test]
async fn destroy_removes_the_cookie_and_regenerate_gives_a_new_id() {
    let m = manager();
    let c = login(&m, 9).await;

    let mut h = m.open::<Cart>(Some(&c));
    let before = h.id();
    assert_eq!(*h.user().await.unwrap(), Some(9));
    h.regenerate();
    h.set_visits(1);
    assert_eq!(flush(&mut h).await.unwrap(), Outcome::Saved);
    let after = h.id();
    assert_ne!(before, after);
    let c2 = set(cookie(&h));
    let h = m.open::<Cart>(Some(&c2));
    assert_eq!(
        *h.user().await.unwrap(),
        Some(9),
        "regenerate keeps the data"
    );
    assert_eq!(h.id(), after);

    let mut h = m.open::<Cart>(Some(&c2));
    h.destroy().await.unwrap();
    assert_eq!(flush(&mut h).await.unwrap(), Outcome::Unchanged);
    assert_eq!(cookie(&h), Some(None), "the cookie is removed");

    // start_over: the old session ends, a new one starts in one request.
    let mut h = m.open::<Cart>(Some(&c2));
    h.start_over().await.unwrap();
    h.set_visits(7);
    assert_eq!(flush(&mut h).await.unwrap(), Outcome::Created);
    let c3 = set(cookie(&h));
    let h = m.open::<Cart>(Some(&c3));
    assert_eq!(*h.user().await.unwrap(), None);
    assert_eq!(*h.visits().await.unwrap(), 7);

    // The documented limit: a copy of an earlier cookie still opens (the
    // server keeps no record to revoke).
    let h = m.open::<Cart>(Some(&c));
    assert_eq!(*h.user().await.unwrap(), Some(9));
}

#[tokio::test]
async fn expiry_idle_and_absolute_is_sealed_in_the_cookie() {
    let m = manager_with(Config {
        encryption_keys: vec![key(1)],
        ttl: 100,
        touch_after: 10,
        max_lifetime: 1000,
        ..Config::default()
    });
    let t0 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut h = m.open_at::<Cart>(None, t0);
    h.set_user(Some(1));
    flush(&mut h).await.unwrap();
    let c = set(cookie(&h));

    // idle: alive before the timeout, gone after it
    let h = m.open_at::<Cart>(Some(&c), t0 + 99);
    assert_eq!(*h.user().await.unwrap(), Some(1));
    let h = m.open_at::<Cart>(Some(&c), t0 + 100);
    assert_eq!(*h.user().await.unwrap(), None, "idle-expired");

    // A read after `touch_after` slides the expiry: a new cookie.
    let mut c = c;
    let mut t = t0;
    while t + 90 < t0 + 1000 {
        t += 90;
        let mut h = m.open_at::<Cart>(Some(&c), t);
        assert_eq!(*h.user().await.unwrap(), Some(1), "at {}", t - t0);
        flush(&mut h).await.unwrap();
        // Refreshed while the cap allows a later expiry.
        match cookie(&h) {
            Some(Some(refreshed)) => c = refreshed,
            None => assert!(t + 100 > t0 + 1000, "at {}", t - t0),
            Some(None) => panic!("removed"),
        }
    }
    // absolute: touches never pass `max_lifetime`
    let h = m.open_at::<Cart>(Some(&c), t0 + 999);
    assert_eq!(*h.user().await.unwrap(), Some(1));
    let h = m.open_at::<Cart>(Some(&c), t0 + 1000);
    assert_eq!(*h.user().await.unwrap(), None, "past max_lifetime");
}

#[tokio::test]
async fn a_session_too_large_for_a_cookie_is_an_error_at_save() {
    let m = manager();
    let c = login(&m, 3).await;

    let mut h = m.open::<Cart>(Some(&c));
    h.set_cart(vec!["x".repeat(COOKIE_LIMIT)]);
    let error = flush(&mut h).await.unwrap_err();
    assert!(
        matches!(
            error,
            Error::CookieTooLarge {
                limit: COOKIE_LIMIT,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("4096"), "{error}");
    assert_eq!(
        cookie(&h),
        None,
        "no cookie: the browser keeps the one it had"
    );
    let h = m.open::<Cart>(Some(&c));
    assert_eq!(*h.user().await.unwrap(), Some(3));
    assert!(h.cart().await.unwrap().is_empty());

    // Just under the limit fits; one byte more does not, whatever the
    // fields add up to.
    let mut fits = 0;
    for n in (2500..COOKIE_LIMIT).rev() {
        let mut h = m.open::<Cart>(Some(&c));
        h.set_cart(vec!["y".repeat(n)]);
        match flush(&mut h).await {
            Ok(_) => {
                let value = set(cookie(&h));
                assert!("session=".len() + value.len() <= COOKIE_LIMIT);
                fits = n;
                break;
            }
            Err(Error::CookieTooLarge { size, .. }) => assert!(size > COOKIE_LIMIT),
            Err(other) => panic!("{other}"),
        }
    }
    assert!(fits > 2500, "a ~4 KB session fits");

    // A new session too large is refused the same way.
    let mut h = m.open::<Cart>(None);
    h.set_history(vec!["z".repeat(5000)]);
    assert!(matches!(
        flush(&mut h).await,
        Err(Error::CookieTooLarge { .. })
    ));
    assert_eq!(cookie(&h), None);
}

#[tokio::test]
async fn indexed_and_versioned_types_are_refused() {
    let m = manager();
    assert!(m.supports::<Cart>().is_ok());
    let index = m.supports::<Account>().unwrap_err().to_string();
    assert!(index.contains("Account") && index.contains("`user_id`") && index.contains("index"));
    let versioned = m.supports::<Counter>().unwrap_err().to_string();
    assert!(versioned.contains("Counter") && versioned.contains("`hits`"));
    // A flash field is named by what the app wrote.
    let flash = m.supports::<Notice>().unwrap_err().to_string();
    assert!(flash.contains("`notice` is `#[session(flash)]`"), "{flash}");

    // Server-side stores keep both.
    let memory = SessionManager::new(
        Arc::new(session_core::store::memory::MemoryStore::new()),
        Config::default(),
    )
    .unwrap();
    assert!(memory.supports::<Account>().is_ok());
    assert!(memory.supports::<Counter>().is_ok());
    assert!(memory.supports::<Notice>().is_ok());
}

#[tokio::test]
async fn sessions_in_cookies_need_an_encryption_key() {
    let error = SessionManager::in_cookies(Config::default()).unwrap_err();
    assert!(error.to_string().contains("encryption_keys"), "{error}");
}

#[tokio::test]
async fn url_cookie_keeps_sessions_in_cookies() {
    let config = Config {
        url: Some("cookie".into()),
        ..Config::default()
    };
    assert!(session_core::open::needs_encryption_key(&config));
    let error = session_core::open::open(&config, session_core::open::Profile::Other("release"))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("encryption_keys"), "{error}");
    let config = Config {
        encryption_keys: vec![key(1)],
        ..config
    };
    let opened = session_core::open::open(&config, session_core::open::Profile::Other("release"))
        .await
        .unwrap();
    assert_eq!(opened.kind, "cookie");
    assert!(opened.manager.store().is_none());
    let c = login(&opened.manager, 5).await;
    assert!(
        URL_SAFE_NO_PAD.decode(&c).unwrap().len() > 32,
        "a sealed session"
    );
}

#[tokio::test]
async fn concurrent_requests_last_response_wins() {
    // The documented limit, shown: two requests from one cookie each send
    // the whole session back; the browser keeps the later one.
    let m = manager();
    let c = login(&m, 1).await;
    let mut a = m.open::<Cart>(Some(&c));
    let mut b = m.open::<Cart>(Some(&c));
    a.cart_mut().await.unwrap().push("from a".into());
    *b.visits_mut().await.unwrap() += 1;
    flush(&mut a).await.unwrap();
    flush(&mut b).await.unwrap();
    let (_, later) = (set(cookie(&a)), set(cookie(&b)));
    let h = m.open::<Cart>(Some(&later));
    assert_eq!(*h.visits().await.unwrap(), 1);
    assert!(
        h.cart().await.unwrap().is_empty(),
        "a's change is not in b's cookie"
    );
}

/// A session kept whole in its cookie has nothing on the server that could
/// tell a replaced token from the current one: `rotate_after` is refused,
/// saying so.
#[test]
fn rotation_needs_a_server_side_store() {
    let error = SessionManager::in_cookies(Config {
        encryption_keys: vec![key(1)],
        rotate_after: Some(900),
        ..Config::default()
    })
    .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("`rotate_after` needs a server-side store"),
        "{error}"
    );
}
