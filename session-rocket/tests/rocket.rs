//! The Rocket integration end to end, with Rocket's local asynchronous
//! client: cookies, status codes and the statements each request costs.

use std::sync::Arc;

use rocket::http::{Cookie, Status};
use rocket::local::asynchronous::{Client, LocalResponse};
use rocket::request::{FromRequest, Outcome, Request};
use rocket::{get, post, routes, Build, Rocket};
use session_rocket::store::memory::MemoryStore;
use session_rocket::store::{SessionStore, StoreStats};
use session_rocket::{Session, SessionError, Sessions};

#[derive(Session)]
struct Shop {
    user_id: Option<u64>,
    cart: Vec<String>,
    visits: u32,
    #[session(deferred)]
    history: Vec<String>,
}

#[get("/none")]
fn none(_session: Session<Shop>) -> &'static str {
    "ok"
}

#[get("/read")]
async fn read(session: Session<Shop>) -> Result<String, SessionError> {
    let user = *session.user_id().await?;
    let visits = *session.visits().await?;
    Ok(format!("{user:?} {visits}"))
}

#[post("/visit")]
async fn visit(mut session: Session<Shop>) -> Result<String, SessionError> {
    let visits = session.visits_mut().await?;
    *visits += 1;
    Ok(visits.to_string())
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

#[post("/fail")]
fn fail(mut session: Session<Shop>) -> Status {
    session.set_visits(99);
    Status::InternalServerError
}

#[post("/save")]
async fn save(mut session: Session<Shop>) -> Result<&'static str, SessionError> {
    session.set_visits(7);
    session.save().await?;
    Ok("saved")
}

#[post("/history")]
async fn history(mut session: Session<Shop>) -> Result<String, SessionError> {
    let history = session.history_mut().await?;
    history.push("/history".into());
    Ok(history.len().to_string())
}

/// A guard built on the session, as apps write them.
struct User(u64);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for User {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        let Outcome::Success(session) = req.guard::<Session<Shop>>().await else {
            return Outcome::Error((Status::InternalServerError, ()));
        };
        match session.user_id().await {
            Ok(Some(id)) => Outcome::Success(User(*id)),
            _ => Outcome::Forward(Status::Unauthorized),
        }
    }
}

#[get("/me")]
async fn me(user: User, session: Session<Shop>) -> Result<String, SessionError> {
    Ok(format!("{} {}", user.0, session.visits().await?))
}

#[get("/twice")]
async fn twice(_a: Session<Shop>, _b: Session<Shop>) -> &'static str {
    "unreachable"
}

fn app(store: Arc<dyn SessionStore>) -> Rocket<Build> {
    rocket::custom(rocket::Config::figment().merge(("log_level", "off")))
        .attach(Sessions::with_shared_store(store))
        .mount(
            "/",
            routes![none, read, visit, add, login, logout, fail, save, history, me, twice],
        )
}

async fn client() -> (Client, Arc<MemoryStore>) {
    let store = Arc::new(MemoryStore::new());
    let client = Client::untracked(app(store.clone())).await.expect("launch");
    (client, store)
}

fn set_cookies(response: &LocalResponse<'_>) -> Vec<String> {
    response
        .headers()
        .get("Set-Cookie")
        .map(str::to_string)
        .collect()
}

fn value_of(set_cookie: &str) -> String {
    Cookie::parse(set_cookie.to_string())
        .unwrap()
        .value()
        .to_string()
}

async fn stats_during<F, Fut>(store: &MemoryStore, run: F) -> StoreStats
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let before = store.stats();
    run().await;
    store.stats() - before
}

/// Logs in and returns the session cookie's value.
async fn logged_in(client: &Client) -> String {
    let response = client.post("/login").dispatch().await;
    assert_eq!(response.status(), Status::Ok);
    let cookies = set_cookies(&response);
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    value_of(&cookies[0])
}

#[rocket::async_test]
async fn an_unused_guard_sets_no_cookie_and_reads_nothing() {
    let (client, store) = client().await;
    let d = stats_during(&store, || async {
        let response = client.get("/none").dispatch().await;
        assert_eq!(response.status(), Status::Ok);
        assert!(set_cookies(&response).is_empty());
    })
    .await;
    assert_eq!(d.statements, 0);
    let token = logged_in(&client).await;
    let d = stats_during(&store, || async {
        let response = client
            .get("/none")
            .cookie(("session", token.clone()))
            .dispatch()
            .await;
        assert!(set_cookies(&response).is_empty());
    })
    .await;
    assert_eq!(d.statements, 0, "taking the guard costs nothing");
}

