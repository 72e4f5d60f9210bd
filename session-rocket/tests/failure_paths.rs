//! The failure paths through HTTP, on the real stores: MariaDB (reads
//! `DATABASE_URL`, fails when unreachable, never skips; a table prefix per
//! test) and a SQLite file per test. Each test runs once per store.

use std::sync::Arc;

use rocket::figment::Figment;
use rocket::http::{Cookie, Header, Status};
use rocket::local::asynchronous::{Client, LocalResponse};
use rocket::{get, post, routes};
use session_rocket::store::{SessionStore, StoreStats};
use session_rocket::{Session, SessionError, Sessions, Token};

#[derive(Session)]
struct Shop {
    user_id: Option<u64>,
    cart: Vec<String>,
    visits: u32,
    locale: String,
}

#[derive(Session)]
struct Prefs {
    theme: String,
}

#[get("/none")]
fn none(_session: Session<Shop>) -> &'static str {
    "ok"
}

#[get("/read")]
async fn read(session: Session<Shop>) -> Result<String, SessionError> {
    let user = *session.user_id().await?;
    let visits = *session.visits().await?;
    Ok(format!("{user:?} {visits} {}", session.locale().await?))
}

#[post("/bump")]
async fn bump(mut session: Session<Shop>) -> Result<String, SessionError> {
    let visits = session.visits_mut().await?;
    *visits += 1;
    Ok(visits.to_string())
}

#[post("/locale/<value>")]
fn locale(mut session: Session<Shop>, value: &str) {
    session.set_locale(value.to_string());
}

#[post("/cart/<item>")]
async fn add(mut session: Session<Shop>, item: &str) -> Result<(), SessionError> {
    session.cart_mut().await?.push(item.to_string());
    Ok(())
}

#[post("/login")]
fn login(mut session: Session<Shop>) {
    session.regenerate();
    session.set_user_id(Some(42));
}

#[post("/logout")]
async fn logout(session: Session<Shop>) -> Result<(), SessionError> {
    session.destroy().await
}

#[post("/both")]
fn both(mut shop: Session<Shop>, mut prefs: Session<Prefs>) {
    shop.set_locale("fr".into());
    prefs.set_theme("dark".into());
}

#[get("/both")]
async fn read_both(shop: Session<Shop>, prefs: Session<Prefs>) -> Result<String, SessionError> {
    Ok(format!("{} {}", shop.locale().await?, prefs.theme().await?))
}

#[post("/fail")]
fn fail(mut session: Session<Shop>) -> Status {
    session.set_visits(99);
    Status::InternalServerError
}

#[post("/escape")]
fn escape(mut session: Session<Shop>) -> &'static str {
    session.set_visits(7);
    // The guard outlives the handler: its change cannot be saved.
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        drop(session);
    });
    "ok"
}

mod support;
use support::{get, post, set_cookies};

fn figment() -> Figment {
    rocket::Config::figment().merge(("log_level", "off"))
}

async fn client_with(store: Arc<dyn SessionStore>, figment: Figment) -> Client {
    let rocket = rocket::custom(figment)
        .attach(Sessions::with_shared_store(store))
        .mount(
            "/",
            routes![none, read, bump, locale, add, login, logout, both, read_both, fail, escape],
        );
    Client::untracked(rocket).await.expect("launch")
}

