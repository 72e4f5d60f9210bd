//! The fairing on the stores that are not default features, chosen by the
//! `url` scheme alone: PostgreSQL (`postgres://`, feature `postgres`),
//! Redis (`redis://`, feature `redis`) and a Redis Cluster
//! (`redis+cluster://`). A login, two changes, a logout over HTTP.

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

/// Runs the scenario on the store `url` names, tables or keys of its own.
async fn scenario(url: String) {
    let rocket = rocket::custom(
        figment()
            .merge(("sessions.url", url))
            .merge(("sessions.table_prefix", unique("st"))),
    )
    .attach(Sessions::fairing())
    .mount("/", routes![login, visit, me, logout]);
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
