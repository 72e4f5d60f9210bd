//! Replies lost after the server executed a write, over real TCP on the
//! real MySQL (`DATABASE_URL`) and PostgreSQL (`POSTGRES_URL`) servers
//! (fails, never skips, when one is unreachable): a proxy between the
//! app's store and the server forwards each write, lets the server execute
//! and commit it, and then closes both sockets instead of forwarding the
//! answer (see `support::proxy`). Many clients increment versioned
//! counters while one write in five loses its reply; every counter must
//! end at exactly the increments that were answered 200 (none applied
//! twice, none applied and reported failed), and a login and a regenerate
//! whose commits lose their replies still hand out a cookie that reads the
//! whole session.

use rocket::{get, post, routes};
use session_rocket::{Config, Session, SessionError, Sessions};

mod support;
use support::proxy::{self, Proxy, Wire};
use support::{http, launch};

#[derive(Session)]
struct Wallet {
    #[session(versioned)]
    points: u64,
    user: Option<u64>,
}

#[post("/login")]
fn login(mut s: Session<Wallet>) {
    s.set_points(0);
}

#[post("/add")]
async fn add(mut s: Session<Wallet>) -> Result<String, SessionError> {
    let after = s.update_points(|p| {
        *p += 10;
        *p
    });
    Ok(after.await?.to_string())
}

#[post("/regenerate")]
async fn regenerate(mut s: Session<Wallet>) -> Result<(), SessionError> {
    s.points().await?;
    s.regenerate();
    s.set_user(Some(7));
    Ok(())
}

#[get("/read")]
async fn read(s: Session<Wallet>) -> Result<String, SessionError> {
    Ok(format!("{} {:?}", s.points().await?, s.user().await?))
}

const SESSIONS: usize = 4;
const CLIENTS_PER_SESSION: usize = 6;
const ADDS_PER_CLIENT: usize = 15;

async fn counters_stay_exact(url: &str, wire: Wire, port: u16) {
    let proxy = Proxy::start(proxy::upstream(url, port), wire).await;
    let through = proxy.url(url);
    let prefix = support::unique("lr");
    let figment = support::figment()
        .merge(("workers", 8))
        .merge(("sessions.url", through))
        .merge(("sessions.table_prefix", prefix.clone()))
        .merge(("sessions.max_connections", 16));
    let rocket = rocket::custom(figment)
        .attach(Sessions::fairing())
        .mount("/", routes![login, add, regenerate, read]);
    let (app, shutdown, server) = launch(rocket).await;

    // Logins whose inserts (the session's row, then its fields) lose one
    // reply in two: each still answers 200 with a cookie for a stored
    // session.
    proxy.set(proxy::LOSE_REPLIES);
    proxy.lose_every(2);
    let mut cookies = Vec::new();
    for _ in 0..SESSIONS {
        let (status, set, body) = http(app, "POST", "/login", None).await;
        assert_eq!(status, 200, "{body}");
        cookies.push(set.expect("a session cookie"));
    }
    assert!(proxy.lost() >= SESSIONS, "lost {}", proxy.lost());

    // Increments from many clients at once, one write in five losing its
    // reply.
    proxy.lose_every(5);
    let lost_before = proxy.lost();
    let tasks: Vec<_> = (0..SESSIONS * CLIENTS_PER_SESSION)
        .map(|c| {
            let cookie = cookies[c % SESSIONS].clone();
            tokio::spawn(async move {
                let mut ok = 0;
                let mut other = Vec::new();
                for _ in 0..ADDS_PER_CLIENT {
                    let (status, _, _) = http(app, "POST", "/add", Some(&cookie)).await;
                    if status == 200 {
                        ok += 1;
                    } else {
                        other.push(status);
                    }
                }
                (c % SESSIONS, ok, other)
            })
        })
        .collect();
    let mut answered = [0u64; SESSIONS];
    let mut failures = Vec::new();
    for task in tasks {
        let (session, ok, other) = task.await.unwrap();
        answered[session] += ok;
        failures.extend(other);
    }
    let lost = proxy.lost() - lost_before;
    assert!(lost >= 20, "the proxy lost only {lost} replies");
    assert!(
        failures.is_empty(),
        "a lost reply of an applied write must be recognised, not answered as a failure: {failures:?}"
    );

    // Regenerates whose transactions commit and lose their replies (one
    // in two): the new cookie reads everything, the old one nothing.
    proxy.lose_every(2);
    let lost_before = proxy.lost();
    let mut moved = Vec::new();
    for cookie in &cookies {
        let (status, set, body) = http(app, "POST", "/regenerate", Some(cookie)).await;
        assert_eq!(status, 200, "{body}");
        moved.push(set.expect("the regenerated session's cookie"));
    }
    assert!(proxy.lost() - lost_before >= SESSIONS / 2);

    proxy.set(proxy::PASS);
    for (i, cookie) in moved.iter().enumerate() {
        let (status, _, body) = http(app, "GET", "/read", Some(cookie)).await;
        assert_eq!(status, 200);
        assert_eq!(
            body,
            format!("{} Some(7)", answered[i] * 10),
            "session {i}: every increment answered 200 applied exactly once"
        );
        let (_, _, old) = http(app, "GET", "/read", Some(&cookies[i])).await;
        assert_eq!(old, "0 None", "the replaced token reads nothing");
    }

    shutdown.notify();
    let _ = server.await;
    drop_tables(url, &prefix).await;
}

async fn drop_tables(url: &str, prefix: &str) {
    let config = Config {
        table_prefix: prefix.to_string(),
        ..Config::default()
    };
    if url.starts_with("postgres") {
        let store = session_rocket::store::postgres::PgStore::connect(url, &config)
            .await
            .unwrap();
        store.drop_tables().await.unwrap();
    } else {
        let store = session_rocket::store::mysql::MySqlStore::connect(url, &config)
            .await
            .unwrap();
        store.drop_tables().await.unwrap();
    }
}

fn env(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| panic!("{var} names the server"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_mysql() {
    counters_stay_exact(&env("DATABASE_URL"), Wire::MySql, 3306).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres() {
    counters_stay_exact(&env("POSTGRES_URL"), Wire::Postgres, 5432).await;
}
