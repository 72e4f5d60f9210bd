//! Checks of whole requests that hold wherever sessions are kept: in a
//! store or in their cookies. Each takes a [`Keeper`] and looks only at
//! what the session layer shows (a request's reads and its cookie).

use crate::schema::flush;
use crate::state::{CookieAction, Outcome};

use super::{cookie_token, login, Cart, Keeper, Legacy, Prefs};

/// The cookie after a request that may have set a new one: a store keeps
/// the cookie as it is on a write (without `rolling`), the cookie keeper
/// sends the session again.
fn follow<H: crate::schema::SessionHandle>(cookie: String, handle: &H) -> String {
    match handle.state().request().take_cookie_action() {
        Some(CookieAction::Set { value, .. }) => value,
        None => cookie,
        other => panic!("unexpected cookie {other:?}"),
    }
}

/// A session read, written, partly removed and read again over several
/// requests: a read loads every field but the deferred ones and sends no
/// cookie; a write keeps what it did not touch; a removal removes only its
/// field.
pub async fn a_session_round_trips_through_requests(keeper: Keeper) {
    let m = keeper.manager();
    let mut h = m.open::<Cart>(None);
    h.set_user(Some(42));
    h.set_history(vec!["a".repeat(100)]);
    assert_eq!(flush(&mut h).await.unwrap(), Outcome::Created);
    let c = cookie_token(&mut h);

    let mut h = m.open::<Cart>(Some(&c));
    assert_eq!(*h.user().await.unwrap(), Some(42));
    assert_eq!(h.history().await.unwrap().len(), 1, "the deferred field");
    assert!(!h.is_new());
    assert_eq!(flush(&mut h).await.unwrap(), Outcome::Unchanged);
    assert_eq!(
        h.request().take_cookie_action(),
        None,
        "a read sends no cookie"
    );

    let mut h = m.open::<Cart>(Some(&c));
    h.cart_mut().await.unwrap().push("apple".into());
    assert_eq!(flush(&mut h).await.unwrap(), Outcome::Saved);
    let c = follow(c, &h);
    let h = m.open::<Cart>(Some(&c));
    assert_eq!(*h.cart().await.unwrap(), vec!["apple".to_string()]);
    assert_eq!(*h.user().await.unwrap(), Some(42), "untouched, kept");
    assert_eq!(h.history().await.unwrap().len(), 1);

    let mut h = m.open::<Cart>(Some(&c));
    h.remove_cart();
    assert_eq!(flush(&mut h).await.unwrap(), Outcome::Saved);
    let c = follow(c, &h);
    let h = m.open::<Cart>(Some(&c));
    assert!(h.cart().await.unwrap().is_empty());
    assert_eq!(*h.user().await.unwrap(), Some(42));
}

/// A write of the value already stored writes nothing and sends no
/// cookie: nothing changed.
pub async fn a_write_of_the_stored_value_sends_nothing(keeper: Keeper) {
    let m = keeper.manager();
    let c = login(&m, 42).await;
    let before = keeper.statements();
    let mut h = m.open::<Cart>(Some(&c));
    let _ = h.user().await.unwrap();
    h.set_user(Some(42));
    assert_eq!(flush(&mut h).await.unwrap(), Outcome::Unchanged);
    assert_eq!(h.request().take_cookie_action(), None);
    assert!(keeper.statements() - before <= 1, "the load, and no write");
}