#[rocket::async_test]
async fn first_login_sets_exactly_one_cookie_with_safe_flags() {
    let (client, store) = client().await;
    let d = stats_during(&store, || async {
        let response = client.post("/login").dispatch().await;
        let cookies = set_cookies(&response);
        assert_eq!(cookies.len(), 1, "{cookies:?}");
        let cookie = Cookie::parse(cookies[0].clone()).unwrap();
        assert_eq!(cookie.name(), "session");
        assert_eq!(cookie.value().len(), 43);
        assert_eq!(cookie.http_only(), Some(true));
        assert_eq!(cookie.secure(), Some(true));
        assert_eq!(cookie.same_site(), Some(rocket::http::SameSite::Lax));
        assert_eq!(cookie.path(), Some("/"));
        assert_eq!(cookie.max_age(), Some(rocket::time::Duration::days(1)));
    })
    .await;
    assert!(
        d.statements <= 2,
        "a login costs at most 2 statements, took {}",
        d.statements
    );
    assert_eq!(d.rows_written, 1);
}

#[rocket::async_test]
async fn a_read_only_request_sends_no_cookie_and_writes_nothing() {
    let (client, store) = client().await;
    let token = logged_in(&client).await;
    let d = stats_during(&store, || async {
        let response = client
            .get("/read")
            .cookie(("session", token.clone()))
            .dispatch()
            .await;
        assert!(set_cookies(&response).is_empty());
        assert_eq!(response.into_string().await.unwrap(), "Some(42) 0");
    })
    .await;
    assert_eq!(d.statements, 1, "one load, no write");
    assert_eq!(d.rows_written, 0);
}

#[rocket::async_test]
async fn a_one_field_change_writes_only_that_field() {
    let (client, store) = client().await;
    let token = logged_in(&client).await;
    client
        .post("/cart/apple")
        .cookie(("session", token.clone()))
        .dispatch()
        .await;
    let d = stats_during(&store, || async {
        let response = client
            .post("/visit")
            .cookie(("session", token.clone()))
            .dispatch()
            .await;
        assert_eq!(response.into_string().await.unwrap(), "1");
    })
    .await;
    assert_eq!(d.statements, 2, "load + write");
    assert_eq!(d.rows_written, 1);
    assert_eq!(d.bytes_written, 1);
    let response = client
        .get("/read")
        .cookie(("session", token))
        .dispatch()
        .await;
    assert_eq!(response.into_string().await.unwrap(), "Some(42) 1");
}

#[rocket::async_test]
async fn regenerate_changes_the_cookie_and_kills_the_old_token() {
    let (client, _) = client().await;
    let anonymous = {
        let response = client.post("/cart/pear").dispatch().await;
        value_of(&set_cookies(&response)[0])
    };
    let response = client
        .post("/login")
        .cookie(("session", anonymous.clone()))
        .dispatch()
        .await;
    let cookies = set_cookies(&response);
    assert_eq!(cookies.len(), 1);
    let fresh = value_of(&cookies[0]);
    assert_ne!(fresh, anonymous);
    let response = client
        .get("/read")
        .cookie(("session", fresh))
        .dispatch()
        .await;
    assert_eq!(response.into_string().await.unwrap(), "Some(42) 0");
    let response = client
        .get("/read")
        .cookie(("session", anonymous))
        .dispatch()
        .await;
    assert_eq!(
        response.into_string().await.unwrap(),
        "None 0",
        "the old token opens nothing"
    );
}

#[rocket::async_test]
async fn destroy_removes_the_data_and_expires_the_cookie() {
    let (client, store) = client().await;
    let token = logged_in(&client).await;
    let d = stats_during(&store, || async {
        let response = client
            .post("/logout")
            .cookie(("session", token.clone()))
            .dispatch()
            .await;
        assert_eq!(response.status(), Status::Ok);
        let cookies = set_cookies(&response);
        assert_eq!(cookies.len(), 1);
        let cookie = Cookie::parse(cookies[0].clone()).unwrap();
        assert_eq!(cookie.name(), "session");
        assert_eq!(cookie.value(), "");
        assert_eq!(cookie.max_age(), Some(rocket::time::Duration::ZERO));
        assert_eq!(cookie.path(), Some("/"));
        assert_eq!(cookie.http_only(), Some(true));
    })
    .await;
    assert_eq!(d.statements, 1, "destroy is one statement");
    assert!(store.is_empty());
    let response = client
        .get("/read")
        .cookie(("session", token))
        .dispatch()
        .await;
    assert_eq!(response.into_string().await.unwrap(), "None 0");
}

#[rocket::async_test]
async fn two_guards_in_one_request_load_once() {
    let (client, store) = client().await;
    let token = logged_in(&client).await;
    let d = stats_during(&store, || async {
        let response = client
            .get("/me")
            .cookie(("session", token.clone()))
            .dispatch()
            .await;
        assert_eq!(response.into_string().await.unwrap(), "42 0");
    })
    .await;
    assert_eq!(d.statements, 1);
}

#[rocket::async_test]
async fn a_5xx_response_persists_nothing() {
    let (client, store) = client().await;
    let d = stats_during(&store, || async {
        let response = client.post("/fail").dispatch().await;
        assert_eq!(response.status(), Status::InternalServerError);
        assert!(set_cookies(&response).is_empty());
    })
    .await;
    assert_eq!(d.statements, 0);
    assert!(store.is_empty());
}