fn removes(cookies: &[Cookie<'_>]) -> bool {
    cookies.iter().any(|c| c.value().is_empty())
}

async fn token_of(response: LocalResponse<'_>) -> String {
    assert_eq!(response.status(), Status::Ok);
    let cookies = set_cookies(&response);
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    cookies[0].value().to_string()
}

async fn stats_during<F: std::future::Future<Output = ()>>(
    store: &Arc<dyn SessionStore>,
    run: F,
) -> StoreStats {
    let before = store.stats();
    run.await;
    store.stats() - before
}

/// Item 1: a blind write under a cookie that names no live session is
/// stored under a fresh token.
async fn blind_write_under_a_dead_cookie_is_stored(store: Arc<dyn SessionStore>) {
    let client = client_with(store, figment()).await;
    let token = token_of(client.post("/login").dispatch().await).await;
    let (status, _) = post(&client, "/logout", Some(&token)).await;
    assert_eq!(status, Status::Ok);
    let unknown = Token::generate().unwrap().to_cookie_value();
    for dead in [token, unknown] {
        let (status, cookies) = post(&client, "/locale/de", Some(&dead)).await;
        assert_eq!(status, Status::Ok);
        assert_eq!(cookies.len(), 1, "a new Set-Cookie: {cookies:?}");
        let fresh = cookies[0].value().to_string();
        assert!(
            !fresh.is_empty() && fresh != dead,
            "a fresh token, never the client's"
        );
        let (_, _, body) = get(&client, "/read", &fresh).await;
        assert_eq!(body, "None 0 de", "the value is stored");
    }
}

/// Items 3a and 3b: around a regenerate, a write with the replaced token is
/// refused with 409 and no removal cookie, and a logout with it still ends
/// the session.
async fn a_regenerate_race_never_logs_in_or_out_by_accident(store: Arc<dyn SessionStore>) {
    let client = client_with(store, figment()).await;
    let old = token_of(client.post("/cart/apple").dispatch().await).await;
    let (status, cookies) = post(&client, "/login", Some(&old)).await;
    assert_eq!(status, Status::Ok);
    let new = cookies[0].value().to_string();
    assert_ne!(new, old);
    // in flight with the old token
    let (status, cookies) = post(&client, "/cart/pear", Some(&old)).await;
    assert_eq!(
        status,
        Status::Conflict,
        "the change was not saved and the client is told"
    );
    assert!(
        !removes(&cookies),
        "only a logout removes the cookie: {cookies:?}"
    );
    let (status, cookies) = post(&client, "/locale/xx", Some(&old)).await;
    assert_eq!(
        status,
        Status::Conflict,
        "a blind write with the old token: {cookies:?}"
    );
    assert!(cookies.is_empty());
    let (status, cookies, body) = get(&client, "/read", &old).await;
    assert_eq!(
        (status, body.as_str()),
        (Status::Ok, "None 0 "),
        "no reads with the old token"
    );
    assert!(cookies.is_empty());
    let (_, _, body) = get(&client, "/read", &new).await;
    assert_eq!(body, "Some(42) 0 ");
    // the logout sent by the tab that still holds the old token
    let (status, cookies) = post(&client, "/logout", Some(&old)).await;
    assert_eq!(status, Status::Ok);
    assert!(removes(&cookies));
    let (_, _, body) = get(&client, "/read", &new).await;
    assert_eq!(body, "None 0 ", "the session under the new token is gone");
}

/// Item 5: two session types on one request share one token.
async fn two_session_types_share_one_cookie(store: Arc<dyn SessionStore>) {
    let client = client_with(store, figment()).await;
    let response = client.post("/both").dispatch().await;
    let cookies = set_cookies(&response);
    assert_eq!(cookies.len(), 1, "one cookie: {cookies:?}");
    let token = cookies[0].value().to_string();
    let (_, cookies, body) = get(&client, "/both", &token).await;
    assert_eq!(body, "fr dark", "both writes kept");
    assert!(cookies.is_empty());
}

/// Item 6: a guard that outlives its handler is an error the app sees.
async fn a_guard_outliving_its_handler_is_a_500(store: Arc<dyn SessionStore>) {
    let client = client_with(store, figment()).await;
    let response = client.post("/escape").dispatch().await;
    assert_eq!(response.status(), Status::InternalServerError);
    assert!(set_cookies(&response).is_empty());
}

/// What each request costs in statements, through HTTP on a real store.
async fn statements_per_request(store: Arc<dyn SessionStore>) {
    let client = client_with(store.clone(), figment()).await;
    let mut token = String::new();
    let d = stats_during(&store, async {
        token = token_of(client.post("/login").dispatch().await).await;
    })
    .await;
    assert_eq!(
        d.statements, 1,
        "login without a cookie: one insert, its small fields in the session's row"
    );
    for (method, path, expected) in [
        ("get", "/none", 0),
        ("get", "/read", 1),
        ("post", "/bump", 2),
        ("post", "/locale/en", 1),
        // A login with a cookie: the move, the record of the replaced token
        // and the fields, in one transaction (memory: one call).
        ("post", "/login", 3),
    ] {
        let d = stats_during(&store, async {
            let (status, cookies) = if method == "get" {
                let (status, cookies, _) = get(&client, path, &token).await;
                (status, cookies)
            } else {
                post(&client, path, Some(&token)).await
            };
            assert_eq!(status, Status::Ok, "{path}");
            if path == "/login" {
                token = cookies[0].value().to_string();
            }
        })
        .await;
        assert_eq!(d.statements, expected, "{method} {path}");
    }
    let d = stats_during(&store, async {
        assert_eq!(post(&client, "/logout", Some(&token)).await.0, Status::Ok);
    })
    .await;
    assert_eq!(d.statements, 1, "logout");
}

/// `skip_on_server_error = false` persists the changes of a 5xx response;
/// the default persists nothing.
async fn skip_on_server_error_is_honoured(store: Arc<dyn SessionStore>) {
    for (skip, expected) in [(true, "Some(42) 0 "), (false, "Some(42) 99 ")] {
        let figment = figment().merge(("sessions.skip_on_server_error", skip));
        let client = client_with(store.clone(), figment).await;
        let token = token_of(client.post("/login").dispatch().await).await;
        let (status, _) = post(&client, "/fail", Some(&token)).await;
        assert_eq!(status, Status::InternalServerError);
        let (_, _, body) = get(&client, "/read", &token).await;
        assert_eq!(body, expected, "skip_on_server_error = {skip}");
    }
}

/// Item 10: several cookies of the session's name with different values
/// (one planted by a sibling subdomain) start a fresh session.
async fn several_session_cookies_are_ignored(store: Arc<dyn SessionStore>) {
    let client = client_with(store, figment()).await;
    let mine = token_of(client.post("/login").dispatch().await).await;
    let planted = token_of(client.post("/locale/evil").dispatch().await).await;
    for header in [
        format!("session={planted}; session={mine}"),
        format!("session={mine}; session={planted}"),
    ] {
        let response = client
            .get("/read")
            .header(Header::new("Cookie", header))
            .dispatch()
            .await;
        assert_eq!(
            response.into_string().await.unwrap(),
            "None 0 ",
            "neither is used"
        );
    }
    let response = client
        .get("/read")
        .header(Header::new("Cookie", format!("other=1; session={mine}")))
        .dispatch()
        .await;
    assert_eq!(response.into_string().await.unwrap(), "Some(42) 0 ");
}

on_every_store!(
    blind_write_under_a_dead_cookie_is_stored,
    a_regenerate_race_never_logs_in_or_out_by_accident,
    two_session_types_share_one_cookie,
    a_guard_outliving_its_handler_is_a_500,
    statements_per_request,
    skip_on_server_error_is_honoured,
    several_session_cookies_are_ignored,
);