/// Two session types on one request with no cookie: one session, one
/// token, one cookie, and both types' writes kept; a field both name is
/// one field; a regenerate through one type moves the session of both.
pub async fn two_session_types_share_one_session(keeper: Keeper) {
    let m = keeper.manager();
    let request = m.begin(None);
    let mut cart = request.open::<Cart>();
    let mut prefs = request.open::<Prefs>();
    cart.set_user(Some(4));
    prefs.set_theme("dark".into());
    assert_eq!(flush(&mut cart).await.unwrap(), Outcome::Created);
    assert_eq!(flush(&mut prefs).await.unwrap(), Outcome::Saved);
    let cookie = match request.take_cookie_action() {
        Some(CookieAction::Set { value, .. }) => value,
        other => panic!("expected one Set-Cookie, got {other:?}"),
    };
    assert_eq!(request.take_cookie_action(), None, "one cookie");
    let next = m.begin(Some(&cookie));
    let cart = next.open::<Cart>();
    let prefs = next.open::<Prefs>();
    assert_eq!(*cart.user().await.unwrap(), Some(4));
    assert_eq!(prefs.theme().await.unwrap(), "dark");
    // `visits` is one stored field seen by both types
    let request = m.begin(Some(&cookie));
    let mut prefs = request.open::<Prefs>();
    *prefs.visits_mut().await.unwrap() += 2;
    assert_eq!(flush(&mut prefs).await.unwrap(), Outcome::Saved);
    let cookie = match request.take_cookie_action() {
        Some(CookieAction::Set { value, .. }) => value,
        None => cookie,
        other => panic!("unexpected cookie {other:?}"),
    };
    let cart = m.open::<Cart>(Some(&cookie));
    assert_eq!(*cart.visits().await.unwrap(), 2);
    // a regenerate through one type moves the session of both
    let request = m.begin(Some(&cookie));
    let mut cart = request.open::<Cart>();
    let mut prefs = request.open::<Prefs>();
    cart.regenerate();
    prefs.set_theme("light".into());
    assert_eq!(flush(&mut cart).await.unwrap(), Outcome::Saved);
    assert_eq!(flush(&mut prefs).await.unwrap(), Outcome::Saved);
    let (moved, token) = match request.take_cookie_action() {
        Some(CookieAction::Set { value, token, .. }) => (value, token),
        other => panic!("expected a Set-Cookie, got {other:?}"),
    };
    assert_ne!(moved, cookie);
    let check = m.begin(Some(&moved));
    assert_eq!(check.open::<Prefs>().theme().await.unwrap(), "light");
    assert_eq!(*check.open::<Cart>().user().await.unwrap(), Some(4));
    assert_eq!(
        check.open::<Cart>().id(),
        Some(token.store_key()),
        "a new id"
    );
}

/// A stored field that no longer decodes falls back to its default; a
/// mutable borrow that leaves that default as it is writes nothing, so the
/// stored bytes stay until the app really changes the value, other writes
/// of the session included.
pub async fn undecodable_field_keeps_its_bytes_until_changed(keeper: Keeper) {
    let m = keeper.manager();
    let mut old = m.open::<Legacy>(None);
    old.set_cart("x".into()); // a string where `cart` is now a list
    assert_eq!(flush(&mut old).await.unwrap(), Outcome::Created);
    let c = cookie_token(&mut old);

    let mut h = m.open::<Cart>(Some(&c));
    h.cart_mut().await.unwrap().retain(|_| true);
    assert_eq!(flush(&mut h).await.unwrap(), Outcome::Unchanged);
    let c = follow(c, &h);
    let legacy = m.open::<Legacy>(Some(&c));
    assert_eq!(legacy.cart().await.unwrap(), "x", "untouched");

    // read first, borrow after: the same; another field's write keeps it
    let mut h = m.open::<Cart>(Some(&c));
    assert!(
        h.cart().await.unwrap().is_empty(),
        "falls back to the default"
    );
    h.cart_mut().await.unwrap().clear();
    h.set_visits(1);
    assert_eq!(flush(&mut h).await.unwrap(), Outcome::Saved);
    let c = follow(c, &h);
    let legacy = m.open::<Legacy>(Some(&c));
    assert_eq!(legacy.cart().await.unwrap(), "x", "the stored bytes stay");

    // a real change replaces the bytes
    let mut h = m.open::<Cart>(Some(&c));
    h.cart_mut().await.unwrap().push("apple".into());
    assert_eq!(flush(&mut h).await.unwrap(), Outcome::Saved);
    let c = follow(c, &h);
    let h = m.open::<Cart>(Some(&c));
    assert_eq!(*h.cart().await.unwrap(), vec!["apple".to_string()]);
    assert_eq!(*h.visits().await.unwrap(), 1);
}
