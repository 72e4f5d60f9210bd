//! Database faults, over real TCP: the app listens on a real port, 64
//! clients send real HTTP requests, and a TCP proxy inside the test sits
//! between the app's store and MariaDB (`DATABASE_URL`; fails, never skips,
//! when unreachable). The proxy can drop every connection (a restart, a
//! failover, `KILL CONNECTION`), refuse new ones (an outage), accept them
//! and forward nothing (a server that stopped answering), and heal.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rocket::{get, post, routes};
use session_rocket::store::mysql::MySqlStore;
use session_rocket::{Config, Session, SessionError, Sessions, Token};

mod support;
use support::proxy::{self, Proxy, Wire, BLACK_HOLE, PASS, REFUSE};
use support::{http, launch};

#[derive(Session)]
struct Counter {
    /// Two fields written by one request: both land or neither does.
    a: u64,
    b: u64,
}

#[get("/none")]
fn none() -> &'static str {
    "ok"
}

#[post("/login")]
fn login(mut s: Session<Counter>) {
    s.set_a(0);
    s.set_b(0);
}

#[post("/bump")]
async fn bump(mut s: Session<Counter>) -> Result<String, SessionError> {
    let f = s.fields_mut().await?;
    *f.a += 1;
    *f.b += 1;
    Ok(f.a.to_string())
}

#[get("/read")]
async fn read(s: Session<Counter>) -> Result<String, SessionError> {
    Ok(format!("{} {}", s.a().await?, s.b().await?))
}

/// 64 concurrent requests, one per session: their statuses.
async fn all(
    app: SocketAddr,
    method: &'static str,
    path: &'static str,
    cookies: &[String],
) -> Vec<u16> {
    let tasks: Vec<_> = cookies
        .iter()
        .cloned()
        .map(|c| tokio::spawn(async move { http(app, method, path, Some(&c)).await.0 }))
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    statuses
}

fn count(statuses: &[u16], status: u16) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outages_cost_a_short_503_and_heal_alone() {
    let url = std::env::var("DATABASE_URL").expect("DATABASE_URL names the MySQL server");
    let proxy = Proxy::start(proxy::upstream(&url, 3306), Wire::MySql).await;
    let through = proxy.url(&url);
    let prefix = support::unique("f");
    let config = Config {
        table_prefix: prefix,
        max_connections: 8,
        connect_timeout: 1,
        statement_timeout: 1,
        ..Config::default()
    };
    let store = MySqlStore::connect(&through, &config)
        .await
        .expect("connect through the proxy");
    session_rocket::store::SessionStore::prepare(&store, &config)
        .await
        .unwrap();
    let store = Arc::new(store);

    let figment = support::figment()
        .merge(("workers", 4))
        .merge(("sessions.connect_timeout", 1));
    let rocket = rocket::custom(figment)
        .attach(Sessions::with_shared_store(store.clone()))
        .mount("/", routes![none, login, bump, read]);
    let (app, shutdown, server) = launch(rocket).await;

    // 64 sessions, each bumped once
    let mut cookies = Vec::new();
    for _ in 0..64 {
        let (status, set, _) = http(app, "POST", "/login", None).await;
        assert_eq!(status, 200);
        cookies.push(set.expect("a session cookie"));
    }
    let mut bumped = vec![0u64; 64];
    let record = |statuses: &[u16], bumped: &mut Vec<u64>| {
        for (i, s) in statuses.iter().enumerate() {
            if *s == 200 {
                bumped[i] += 1;
            }
        }
    };
    let s = all(app, "POST", "/bump", &cookies).await;
    assert_eq!(count(&s, 200), 64, "{s:?}");
    record(&s, &mut bumped);

    // A restart: every pooled connection dies while idle. The first
    // statement on each finds out and retries once on a fresh connection.
    proxy.cut();
    let s = all(app, "POST", "/bump", &cookies).await;
    assert_eq!(count(&s, 200), 64, "a dropped pool costs no request: {s:?}");
    record(&s, &mut bumped);

    // An outage: connections refused. Session routes answer 503 quickly,
    // the others 200.
    proxy.set(REFUSE);
    proxy.cut();
    let started = Instant::now();
    let s = all(app, "POST", "/bump", &cookies).await;
    assert_eq!(count(&s, 503), 64, "{s:?}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "bounded: {:?}",
        started.elapsed()
    );
    let (status, _, _) = http(app, "GET", "/none", None).await;
    assert_eq!(status, 200, "a route without the session is unaffected");
    record(&s, &mut bumped);

    // Healed: the app recovers alone, within a second.
    proxy.set(PASS);
    let healed = Instant::now();
    let s = all(app, "POST", "/bump", &cookies).await;
    assert_eq!(count(&s, 200), 64, "{s:?}");
    assert!(
        healed.elapsed() < Duration::from_secs(1),
        "recovered in {:?}",
        healed.elapsed()
    );
    record(&s, &mut bumped);

    // A server that stopped answering: the pooled connections stay open
    // and nothing comes back. Bounded by the statement and connect
    // timeouts, then 503; healed, all succeed.
    proxy.set(BLACK_HOLE);
    let started = Instant::now();
    let s = tokio::time::timeout(Duration::from_secs(30), all(app, "POST", "/bump", &cookies))
        .await
        .expect("requests to a silent server must not hang");
    assert_eq!(count(&s, 503), 64, "{s:?}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "bounded: {:?}",
        started.elapsed()
    );
    let (status, _, _) = http(app, "GET", "/none", None).await;
    assert_eq!(status, 200);
    record(&s, &mut bumped);
    proxy.set(PASS);
    proxy.cut();
    let s = all(app, "POST", "/bump", &cookies).await;
    assert_eq!(count(&s, 200), 64, "{s:?}");
    record(&s, &mut bumped);

    // Nothing half-written, nothing lost, nothing applied that answered 503.
    for (i, cookie) in cookies.iter().enumerate() {
        let (status, _, body) = http(app, "GET", "/read", Some(cookie)).await;
        assert_eq!(status, 200);
        assert_eq!(body, format!("{0} {0}", bumped[i]), "session {i}");
    }

    store.drop_tables().await.unwrap();
    shutdown.notify();
    let _ = server.await;
}