#[rocket::async_test]
async fn save_writes_early_and_the_fairing_writes_nothing_more() {
    let (client, store) = client().await;
    let d = stats_during(&store, || async {
        let response = client.post("/save").dispatch().await;
        assert_eq!(response.status(), Status::Ok);
        assert_eq!(set_cookies(&response).len(), 1, "the cookie is still sent");
    })
    .await;
    assert_eq!(d.statements, 1);
}

#[rocket::async_test]
async fn deferred_fields_load_by_their_own_query() {
    let (client, store) = client().await;
    let token = logged_in(&client).await;
    let d = stats_during(&store, || async {
        let response = client
            .post("/history")
            .cookie(("session", token.clone()))
            .dispatch()
            .await;
        assert_eq!(response.into_string().await.unwrap(), "1");
    })
    .await;
    assert_eq!(
        d.statements, 2,
        "the deferred field's own load, then its write"
    );
}

#[rocket::async_test]
async fn bad_cookies_start_a_fresh_session() {
    let (client, store) = client().await;
    for bad in [
        "",
        "x",
        &"B".repeat(43),
        &"%".repeat(4096),
        "../../etc/passwd",
        "\u{1F600}",
    ] {
        let response = client
            .get("/read")
            .cookie(("session", bad.to_string()))
            .dispatch()
            .await;
        assert_eq!(response.status(), Status::Ok, "cookie {bad:?}");
        assert_eq!(response.into_string().await.unwrap(), "None 0");
    }
    // an unknown, well-formed token is never adopted as the session id
    let unknown = "A".repeat(43);
    let response = client
        .post("/visit")
        .cookie(("session", unknown.clone()))
        .dispatch()
        .await;
    let cookies = set_cookies(&response);
    assert_eq!(cookies.len(), 1);
    assert_ne!(value_of(&cookies[0]), unknown);
    assert_eq!(store.len(), 1);
}

#[rocket::async_test]
async fn a_second_live_guard_is_an_error_not_a_deadlock() {
    let (client, _) = client().await;
    let response = client.get("/twice").dispatch().await;
    assert_eq!(response.status(), Status::InternalServerError);
}

#[rocket::async_test]
async fn a_failing_store_turns_the_response_into_503() {
    // A real MySQL store whose server is unreachable: nothing listens on port 1.
    let options: session_rocket::sqlx::mysql::MySqlConnectOptions =
        "mysql://root@127.0.0.1:1/test".parse().unwrap();
    let pool = session_rocket::sqlx::mysql::MySqlPoolOptions::new()
        .acquire_timeout(std::time::Duration::from_secs(1))
        .connect_lazy_with(options);
    let store = session_rocket::store::mysql::MySqlStore::new(pool);
    let rocket = rocket::custom(rocket::Config::figment().merge(("log_level", "off")))
        .attach(Sessions::with_store(store))
        .mount("/", routes![read, visit]);
    let client = Client::untracked(rocket).await.unwrap();
    let token = "A".repeat(43);
    // the handler's own read fails: `?` answers 503
    let response = client
        .get("/read")
        .cookie(("session", token))
        .dispatch()
        .await;
    assert_eq!(response.status(), Status::ServiceUnavailable);
    // a blind write whose flush fails: the fairing turns the 200 into a 503
    let response = client.post("/visit").dispatch().await;
    assert_eq!(response.status(), Status::ServiceUnavailable);
    assert!(set_cookies(&response).is_empty());
}

/// The guard begins each request for its route: once `/read` has run, its
/// load fetches what it used (`user_id`, `visits`) and not the cart, in
/// the same one statement; another route still gets every field it reads.
#[rocket::async_test]
async fn a_route_loads_only_what_it_used_before() {
    let (client, store) = client().await;
    let token = logged_in(&client).await;
    for item in ["apple", "pear", "plum"] {
        let response = client
            .post(format!("/cart/{item}"))
            .cookie(("session", token.clone()))
            .dispatch()
            .await;
        assert_eq!(response.status(), Status::Ok);
    }
    let read = || async {
        let response = client
            .get("/read")
            .cookie(("session", token.clone()))
            .dispatch()
            .await;
        assert_eq!(response.status(), Status::Ok);
        assert_eq!(response.into_string().await.unwrap(), "Some(42) 0");
    };
    let first = stats_during(&store, read).await;
    assert_eq!(first.statements, 1);
    assert_eq!(
        first.fields_loaded, 2,
        "user_id and cart: every stored field"
    );
    let settled = stats_during(&store, read).await;
    assert_eq!(settled.statements, 1, "still one statement");
    assert_eq!(
        settled.fields_loaded, 1,
        "user_id only: visits is not stored"
    );
    // Another route reads the cart it never read before: all of it.
    let d = stats_during(&store, || async {
        let response = client
            .post("/cart/fig")
            .cookie(("session", token.clone()))
            .dispatch()
            .await;
        assert_eq!(response.status(), Status::Ok);
    })
    .await;
    assert_eq!(d.statements, 2, "its load and its write");
    let h = client
        .get("/read")
        .cookie(("session", token.clone()))
        .dispatch()
        .await;
    assert_eq!(h.status(), Status::Ok);
}
