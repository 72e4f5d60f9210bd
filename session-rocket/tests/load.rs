//! The load test: 64 clients over real TCP, a mix of reads, one-field
//! changes, logins and logouts over 1,000 sessions on MariaDB
//! (`DATABASE_URL`), for 60 s (`LOAD_SECONDS` to change it). Asserts no
//! failed request, no lost update across fields, flat resident memory, and
//! prints its figures:
//!
//! ```sh
//! cargo test -p session-rocket --test load -- --nocapture
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rocket::{get, post, routes};
use session_rocket::store::mysql::MySqlStore;
use session_rocket::{Config, Session, SessionError, Sessions};

mod support;
use support::{http, launch};

const CLIENTS: usize = 64;
const SESSIONS: usize = 1_000;
/// Each session's counters, one per client of its group: clients never
/// change the same field of the same session at once, so every update must
/// land.
const FIELDS: usize = 8;

#[derive(Session)]
struct Load {
    f0: u64,
    f1: u64,
    f2: u64,
    f3: u64,
    f4: u64,
    f5: u64,
    f6: u64,
    f7: u64,
    user: Option<u64>,
}

#[get("/read")]
async fn read(s: Session<Load>) -> Result<String, SessionError> {
    Ok(format!(
        "{} {} {} {} {} {} {} {}",
        s.f0().await?,
        s.f1().await?,
        s.f2().await?,
        s.f3().await?,
        s.f4().await?,
        s.f5().await?,
        s.f6().await?,
        s.f7().await?
    ))
}

#[post("/bump/<field>")]
async fn bump(mut s: Session<Load>, field: usize) -> Result<(), SessionError> {
    match field {
        0 => *s.f0_mut().await? += 1,
        1 => *s.f1_mut().await? += 1,
        2 => *s.f2_mut().await? += 1,
        3 => *s.f3_mut().await? += 1,
        4 => *s.f4_mut().await? += 1,
        5 => *s.f5_mut().await? += 1,
        6 => *s.f6_mut().await? += 1,
        _ => *s.f7_mut().await? += 1,
    }
    Ok(())
}

#[post("/login")]
fn login(mut s: Session<Load>) {
    s.regenerate();
    s.set_user(Some(1));
}

#[post("/logout")]
async fn logout(s: Session<Load>) -> Result<(), SessionError> {
    s.destroy().await?;
    Ok(())
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_seconds_of_mixed_load_fail_nothing_and_lose_nothing() {
    let seconds: u64 = std::env::var("LOAD_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let url = std::env::var("DATABASE_URL").expect("DATABASE_URL names the MySQL server");
    let prefix = support::unique("ld");
    let config = Config {
        table_prefix: prefix,
        max_connections: 16,
        ..Config::default()
    };
    let store = Arc::new(MySqlStore::connect(&url, &config).await.expect("MySQL"));
    store.create_tables().await.unwrap();
    let rocket = rocket::custom(support::figment().merge(("workers", 8)))
        .attach(Sessions::with_shared_store(store.clone()))
        .mount("/", routes![read, bump, login, logout]);
    let (app, shutdown, server) = launch(rocket).await;

    let mut cookies = Vec::with_capacity(SESSIONS);
    for _ in 0..SESSIONS {
        let (status, set, _) = http(app, "POST", "/login", None).await;
        assert_eq!(status, 200);
        cookies.push(set.expect("a session"));
    }
    let cookies = Arc::new(cookies);
    // expected[session][field]: updates answered 200
    let expected: Arc<Vec<AtomicU64>> =
        Arc::new((0..SESSIONS * FIELDS).map(|_| AtomicU64::new(0)).collect());
    let failures = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let rss_start = rss_kib();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let (cookies, expected, failures, done) = (
                cookies.clone(),
                expected.clone(),
                failures.clone(),
                done.clone(),
            );
            tokio::spawn(async move {
                let (group, field) = (client / FIELDS, client % FIELDS);
                let groups = CLIENTS / FIELDS;
                let mut rng = client as u64 * 2_654_435_761 + 1;
                let mut next = move || {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    rng
                };
                while Instant::now() < deadline {
                    // a session of this client's group
                    let slot = (next() as usize % (SESSIONS / groups)) * groups + group;
                    let cookie = &cookies[slot.min(SESSIONS - 1)];
                    let roll = next() % 10;
                    let ok = if roll < 5 {
                        http(app, "GET", "/read", Some(cookie)).await.0 == 200
                    } else if roll < 8 {
                        let path = format!("/bump/{field}");
                        let ok = http(app, "POST", &path, Some(cookie)).await.0 == 200;
                        if ok {
                            expected[slot.min(SESSIONS - 1) * FIELDS + field]
                                .fetch_add(1, Ordering::Relaxed);
                        }
                        ok
                    } else if roll < 9 {
                        http(app, "POST", "/login", None).await.0 == 200
                    } else {
                        let (status, fresh, _) = http(app, "POST", "/login", None).await;
                        let fresh = fresh.unwrap_or_default();
                        status == 200 && http(app, "POST", "/logout", Some(&fresh)).await.0 == 200
                    };
                    if !ok {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for c in clients {
        c.await.unwrap();
    }
    let elapsed = started.elapsed();
    let rss_end = rss_kib();
    let requests = done.load(Ordering::Relaxed);

    // every update landed, and nothing else
    let mut lost = 0u64;
    for (slot, cookie) in cookies.iter().enumerate() {
        let (status, _, body) = http(app, "GET", "/read", Some(cookie)).await;
        assert_eq!(status, 200);
        let stored: Vec<u64> = body.split(' ').map(|v| v.parse().unwrap()).collect();
        for (field, value) in stored.iter().enumerate() {
            let want = expected[slot * FIELDS + field].load(Ordering::Relaxed);
            lost += want.abs_diff(*value);
        }
    }
    let stats = session_rocket::store::SessionStore::stats(&*store);
    println!(
        "load: {CLIENTS} clients, {SESSIONS} sessions, {:.1} s: {requests} requests ({:.0}/s), \
         {} failed, {lost} updates lost or extra, {} statements; RSS {} KiB at start, {} KiB at end",
        elapsed.as_secs_f64(),
        requests as f64 / elapsed.as_secs_f64(),
        failures.load(Ordering::Relaxed),
        stats.statements,
        rss_start,
        rss_end
    );
    assert_eq!(failures.load(Ordering::Relaxed), 0, "no failed request");
    assert_eq!(lost, 0, "no lost update across fields");
    assert!(
        rss_end < rss_start + 64 * 1024,
        "resident memory stays flat: {rss_start} KiB -> {rss_end} KiB"
    );
    store.drop_tables().await.unwrap();
    shutdown.notify();
    let _ = server.await;
}