#[post("/slow")]
async fn slow(mut s: Session<Counter>) -> &'static str {
    tokio::time::sleep(Duration::from_millis(600)).await;
    s.set_a(42);
    s.set_b(42);
    "saved"
}

/// A graceful shutdown lets the requests in flight finish their save: the
/// store is closed after them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_in_flight_at_shutdown_still_save() {
    let url = std::env::var("DATABASE_URL").expect("DATABASE_URL names the MySQL server");
    let prefix = support::unique("g");
    let figment = support::figment()
        .merge(("sessions.url", url.clone()))
        .merge(("sessions.table_prefix", prefix.clone()));
    let rocket = rocket::custom(figment)
        .attach(Sessions::fairing())
        .mount("/", routes![login, read, slow]);
    let (app, shutdown, server) = launch(rocket).await;
    let (_, cookie, _) = http(app, "POST", "/login", None).await;
    let cookie = cookie.expect("a session");
    let in_flight = {
        let cookie = cookie.clone();
        tokio::spawn(async move { http(app, "POST", "/slow", Some(&cookie)).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    shutdown.notify();
    let (status, _, body) = in_flight.await.unwrap();
    assert_eq!(
        (status, body.as_str()),
        (200, "saved"),
        "the save after shutdown began"
    );
    let _ = server.await;

    // The value is really stored: read it with a store of our own.
    let config = Config {
        table_prefix: prefix,
        ..Config::default()
    };
    let store = MySqlStore::connect(&url, &config).await.unwrap();
    let key = Token::parse(&cookie).unwrap().store_key();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let at = session_rocket::store::Validity {
        now,
        created_after: now - 1000,
    };
    let record = session_rocket::store::SessionStore::load(&store, &key, &[], at)
        .await
        .unwrap()
        .expect("the session");
    let a = record
        .fields
        .iter()
        .find(|(n, _)| n == "a")
        .map(|(_, v)| v.clone());
    assert_eq!(a.as_deref(), Some(&b"42"[..]));
    store.drop_tables().await.unwrap();
}
