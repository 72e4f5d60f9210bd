//! Signed session cookies over HTTP on MariaDB: a cookie without a valid
//! signature is no cookie, and costs no statement; rotation keeps old
//! cookies valid while new ones are signed with the new key.

use std::net::SocketAddr;
use std::sync::Arc;

use rocket::{get, post, routes};
use session_rocket::store::SessionStore;
use session_rocket::{Session, SessionError, Sessions};

mod support;
use support::{figment, http, launch};

/// Two keys of 32 bytes, base64.
const OLD: &str = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
const NEW: &str = "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=";

#[derive(Session)]
struct Account {
    user: Option<u64>,
}

#[post("/login")]
fn login(mut s: Session<Account>) -> &'static str {
    s.set_user(Some(7));
    "ok"
}

#[get("/me")]
async fn me(s: Session<Account>) -> Result<String, SessionError> {
    Ok(format!("{:?}", s.user().await?))
}

async fn app(store: Arc<dyn SessionStore>, keys: &[&str]) -> SocketAddr {
    let keys: Vec<String> = keys.iter().map(|k| (*k).to_string()).collect();
    let rocket = rocket::custom(figment().merge(("sessions.signing_keys", keys)))
        .attach(Sessions::with_shared_store(store))
        .mount("/", routes![login, me]);
    launch(rocket).await.0
}

/// The statements a request costs the store.
async fn statements(store: &Arc<dyn SessionStore>, app: SocketAddr, cookie: &str) -> (String, u64) {
    let before = store.stats();
    let (status, _, body) = http(app, "GET", "/me", Some(cookie)).await;
    assert_eq!(status, 200);
    (body, (store.stats() - before).statements)
}

#[rocket::async_test]
async fn a_forged_cookie_costs_no_statement() {
    let store = support::mysql().await;
    let app = app(store.clone(), &[OLD]).await;
    let (status, cookie, _) = http(app, "POST", "/login", None).await;
    assert_eq!(status, 200);
    let cookie = cookie.expect("login sets a cookie");
    let (token, tag) = cookie.split_once('.').expect("a signed cookie: token.tag");
    assert_eq!((token.len(), tag.len()), (43, 43));

    let (body, n) = statements(&store, app, &cookie).await;
    assert_eq!(
        (body.as_str(), n),
        ("Some(7)", 1),
        "the signed cookie reaches the session"
    );

    // The bare token (what an unsigned deployment would accept), the token
    // under a tag of another token, a tag with one character changed, and
    // a random value: no session, and not one statement.
    let other = session_rocket::Token::generate().unwrap().to_cookie_value();
    let mut changed = cookie.clone().into_bytes();
    let last = changed.len() - 3;
    changed[last] = if changed[last] == b'A' { b'B' } else { b'A' };
    for forged in [
        token.to_string(),
        format!("{other}.{tag}"),
        String::from_utf8(changed).unwrap(),
        format!("{other}.{other}"),
    ] {
        let (body, n) = statements(&store, app, &forged).await;
        assert_eq!((body.as_str(), n), ("None", 0), "{forged}");
    }
}

#[rocket::async_test]
async fn rotation_accepts_old_cookies_and_signs_new_ones_with_the_new_key() {
    let store = support::mysql().await;
    let old_app = app(store.clone(), &[OLD]).await;
    let (_, old_cookie, _) = http(old_app, "POST", "/login", None).await;
    let old_cookie = old_cookie.unwrap();

    let rotated = app(store.clone(), &[NEW, OLD]).await;
    let (_, _, body) = http(rotated, "GET", "/me", Some(&old_cookie)).await;
    assert_eq!(
        body, "Some(7)",
        "a cookie signed with the old key still works"
    );
    let (_, new_cookie, _) = http(rotated, "POST", "/login", None).await;
    let new_cookie = new_cookie.unwrap();

    // Once the old key is dropped, only cookies signed with the new one work.
    let new_only = app(store, &[NEW]).await;
    let (_, _, body) = http(new_only, "GET", "/me", Some(&new_cookie)).await;
    assert_eq!(body, "Some(7)");
    let (_, _, body) = http(new_only, "GET", "/me", Some(&old_cookie)).await;
    assert_eq!(body, "None");
}

#[rocket::async_test]
async fn rockets_secret_key_can_sign_the_cookie() {
    let store = support::mysql().await;
    let rocket = rocket::custom(
        figment()
            .merge(("secret_key", OLD))
            .merge(("sessions.sign_with_secret_key", true)),
    )
    .attach(Sessions::with_shared_store(store.clone()))
    .mount("/", routes![login, me]);
    let signed_with_the_secret = app(store.clone(), &[OLD]).await;
    let app = launch(rocket).await.0;
    let (_, cookie, _) = http(app, "POST", "/login", None).await;
    let cookie = cookie.expect("login sets a cookie");
    let (token, _) = cookie.split_once('.').expect("a signed cookie: token.tag");
    assert_eq!(
        statements(&store, app, &cookie).await,
        ("Some(7)".into(), 1)
    );
    // Unsigned, or signed with the secret itself rather than the key
    // derived from it: no session, no statement.
    let (_, direct, _) = http(signed_with_the_secret, "POST", "/login", None).await;
    for forged in [token.to_string(), direct.unwrap()] {
        assert_eq!(statements(&store, app, &forged).await, ("None".into(), 0));
    }
}
