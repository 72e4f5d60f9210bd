//! What a request has written when it fails or races after committing,
//! over real TCP on MariaDB (`DATABASE_URL`; fails, never skips, when
//! unreachable):
//! - a response carries the cookie of what was committed, even when a
//!   later write of the same request failed (`regenerate(); save()`, then
//!   a field over `max_field_bytes`);
//! - a regenerating request that had seen the session answers 409 when a
//!   logout ended it meanwhile, and starts no session (a logout is never
//!   undone, whatever the slower request did);
//! - of two logins sent with the same cookie, one moves the session and
//!   the other answers 409 and writes nothing: the pre-login data stays
//!   under the first one's token.

use std::sync::Arc;
use std::time::Duration;

use rocket::{get, post, routes, State};
use session_rocket::store::mysql::MySqlStore;
use session_rocket::{Config, Session, SessionError, Sessions};

mod support;
use support::{http, launch};

#[derive(Session)]
struct Account {
    cart: Vec<u32>,
    #[session(index)]
    user: Option<u64>,
    role: Option<String>,
    note: String,
}

#[post("/cart")]
fn cart(mut s: Session<Account>) {
    s.set_cart(vec![1, 2, 3]);
}

/// Logs in, saves, then writes a note too large to store: the request
/// fails (500), but the login was committed.
#[post("/login-then-fail")]
async fn login_then_fail(mut s: Session<Account>) -> Result<(), SessionError> {
    s.cart().await?;
    s.regenerate();
    s.set_user(Some(1));
    s.save().await?;
    s.set_note("x".repeat(70_000));
    Ok(())
}

/// Lets the test put a logout between `elevate`'s read and its write.
#[derive(Default, Clone)]
struct Gate {
    read: Arc<tokio::sync::Notify>,
    logged_out: Arc<tokio::sync::Notify>,
}

/// Reads the user, waits for the test's logout, then regenerates and
/// grants a role.
#[post("/elevate")]
async fn elevate(mut s: Session<Account>, gate: &State<Gate>) -> Result<(), SessionError> {
    s.user().await?;
    gate.read.notify_one();
    gate.logged_out.notified().await;
    s.regenerate();
    s.set_role(Some("admin".into()));
    Ok(())
}

/// A login that does not read first (a blind regenerate), slow enough for
/// a second one to overlap.
#[post("/login")]
async fn login(mut s: Session<Account>) {
    tokio::time::sleep(Duration::from_millis(200)).await;
    s.regenerate();
    s.set_user(Some(2));
}

#[post("/logout")]
async fn logout(s: Session<Account>) -> Result<(), SessionError> {
    s.destroy().await
}

#[get("/count/<user>")]
async fn count(s: Session<Account>, user: u64) -> Result<String, SessionError> {
    Ok(s.sessions_by_user(&Some(user)).await?.len().to_string())
}

#[get("/show")]
async fn show(s: Session<Account>) -> Result<String, SessionError> {
    Ok(format!(
        "{:?} {:?} {:?}",
        s.cart().await?,
        s.user().await?,
        s.role().await?
    ))
}

async fn app() -> (
    std::net::SocketAddr,
    rocket::Shutdown,
    tokio::task::JoinHandle<()>,
    Arc<MySqlStore>,
    Gate,
) {
    let store = support::mysql_store(Config::default()).await;
    let gate = Gate::default();
    let rocket = rocket::custom(support::figment().merge(("workers", 4)))
        .manage(gate.clone())
        .attach(Sessions::with_shared_store(store.clone()))
        .mount(
            "/",
            routes![cart, login_then_fail, elevate, login, logout, show, count],
        );
    let (addr, shutdown, server) = launch(rocket).await;
    (addr, shutdown, server, store, gate)
}

/// Live sessions whose `user` is `user`, through the index.
async fn sessions_of(app: std::net::SocketAddr, user: u64) -> usize {
    let (status, _, body) = http(app, "GET", &format!("/count/{user}"), None).await;
    assert_eq!(status, 200, "{body}");
    body.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_request_still_sends_the_cookie_it_committed() {
    let (app, shutdown, server, store, _) = app().await;
    let (_, before, _) = http(app, "POST", "/cart", None).await;
    let before = before.expect("a session");

    let (status, after, _) = http(app, "POST", "/login-then-fail", Some(&before)).await;
    assert_eq!(status, 500, "the note could not be saved");
    let after = after.expect("the regenerated session's cookie, committed by save()");
    assert_ne!(after, before);
    let (_, _, shown) = http(app, "GET", "/show", Some(&after)).await;
    assert_eq!(shown, "[1, 2, 3] Some(1) None", "the login and the cart");
    let (_, _, old) = http(app, "GET", "/show", Some(&before)).await;
    assert_eq!(old, "[] None None", "the replaced token reads nothing");

    store.drop_tables().await.unwrap();
    shutdown.notify();
    let _ = server.await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_regenerate_does_not_undo_a_logout() {
    let (app, shutdown, server, store, gate) = app().await;
    let (_, cookie, _) = http(app, "POST", "/cart", None).await;
    let cookie = cookie.expect("a session");
    // Sign in (user 2).
    let (status, cookie, _) = http(app, "POST", "/login", Some(&cookie)).await;
    assert_eq!(status, 200);
    let cookie = cookie.expect("the login's cookie");
    assert_eq!(sessions_of(app, 2).await, 1);

    let slow = {
        let cookie = cookie.clone();
        tokio::spawn(async move { http(app, "POST", "/elevate", Some(&cookie)).await })
    };
    gate.read.notified().await;
    let (status, _, _) = http(app, "POST", "/logout", Some(&cookie)).await;
    assert_eq!(status, 200);
    gate.logged_out.notify_one();
    let (status, set, _) = slow.await.unwrap();
    assert_eq!(
        status, 409,
        "the elevation saw the session, which then ended"
    );
    assert_eq!(set, None, "no cookie for a session that must not exist");
    assert_eq!(sessions_of(app, 2).await, 0, "nothing was created");
    let (_, _, shown) = http(app, "GET", "/show", Some(&cookie)).await;
    assert_eq!(shown, "[] None None");

    store.drop_tables().await.unwrap();
    shutdown.notify();
    let _ = server.await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_sent_twice_moves_the_session_once() {
    let (app, shutdown, server, store, _) = app().await;
    let (_, cookie, _) = http(app, "POST", "/cart", None).await;
    let cookie = cookie.expect("a session");
    let twice: Vec<_> = (0..2)
        .map(|_| {
            let cookie = cookie.clone();
            tokio::spawn(async move { http(app, "POST", "/login", Some(&cookie)).await })
        })
        .collect();
    let mut answers = Vec::new();
    for t in twice {
        let (status, set, _) = t.await.unwrap();
        answers.push((status, set));
    }
    answers.sort_by_key(|(status, _)| *status);
    assert_eq!(answers[0].0, 200);
    assert_eq!(answers[1], (409, None), "the second login writes nothing");
    let moved = answers[0].1.clone().expect("the first login's cookie");
    let (_, _, shown) = http(app, "GET", "/show", Some(&moved)).await;
    assert_eq!(
        shown, "[1, 2, 3] Some(2) None",
        "the cart kept across the login"
    );
    assert_eq!(sessions_of(app, 2).await, 1, "one session, not two");

    store.drop_tables().await.unwrap();
    shutdown.notify();
    let _ = server.await;
}
