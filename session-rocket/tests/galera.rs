//! Two app instances on two nodes of a 3-node MariaDB Galera cluster, with
//! requests alternating between them (a load balancer without sticky
//! routing): no lost update across fields, versioned fields exact, no
//! resurrection after a logout, regenerate across instances, certification
//! conflicts retried and counted; then a node killed under load: the
//! instance on a live node keeps serving after the eviction stall, nothing
//! is half-written, and the node rejoins with everything.
//!
//! The test brings up its own throwaway cluster on loopback with
//! `tests/cluster/galera.sh` (Debian's `galera-4` and `mariadb-server`;
//! ports 3311-3313, 4571-4593) and takes it down at the end. It fails,
//! never skips, when the cluster cannot start.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rocket::{get, post, routes};
use session_rocket::store::SessionStore;
use session_rocket::{Session, SessionError, Sessions};

mod support;
use support::{figment, http, serve, unique};

#[derive(Session)]
struct Shop {
    a: u64,
    b: u64,
    /// `x` and `y` are always written together: a half-written request
    /// would leave them apart.
    x: u64,
    y: u64,
    note: String,
    #[session(versioned)]
    hits: u64,
}

#[post("/login")]
fn login(mut s: Session<Shop>) -> &'static str {
    s.regenerate();
    s.set_note("in".into());
    "ok"
}

#[post("/relogin")]
async fn relogin(mut s: Session<Shop>) -> Result<&'static str, SessionError> {
    let _ = s.a().await?;
    s.regenerate();
    Ok("ok")
}

#[post("/inc/a")]
async fn inc_a(mut s: Session<Shop>) -> Result<String, SessionError> {
    let a = s.a_mut().await?;
    *a += 1;
    Ok(a.to_string())
}

#[post("/inc/b")]
async fn inc_b(mut s: Session<Shop>) -> Result<String, SessionError> {
    let b = s.b_mut().await?;
    *b += 1;
    Ok(b.to_string())
}

#[post("/pair")]
async fn pair(mut s: Session<Shop>) -> Result<String, SessionError> {
    *s.x_mut().await? += 1;
    *s.y_mut().await? += 1;
    Ok(s.x().await?.to_string())
}

#[post("/note/<text>")]
fn note(mut s: Session<Shop>, text: String) -> &'static str {
    s.set_note(text);
    "ok"
}

#[post("/hit")]
async fn hit(mut s: Session<Shop>) -> Result<String, SessionError> {
    Ok(s.update_hits(|h| {
        *h += 1;
        *h
    })
    .await?
    .to_string())
}

#[get("/state")]
async fn state(s: Session<Shop>) -> Result<String, SessionError> {
    Ok(format!(
        "{} {} {} {} {} {}",
        s.a().await?,
        s.b().await?,
        s.x().await?,
        s.y().await?,
        s.hits().await?,
        s.note().await?
    ))
}

#[post("/logout")]
async fn logout(s: Session<Shop>) -> Result<&'static str, SessionError> {
    s.destroy().await?;
    Ok("bye")
}

/// The project's cluster script.
fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/cluster/galera.sh")
}

fn cluster(args: &[&str]) {
    let status = Command::new("bash")
        .arg(script())
        .args(args)
        .status()
        .expect("bash runs");
    assert!(status.success(), "galera.sh {args:?} failed");
}

/// The cluster, taken down when the test ends (passing or not).
struct Cluster;

impl Cluster {
    fn up() -> Cluster {
        cluster(&["up"]);
        Cluster
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        cluster(&["down"]);
    }
}

fn node_url(n: u16) -> String {
    format!("mysql://root@127.0.0.1:{}/test", 3310 + n)
}

/// One app instance on node `n`; its store, to read its counters.
async fn instance(n: u16, prefix: &str) -> (SocketAddr, Arc<dyn SessionStore>) {
    let rocket = rocket::custom(
        figment()
            .merge(("sessions.url", node_url(n)))
            .merge(("sessions.table_prefix", prefix))
            .merge(("sessions.connect_timeout", 2))
            .merge(("sessions.statement_timeout", 10)),
    )
    .attach(Sessions::fairing())
    .mount(
        "/",
        routes![login, relogin, inc_a, inc_b, pair, note, hit, state, logout],
    )
    .ignite()
    .await
    .expect("the instance starts");
    let store = Sessions::state(&rocket).unwrap().store().unwrap().clone();
    let (app, _, _) = serve(rocket).await;
    (app, store)
}

/// Two instances behind a "load balancer" that alternates requests.
#[derive(Clone)]
struct Balancer {
    apps: [SocketAddr; 2],
    next: Arc<AtomicUsize>,
}

impl Balancer {
    async fn send(
        &self,
        method: &str,
        path: &str,
        cookie: Option<&str>,
    ) -> (u16, Option<String>, String) {
        let app = self.apps[self.next.fetch_add(1, Ordering::Relaxed) % 2];
        http(app, method, path, cookie).await
    }

