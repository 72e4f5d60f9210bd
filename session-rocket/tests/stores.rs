//! The fairing on every server-side store, chosen by the `url` scheme
//! alone: MySQL and SQLite (default features), PostgreSQL (`postgres://`,
//! feature `postgres`), Redis (`redis://`, feature `redis`) and a Redis
//! Cluster (`redis+cluster://`). Over HTTP: a login, two changes, a
//! logout; then eight logins of one user at once under `max_sessions = 2`.

use rocket::{get, post, routes};
use session_rocket::{Session, SessionError, Sessions};

mod support;
use support::{figment, http, launch, unique};

#[derive(Session)]
struct Account {
    user: Option<u64>,
    visits: u32,
}

#[post("/login")]
fn login(mut s: Session<Account>) -> &'static str {
    s.regenerate();
    s.set_user(Some(7));
    "ok"
}

#[post("/visit")]
async fn visit(mut s: Session<Account>) -> Result<String, SessionError> {
    *s.visits_mut().await? += 1;
    Ok(s.visits().await?.to_string())
}

#[get("/me")]
async fn me(s: Session<Account>) -> Result<String, SessionError> {
    Ok(format!("{:?} {}", s.user().await?, s.visits().await?))
}

#[post("/logout")]
async fn logout(s: Session<Account>) -> Result<&'static str, SessionError> {
    s.destroy().await?;
    Ok("bye")
}

/// A user may have two sessions: a third login ends the oldest.
#[derive(Session)]
struct Seat {
    #[session(index, max_sessions = 2)]
    user: Option<u64>,
}

#[post("/seat")]
fn seat(mut s: Session<Seat>) -> &'static str {
    s.regenerate();
    s.set_user(Some(9));
    "ok"
}

#[get("/seats")]
async fn seats(s: Session<Seat>) -> Result<String, SessionError> {
    Ok(s.sessions_by_user(&Some(9)).await?.len().to_string())
}

/// Runs the scenario on the store `url` names, tables or keys of its own:
/// a login, two changes, a logout; then eight logins of one user at once
/// under `max_sessions = 2`, which leave exactly two sessions.
async fn scenario(url: String) {
    let rocket = rocket::custom(
        figment()
            .merge(("sessions.url", url))
            .merge(("sessions.table_prefix", unique("st"))),
    )
    .attach(Sessions::fairing())
    .mount("/", routes![login, visit, me, logout, seat, seats]);
    let (app, _, _) = launch(rocket).await;
    let (status, cookie, _) = http(app, "POST", "/login", None).await;
    assert_eq!(status, 200);
    let cookie = cookie.expect("login sets a cookie");
    for expected in ["1", "2"] {
        assert_eq!(http(app, "POST", "/visit", Some(&cookie)).await.2, expected);
    }
    assert_eq!(http(app, "GET", "/me", Some(&cookie)).await.2, "Some(7) 2");
    assert_eq!(http(app, "POST", "/logout", Some(&cookie)).await.0, 200);
    assert_eq!(http(app, "GET", "/me", Some(&cookie)).await.2, "None 0");
    // The logout sticks: a write with the old cookie starts a new session
    // (a new cookie), never the old one again.
    let (_, fresh, _) = http(app, "POST", "/login", Some(&cookie)).await;
    assert_ne!(fresh.as_deref(), Some(cookie.as_str()));

    let logins: Vec<_> = (0..8)
        .map(|_| tokio::spawn(async move { http(app, "POST", "/seat", None).await }))
        .collect();
    for login in logins {
        assert_eq!(login.await.unwrap().0, 200);
    }
    assert_eq!(http(app, "GET", "/seats", None).await.2, "2");
}

#[rocket::async_test]
async fn a_session_lives_and_ends_on_postgres() {
    scenario(std::env::var("POSTGRES_URL").expect("POSTGRES_URL (see .cargo/config.toml)")).await;
}

#[rocket::async_test]
async fn a_session_lives_and_ends_on_redis() {
    scenario(std::env::var("REDIS_URL").expect("REDIS_URL (see .cargo/config.toml)")).await;
}

#[rocket::async_test]
async fn a_session_lives_and_ends_on_a_redis_cluster() {
    let url =
        std::env::var("REDIS_CLUSTER_URL").expect("REDIS_CLUSTER_URL (see .cargo/config.toml)");
    if url.starts_with("redis+cluster://127.0.0.1:7001,") {
        // The cluster of the default URL: up unless it is (CI starts it).
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/cluster/redis-cluster.sh"
        );
        let up = std::process::Command::new("bash")
            .args([script, "up", "7001"])
            .status()
            .unwrap();
        assert!(up.success(), "redis-cluster.sh up failed");
    }
    scenario(url).await;
}

#[rocket::async_test]
async fn a_session_lives_and_ends_on_mysql() {
    scenario(std::env::var("DATABASE_URL").expect("DATABASE_URL (see .cargo/config.toml)")).await;
}

#[rocket::async_test]
async fn a_session_lives_and_ends_on_sqlite() {
    let dir = std::env::temp_dir().join(unique("stores-sqlite"));
    std::fs::create_dir_all(&dir).unwrap();
    scenario(format!("sqlite://{}", dir.join("sessions.db").display())).await;
    let _ = std::fs::remove_dir_all(&dir);
}
