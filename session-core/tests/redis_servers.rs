//! The Redis store on `redis-server` processes of the test's own (a free
//! port and a data directory each), for what needs a whole server: what
//! the store checks of the server's settings at connect, and why (an
//! evicting `maxmemory-policy` is refused; with an append-only file
//! fsynced on every write, a destroyed session stays destroyed across a
//! crash and restart; with snapshots alone the store warns, and the same
//! crash brings the logged-out session back, as the warning says); and
//! the commands of one cleanup pass, counted on a keyspace of its own.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use session_core::store::redis::RedisStore;
use session_core::store::{NewSession, SessionStore, Validity};
use session_core::{Config, Token};

/// A redis-server of the test's own; killed (SIGKILL, no shutdown save)
/// when dropped.
struct Server {
    port: u16,
    dir: PathBuf,
    args: Vec<String>,
    child: Child,
}

impl Server {
    fn start(tag: &str, args: &[&str]) -> Server {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = std::env::temp_dir().join(format!(
            "redis-{tag}-{}",
            &Token::generate().unwrap().to_cookie_value()[..8].replace(['-', '_'], "x")
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let child = Self::spawn(port, &dir, &args);
        Server {
            port,
            dir,
            args,
            child,
        }
    }

    fn spawn(port: u16, dir: &PathBuf, args: &[String]) -> Child {
        let mut child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--dir"])
            .arg(dir)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (Debian package `redis-server`) must be installed");
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return child;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("redis-server did not listen on {port}");
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server as a crash or power cut would (no save at
    /// shutdown), then starts it again on the same port and directory.
    fn crash_and_restart(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.child = Self::spawn(self.port, &self.dir, &self.args);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn at() -> Validity {
    Validity {
        now: now(),
        created_after: now() - 86_400,
    }
}

async fn connect(server: &Server) -> session_core::Result<RedisStore> {
    // The restarted server loads its data before it answers: retry a moment.
    let mut last = None;
    for _ in 0..50 {
        match RedisStore::connect(&server.url(), &Config::default()).await {
            Err(e) if e.is_unavailable() => last = Some(e),
            other => return other,
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(last.unwrap())
}

/// A live session holding one field, and a second one destroyed.
async fn kept_and_destroyed(store: &RedisStore) -> (Token, Token) {
    let session = NewSession {
        created_at: now(),
        expires_at: now() + 3600,
        idle_timeout: 3600,
        persistent: None,
    };
    let kept = Token::generate().unwrap();
    let gone = Token::generate().unwrap();
    for t in [&kept, &gone] {
        assert!(store
            .create(&t.store_key(), session, &[("user", b"1".to_vec())])
            .await
            .unwrap());
    }
    assert!(store.destroy(&gone.store_key(), now()).await.unwrap());
    (kept, gone)
}

#[tokio::test]
async fn an_evicting_policy_is_refused_with_the_fix() {
    for policy in ["allkeys-lru", "volatile-ttl"] {
        let server = Server::start(
            "evict",
            &[
                "--save",
                "",
                "--appendonly",
                "yes",
                "--maxmemory-policy",
                policy,
            ],
        );
        let error = connect(&server).await.expect_err("refused").to_string();
        assert!(error.contains(policy), "{error}");
        assert!(error.contains("maxmemory-policy noeviction"), "{error}");
    }
    let server = Server::start(
        "noevict",
        &[
            "--save",
            "",
            "--appendonly",
            "yes",
            "--maxmemory-policy",
            "noeviction",
        ],
    );
    let store = connect(&server).await.expect("noeviction is accepted");
    assert_eq!(
        store.settings().maxmemory_policy.as_deref(),
        Some("noeviction")
    );
    assert!(store.warnings().is_empty(), "{:?}", store.warnings());
}

#[tokio::test]
async fn with_an_fsynced_append_only_file_a_logout_survives_a_crash() {
    let mut server = Server::start(
        "aof",
        &[
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
        ],
    );
    let store = connect(&server).await.unwrap();
    assert!(
        store.warnings().is_empty(),
        "accepted settings: {:?}",
        store.warnings()
    );
    let (kept, gone) = kept_and_destroyed(&store).await;
    server.crash_and_restart();
    let store = connect(&server).await.unwrap();
    assert!(
        store
            .load(&kept.store_key(), &[], at())
            .await
            .unwrap()
            .is_some(),
        "the acknowledged write is kept"
    );
    assert!(
        store
            .load(&gone.store_key(), &[], at())
            .await
            .unwrap()
            .is_none(),
        "the destroyed session stays destroyed"
    );
}

#[tokio::test]
async fn with_snapshots_alone_the_store_warns_and_a_crash_undoes_a_logout() {
    let mut server = Server::start("rdb", &["--save", "", "--appendonly", "no"]);
    let store = connect(&server).await.unwrap();
    assert!(
        store
            .warnings()
            .iter()
            .any(|w| w.contains("appendonly yes")),
        "{:?}",
        store.warnings()
    );
    // A snapshot while both sessions live, then the logout, then a crash.
    let session = NewSession {
        created_at: now(),
        expires_at: now() + 3600,
        idle_timeout: 3600,
        persistent: None,
    };
    let gone = Token::generate().unwrap();
    assert!(store
        .create(&gone.store_key(), session, &[("user", b"1".to_vec())])
        .await
        .unwrap());
    let client = redis::Client::open(server.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("SAVE").query_async(&mut conn).await.unwrap();
    assert!(store.destroy(&gone.store_key(), now()).await.unwrap());
    server.crash_and_restart();
    let store = connect(&server).await.unwrap();
    assert!(
        store
            .load(&gone.store_key(), &[], at())
            .await
            .unwrap()
            .is_some(),
        "what the warning says: the snapshot brings the destroyed session back"
    );
}

/// One cleanup pass walks the keyspace once, however many batches it
/// takes: over 100,000 live and 5,000 dead sessions, batches of 500 cost
/// about one `SCAN` per 1,000 keys and one purge script per page (plus
/// one per batch, where a page is split), not a walk from the start for
/// every batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cleanup_pass_walks_the_keyspace_once() {
    use session_core::store::{SessionStore, Validity};
    let server = Server::start("walk", &["--save", "", "--appendonly", "yes"]);
    let store = connect(&server).await.unwrap();
    let url = server.url();
    let mut conn = redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let (live, dead) = (100_000u64, 5_000u64);
    let total = live + dead;
    for chunk in 0..total / 1000 {
        let mut pipe = redis::pipe();
        for n in chunk * 1000..(chunk + 1) * 1000 {
            // Every 21st session is dead: 5,000 of 105,000.
            let expires = if n % 21 == 0 { now - 10 } else { now + 3600 };
            let key = format!("{}sess:{{{n:064x}}}", store.prefix());
            pipe.hset_multiple(&key, &[("_c", now - 100), ("_e", expires), ("_i", 3600)])
                .ignore();
        }
        let _: () = pipe.query_async(&mut conn).await.unwrap();
    }
    let at = Validity {
        now,
        created_after: now - 86_400,
    };
    let before = store.stats().statements;
    let mut deleted = 0;
    let mut batches = 0;
    loop {
        let n = store.delete_expired(at, 500).await.unwrap().len();
        deleted += n;
        batches += 1;
        if n < 500 {
            break;
        }
    }
    let commands = store.stats().statements - before;
    assert_eq!(
        deleted as u64, dead,
        "every dead session, in {batches} batches"
    );
    let left: u64 = redis::cmd("DBSIZE").query_async(&mut conn).await.unwrap();
    assert_eq!(left, live, "the live sessions stay");
    eprintln!("one pass over {total} sessions: {commands} commands in {batches} batches");
    let pages = total / 1000;
    assert!(
        commands <= 2 * pages + 2 * batches + 10,
        "one pass walks the keyspace once: {commands} commands"
    );
    // The next pass starts from the beginning and finds nothing.
    assert!(store.delete_expired(at, 500).await.unwrap().is_empty());
}

/// A primary with a replica (as under Sentinel): a logout is acknowledged
/// once the replica has it; with the replica frozen (SIGSTOP) and its link
/// cut, the logout answers unavailable (503, to retry) rather than done,
/// since a failover to that replica would bring the session back.
#[tokio::test]
async fn with_a_replica_a_logout_waits_until_the_replica_has_it() {
    let primary = Server::start("primary", &["--save", "", "--appendonly", "yes"]);
    let replicaof = ["--replicaof", "127.0.0.1", &primary.port.to_string()].map(String::from);
    let mut args = vec!["--save", "", "--appendonly", "yes"];
    args.extend(replicaof.iter().map(String::as_str));
    let replica = Server::start("replica", &args);
    // The replica has synced once the primary counts it.
    let client = redis::Client::open(primary.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    for _ in 0..200 {
        let info: String = redis::cmd("INFO")
            .arg("replication")
            .query_async(&mut conn)
            .await
            .unwrap();
        if info.contains("connected_slaves:1") && info.contains("state=online") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let store = connect(&primary).await.unwrap();
    let session = NewSession {
        created_at: now(),
        expires_at: now() + 3600,
        idle_timeout: 3600,
        persistent: None,
    };
    let (confirmed, unconfirmed) = (Token::generate().unwrap(), Token::generate().unwrap());
    for t in [&confirmed, &unconfirmed] {
        assert!(store.create(&t.store_key(), session, &[]).await.unwrap());
    }
    let before = store.stats().statements;
    assert!(store.destroy(&confirmed.store_key(), now()).await.unwrap());
    assert_eq!(
        store.stats().statements - before,
        2,
        "the destroy, then the wait for the replica"
    );

    let pid = replica.child.id().to_string();
    let signal = |sig: &str| {
        let status = std::process::Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap();
        assert!(status.success());
    };
    signal("-STOP");
    let cut: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("replica")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(cut, 1, "the replica's link was cut");
    let outcome = store.destroy(&unconfirmed.store_key(), now()).await;
    signal("-CONT");
    assert!(
        matches!(outcome, Err(session_core::Error::Unavailable(_))),
        "a logout no replica has is not reported done: {outcome:?}"
    );
    assert_eq!(
        store
            .load(&unconfirmed.store_key(), &[], at())
            .await
            .unwrap(),
        None
    );
}