    async fn login(&self) -> String {
        let (status, cookie, _) = self.send("POST", "/login", None).await;
        assert_eq!(status, 200);
        cookie.expect("login sets the cookie")
    }

    /// The state as each instance reads it: both must agree.
    async fn state(&self, cookie: &str) -> String {
        let (s1, _, one) = http(self.apps[0], "GET", "/state", Some(cookie)).await;
        let (s2, _, two) = http(self.apps[1], "GET", "/state", Some(cookie)).await;
        assert_eq!((s1, s2), (200, 200));
        assert_eq!(one, two, "both instances read the same session");
        one
    }
}

fn retries(stores: &[Arc<dyn SessionStore>]) -> u64 {
    stores.iter().map(|s| s.stats().retries).sum()
}

#[rocket::async_test]
async fn two_instances_on_two_galera_nodes_keep_every_guarantee() {
    let _cluster = Cluster::up();
    let prefix = unique("g");
    let (app1, store1) = instance(1, &prefix).await;
    let (app2, store2) = instance(2, &prefix).await;
    let stores = [store1, store2];
    let lb = Balancer {
        apps: [app1, app2],
        next: Arc::new(AtomicUsize::new(0)),
    };

    // 1. Concurrent requests on different fields, alternating instances:
    // each is a read-modify-write that must see the previous request's
    // write, made on the other node a moment before. Repeated rounds.
    const SESSIONS: usize = 6;
    const INCREMENTS: u64 = 25;
    for round in 0..3 {
        let mut tasks = Vec::new();
        for _ in 0..SESSIONS {
            let cookie = lb.login().await;
            for field in ["a", "b"] {
                let (lb, cookie) = (lb.clone(), cookie.clone());
                tasks.push(tokio::spawn(async move {
                    for i in 1..=INCREMENTS {
                        let (status, _, body) = lb
                            .send("POST", &format!("/inc/{field}"), Some(&cookie))
                            .await;
                        assert_eq!(status, 200, "{field}: {body}");
                        assert_eq!(body, i.to_string(), "{field} read its last write");
                    }
                    cookie
                }));
            }
        }
        let mut cookies = Vec::new();
        for task in tasks {
            cookies.push(task.await.unwrap());
        }
        cookies.dedup();
        for cookie in &cookies {
            assert_eq!(
                lb.state(cookie).await,
                format!("{INCREMENTS} {INCREMENTS} 0 0 0 in"),
                "round {round}: no update lost"
            );
        }
    }

    // 2. A versioned field updated from both instances at once: exact.
    let cookie = lb.login().await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (lb, cookie) = (lb.clone(), cookie.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..10 {
                let (status, _, body) = lb.send("POST", "/hit", Some(&cookie)).await;
                assert_eq!(status, 200, "{body}");
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(lb.state(&cookie).await, "0 0 0 0 80 in", "versioned: exact");

    // 3. One row written from both nodes at once: certification conflicts,
    // retried whole (every request succeeds) and counted.
    let before = retries(&stores);
    let mut tasks = Vec::new();
    for t in 0..8 {
        let (lb, cookie) = (lb.clone(), cookie.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..20 {
                let (status, _, body) = lb
                    .send("POST", &format!("/note/t{t}i{i}"), Some(&cookie))
                    .await;
                assert_eq!(status, 200, "{body}");
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let conflicts = retries(&stores) - before;
    println!("galera: {conflicts} writes retried after a conflict");
    assert!(
        conflicts > 0,
        "conflicting writes on two nodes were retried"
    );

    // 4. A logout on one instance while the other writes: never undone.
    for _ in 0..3 {
        let cookie = lb.login().await;
        let writers: Vec<_> = (0..4)
            .map(|_| {
                let cookie = cookie.clone();
                tokio::spawn(async move {
                    for _ in 0..30 {
                        let (status, _, _) = http(app2, "POST", "/inc/a", Some(&cookie)).await;
                        // 200 before the logout, 409 for one in flight
                        // across it; after it, a blind write to the dead
                        // cookie starts a fresh session of its own.
                        assert!(matches!(status, 200 | 409), "{status}");
                    }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(30)).await;
        let (status, removed, _) = http(app1, "POST", "/logout", Some(&cookie)).await;
        assert_eq!(status, 200);
        assert_eq!(removed.as_deref(), Some(""));
        for w in writers {
            w.await.unwrap();
        }
        assert_eq!(lb.state(&cookie).await, "0 0 0 0 0 ", "the logout stands");
    }

    // 5. regenerate on one instance: the old cookie is dead on both.
    let old = lb.login().await;
    let (status, new, _) = http(app2, "POST", "/relogin", Some(&old)).await;
    assert_eq!(status, 200);
    let new = new.expect("a new cookie");
    assert_eq!(lb.state(&new).await, "0 0 0 0 0 in");
    assert_eq!(lb.state(&old).await, "0 0 0 0 0 ");

    // 6. Node 2 killed under load. Instance 1 (node 1) keeps serving after
    // the eviction stall; instance 2 fails (503) until its node is back;
    // nothing is half-written; node 2 rejoins with everything.
    let cookies: Vec<String> = {
        let mut v = Vec::new();
        for _ in 0..8 {
            v.push(lb.login().await);
        }
        v
    };
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let t0 = Instant::now();
    // (ms since t0, instance, status)
    let log = Arc::new(std::sync::Mutex::new(Vec::<(u128, usize, u16)>::new()));
    let mut load = Vec::new();
    for (i, cookie) in cookies.iter().enumerate() {
        let (lb, cookie) = (lb.clone(), cookie.clone());
        let (ok, failed, stop, log) = (ok.clone(), failed.clone(), stop.clone(), log.clone());
        load.push(tokio::spawn(async move {
            let mut successes = 0u64;
            let mut attempts = 0u64;
            let mut n = i;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let app = n % 2;
                attempts += 1;
                let (status, _, _) = http(lb.apps[app], "POST", "/pair", Some(&cookie)).await;
                log.lock()
                    .unwrap()
                    .push((t0.elapsed().as_millis(), app, status));
                if status == 200 {
                    successes += 1;
                    ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    assert_eq!(status, 503, "an outage is a 503");
                    failed.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            (cookie, successes, attempts)
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let killed_at = t0.elapsed().as_millis();
    cluster(&["kill", "2"]);
    tokio::time::sleep(Duration::from_secs(15)).await;
    let restart_at = t0.elapsed().as_millis();
    tokio::task::spawn_blocking(|| cluster(&["start", "2"]))
        .await
        .unwrap();
    let rejoined_at = t0.elapsed().as_millis();
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    let mut results = Vec::new();
    for task in load {
        results.push(task.await.unwrap());
    }
    let log = log.lock().unwrap().clone();
    // After the stall (10 s after the kill is ample for a 3 s eviction)
    // and until the restart, instance 1 serves every request.
    let steady: Vec<_> = log
        .iter()
        .filter(|(t, app, _)| *app == 0 && *t > killed_at + 10_000 && *t < restart_at)
        .collect();
    assert!(
        steady.len() > 20,
        "instance 1 kept serving: {} requests",
        steady.len()
    );
    assert!(
        steady.iter().all(|(_, _, s)| *s == 200),
        "instance 1 failed after the stall: {:?}",
        steady
            .iter()
            .filter(|(_, _, s)| *s != 200)
            .take(5)
            .collect::<Vec<_>>()
    );
    // Once node 2 is back, instance 2 serves again.
    let back: Vec<_> = log
        .iter()
        .filter(|(t, app, _)| *app == 1 && *t > rejoined_at + 1_000)
        .collect();
    assert!(
        !back.is_empty() && back.iter().all(|(_, _, s)| *s == 200),
        "instance 2 serves again"
    );
    println!(
        "galera: node 2 down {:.1} s, rejoined in {:.1} s; {} requests ok, {} failed (503)",
        (restart_at - killed_at) as f64 / 1000.0,
        (rejoined_at - restart_at) as f64 / 1000.0,
        ok.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed)
    );
    for (cookie, successes, attempts) in &results {
        let state = lb.state(cookie).await;
        let v: Vec<u64> = state
            .split(' ')
            .take(4)
            .map(|v| v.parse().unwrap())
            .collect();
        assert_eq!(v[2], v[3], "x and y were written together: {state}");
        // A request cut off by the kill may have committed unseen; none
        // that succeeded is missing.
        assert!(
            (*successes..=*attempts).contains(&v[2]),
            "{successes} ok of {attempts}, stored {}",
            v[2]
        );
    }
    // The rejoined node holds exactly what node 1 holds.
    let dump = |n: u16| {
        let out = Command::new("mariadb")
            .args([
                "--no-defaults",
                "-uroot",
                "-h127.0.0.1",
                &format!("-P{}", 3310 + n),
                "-N",
                "-B",
                "test",
                "-e",
            ])
            .arg(format!(
                "SET SESSION wsrep_sync_wait = 1; SELECT HEX(s.token_hash), s.data, f.name, \
                 HEX(f.value) FROM `{prefix}sessions` s LEFT JOIN `{prefix}session_fields` f \
                 ON f.session_pk = s.pk ORDER BY 1, 3"
            ))
            .output()
            .expect("the mariadb client runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let (one, two, three) = (dump(1), dump(2), dump(3));
    assert!(one.lines().count() > 8);
    assert_eq!(one, two, "node 2 rejoined with everything");
    assert_eq!(one, three);
}
