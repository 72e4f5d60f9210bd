//! The Redis store on a real Redis Cluster: six `redis-server`s on
//! loopback, three primaries with a replica each
//! (`tests/cluster/redis-cluster.sh`).
//!
//! - The store conformance suite runs on the cluster of
//!   `REDIS_CLUSTER_URL` (set in `.cargo/config.toml`; on its default
//!   ports the test brings the cluster up itself when it is not running),
//!   a key prefix of its own per test.
//! - What the cluster protocol promises: a regenerate cut short after its
//!   first step leaves no token usable; an index member is dropped only
//!   once it is older than a write on its way; cleanup walks every
//!   primary.
//! - A failover under load, on a cluster of the test's own: a primary is
//!   killed (SIGKILL) while requests run; its replica takes over. What was
//!   confirmed on a replica before is all there; no session whose destroy
//!   was acknowledged comes back; requests during the election fail as
//!   unavailable (503), never with a wrong answer; the store serves again
//!   by itself.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use session_core::store::redis::RedisStore;
use session_core::store::{
    Changes, IndexUpdate, NewSession, Rename, Saved, SessionStore, Validity,
};
use session_core::testing::unique_prefix;
use session_core::{Config, Error, Token};

const DEFAULT_URL: &str = "redis+cluster://127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003";

fn cluster_script(args: &[&str]) {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/cluster/redis-cluster.sh"
    );
    let status = std::process::Command::new("bash")
        .arg(script)
        .args(args)
        .status()
        .expect("bash runs tests/cluster/redis-cluster.sh");
    assert!(status.success(), "redis-cluster.sh {args:?} failed");
}

fn url() -> String {
    let url = std::env::var("REDIS_CLUSTER_URL")
        .expect("REDIS_CLUSTER_URL names the Redis Cluster (see README)");
    if url == DEFAULT_URL {
        static UP: Once = Once::new();
        UP.call_once(|| cluster_script(&["up", "7001"]));
    }
    url
}

async fn store() -> RedisStore {
    let url = url();
    let config = Config {
        table_prefix: unique_prefix("c"),
        ..Config::default()
    };
    RedisStore::connect(&url, &config)
        .await
        .unwrap_or_else(|e| panic!("cannot reach the Redis Cluster at {url}: {e:?}"))
}

async fn teardown(store: &RedisStore) {
    store.drop_keys().await.expect("drop keys");
}

session_core::store_conformance_tests!(store, teardown);

/// Two app instances on one cluster, cleaning up at once, report each
/// expired session once (each walking every primary).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_cleanups_report_each_session_once() {
    let a = store().await;
    let config = Config {
        table_prefix: a.prefix().to_string(),
        ..Config::default()
    };
    let b = RedisStore::connect(&url(), &config).await.unwrap();
    let (a, b) = (Arc::new(a), Arc::new(b));
    session_core::testing::racing_cleanups_report_each_session_once(a.clone(), b.clone()).await;
    session_core::testing::expiry_events_fire_once_across_instances(a.clone(), b).await;
    teardown(&a).await;
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn raw(url: &str) -> redis::cluster_async::ClusterConnection {
    let nodes: Vec<String> = url
        .trim_start_matches("redis+cluster://")
        .split(',')
        .map(|n| format!("redis://{n}"))
        .collect();
    redis::cluster::ClusterClient::new(nodes)
        .unwrap()
        .get_async_connection()
        .await
        .unwrap()
}

fn session(now: i64) -> NewSession {
    NewSession {
        created_at: now,
        expires_at: now + 600,
        idle_timeout: 600,
        persistent: None,
    }
}

fn at(now: i64) -> Validity {
    Validity {
        now,
        created_after: now - 86_400,
    }
}

/// A `redis://` URL naming one node of a cluster is refused at launch,
/// with the way out, instead of failing with `MOVED` on every other slot.
#[tokio::test]
async fn a_cluster_node_named_as_one_server_is_refused_with_the_way_out() {
    let _ = url();
    let error = RedisStore::connect("redis://127.0.0.1:7001", &Config::default())
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Config(_)), "{error:?}");
    assert!(error.to_string().contains("redis+cluster://"), "{error}");
}

/// Tokens that rotate are refused on a cluster at launch, with the reason
/// and the way out: a move spans two slots there, in steps requests in
/// flight could not follow.
#[tokio::test]
async fn rotation_is_refused_on_a_cluster_with_the_reason() {
    let config = Config {
        rotate_after: Some(900),
        ..Config::default()
    };
    let store: Arc<dyn SessionStore> = Arc::new(store().await);
    let error = session_core::SessionManager::new(store, config).unwrap_err();
    assert!(matches!(error, Error::Config(_)), "{error:?}");
    let message = error.to_string();
    assert!(
        message.contains("`rotate_after` is not available on this store (redis-cluster)"),
        "{message}"
    );
    assert!(message.contains("spans two slots"), "{message}");
}

/// The first step of a regenerate marks the old hash as moving; should the
/// app die right after it (the new hash never written), neither token
/// reads the session, a write through the old one is refused as moved,
/// and a destroy through it ends what there is.
#[tokio::test]
async fn a_regenerate_cut_short_leaves_no_token_usable() {
    let store = store().await;
    let mut conn = raw(&url()).await;
    let now = now_secs();
    let old = Token::generate().unwrap().store_key();
    let new = Token::generate().unwrap().store_key();
    assert!(store
        .create(&old, session(now), &[("cart", b"[1]".to_vec())])
        .await
        .unwrap());
    // Step 1 alone, as the store's first script leaves it.
    let hash = format!("{}sess:{{{}}}", store.prefix(), hex(old.as_bytes()));
    let _: () = redis::cmd("HSET")
        .arg(&hash)
        .arg("_m")
        .arg(format!("{} {}", now + 60, hex(new.as_bytes())))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(store.load(&old, &[], at(now)).await.unwrap(), None);
    assert_eq!(store.load_field(&old, "cart", at(now)).await.unwrap(), None);
    assert_eq!(store.load(&new, &[], at(now)).await.unwrap(), None);
    let write = Changes {
        upsert: vec![("cart", b"[2]".to_vec())],
        ..Changes::default()
    };
    assert_eq!(
        store.save(&old, &write, at(now)).await.unwrap(),
        Saved::Moved
    );
    assert!(store
        .previous(&old, now)
        .await
        .unwrap()
        .is_some_and(|p| p.within_grace));
    assert!(!store.destroy(&old, now).await.unwrap());
    let left: i64 = redis::cmd("EXISTS")
        .arg(&hash)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(left, 0, "the destroy took the moving hash");
    teardown(&store).await;
}

/// A regenerate moves the session to a key in another slot, with its
/// index entry: the devices list and "log out everywhere" find it under
/// the new key only.
#[tokio::test]
async fn a_regenerated_session_is_found_under_its_new_key_only() {
    let store = store().await;
    let now = now_secs();
    let old = Token::generate().unwrap().store_key();
    let new = Token::generate().unwrap().store_key();
    assert!(store.create(&old, session(now), &[]).await.unwrap());
    let tag = [3u8; 32];
    let login = Changes {
        rename: Some(Rename {
            to: new,
            previous_until: now + 60,
            reason: session_core::store::Replaced::Regenerated,
        }),
        upsert: vec![("user_id", b"7".to_vec())],
        index: vec![IndexUpdate {
            name: "user_id",
            tag: Some(tag),
        }],
        ..Changes::default()
    };
    assert_eq!(
        store.save(&old, &login, at(now)).await.unwrap(),
        Saved::Saved
    );
    let indexes = store.indexes().unwrap();
    assert_eq!(
        indexes.find("user_id", &[tag], at(now)).await.unwrap(),
        vec![new]
    );
    assert_eq!(
        indexes
            .destroy_found("user_id", &[tag], None)
            .await
            .unwrap(),
        vec![new]
    );
    assert_eq!(store.load(&new, &[], at(now)).await.unwrap(), None);
    teardown(&store).await;
}

/// An index member whose session does not name its set is dropped by a
/// walk only once it is older than a write still on its way (the member
/// is added before the session's write): a young one stays, an old one
/// goes.
#[tokio::test]
async fn stale_index_members_are_dropped_only_when_old() {
    let store = store().await;
    let mut conn = raw(&url()).await;
    let now = now_secs();
    let tag = [5u8; 32];
    let set = format!("{}zidx:user_id:{}", store.prefix(), hex(&tag));
    let (young, old) = ([1u8; 32], [2u8; 32]);
    let _: () = redis::cmd("ZADD")
        .arg(&set)
        .arg(now)
        .arg(hex(&young))
        .arg(now - 3600)
        .arg(hex(&old))
        .query_async(&mut conn)
        .await
        .unwrap();
    let found = store
        .indexes()
        .unwrap()
        .find("user_id", &[tag], at(now))
        .await
        .unwrap();
    assert!(found.is_empty(), "neither member names a session");
    let members: Vec<String> = redis::cmd("ZRANGE")
        .arg(&set)
        .arg(0)
        .arg(-1)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        members,
        vec![hex(&young)],
        "only the old member was dropped"
    );
    teardown(&store).await;
}

/// Cleanup walks the keyspace of every primary: expired sessions whose
/// keys sit on all three are each found once in one pass.
#[tokio::test]
async fn cleanup_walks_every_primary() {
    let store = store().await;
    let now = now_secs();
    let mut keys = Vec::new();
    for _ in 0..60 {
        let key = Token::generate().unwrap().store_key();
        let dead = NewSession {
            created_at: now - 100,
            expires_at: now - 10,
            idle_timeout: 90,
            persistent: None,
        };
        assert!(store.create(&key, dead, &[]).await.unwrap());
        keys.push(key);
    }
    let mut ended = Vec::new();
    loop {
        let batch = store.delete_expired(at(now), 7).await.unwrap();
        if batch.is_empty() {
            break;
        }
        ended.extend(batch.into_iter().map(|e| e.key));
    }
    ended.sort();
    keys.sort();
    assert_eq!(ended, keys, "every expired session, once");
    teardown(&store).await;
}

/// Waits until the replica of each primary (by port) has acknowledged
/// everything its primary wrote (`INFO replication`: the replica's offset
/// equals the primary's), which is what the cluster promises to keep
/// through a failover.
async fn replicas_caught_up(ports: &[&str]) {
    let started = Instant::now();
    for port in ports {
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        loop {
            let info: String = redis::cmd("INFO")
                .arg("replication")
                .query_async(&mut conn)
                .await
                .unwrap();
            let primary = info
                .lines()
                .find_map(|l| l.strip_prefix("master_repl_offset:"))
                .and_then(|v| v.trim().parse::<i64>().ok());
            let replica = info
                .lines()
                .find_map(|l| l.strip_prefix("slave0:"))
                .and_then(|v| v.split(',').find_map(|kv| kv.strip_prefix("offset=")))
                .and_then(|v| v.trim().parse::<i64>().ok());
            if primary.is_some() && primary == replica {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the replica of {port} did not catch up: {info}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// What one worker of the failover test saw.
#[derive(Default)]
struct Seen {
    /// Sessions whose destroy was acknowledged.
    destroyed: Vec<session_core::StoreKey>,
    /// Acknowledged writes: key and the value written.
    written: HashMap<session_core::StoreKey, Vec<u8>>,
    unavailable: usize,
    /// Acknowledged creates found gone by the destroy that followed.
    lost: usize,
}

/// A primary killed under load; its replica takes over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_under_load_loses_nothing_confirmed_and_revives_no_logout() {
    const PORT: &str = "7101";
    cluster_script(&["fresh", PORT]);
    let url = "redis+cluster://127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103";
    let config = Config {
        table_prefix: unique_prefix("f"),
        ..Config::default()
    };
    let store = Arc::new(RedisStore::connect(url, &config).await.unwrap());
    assert!(
        store.warnings().is_empty(),
        "AOF, noeviction and a replica per primary: nothing to warn about: {:?}",
        store.warnings()
    );
    let now = now_secs();

    // Before: 300 sessions written, then confirmed on the replicas
    // (`WAIT`), which is what the cluster promises to keep; 100 of them
    // destroyed (each destroy waits for a replica itself).
    let mut kept = Vec::new();
    let mut gone = Vec::new();
    for n in 0..300u32 {
        let key = Token::generate().unwrap().store_key();
        let value = format!("[{n}]").into_bytes();
        assert!(store
            .create(&key, session(now), &[("cart", value.clone())])
            .await
            .unwrap());
        if n % 3 == 0 {
            gone.push(key);
        } else {
            kept.push((key, value));
        }
    }
    let mut conn = raw(url).await;
    replicas_caught_up(&["7101", "7102", "7103"]).await;
    for key in &gone {
        assert!(store.destroy(key, now).await.unwrap());
    }

    // During: two workers create, write and destroy sessions while the
    // primary on 7101 is killed.
    let stop = Arc::new(AtomicBool::new(false));
    let worker = |seed: u32| {
        let (store, stop) = (store.clone(), stop.clone());
        tokio::spawn(async move {
            let mut seen = Seen::default();
            let mut n = seed;
            while !stop.load(Ordering::Relaxed) {
                n += 2;
                let key = Token::generate().unwrap().store_key();
                let value = format!("[{n}]").into_bytes();
                match store
                    .create(&key, session(now), &[("cart", value.clone())])
                    .await
                {
                    Ok(true) => {
                        seen.written.insert(key, value);
                    }
                    Ok(false) => panic!("a fresh key was taken"),
                    Err(Error::Unavailable(_)) => {
                        seen.unavailable += 1;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                    Err(other) => panic!("a failover must read as unavailable: {other:?}"),
                }
                if n % 4 == 0 {
                    match store.destroy(&key, now).await {
                        Ok(true) => {
                            seen.written.remove(&key);
                            seen.destroyed.push(key);
                        }
                        // The create was acknowledged by the primary
                        // and lost with it before its replica had it.
                        Ok(false) => {
                            seen.written.remove(&key);
                            seen.lost += 1;
                        }
                        Err(Error::Unavailable(_)) => seen.unavailable += 1,
                        Err(other) => panic!("a failover must read as unavailable: {other:?}"),
                    }
                }
            }
            seen
        })
    };
    let workers = [worker(0), worker(1)];
    tokio::time::sleep(Duration::from_millis(500)).await;
    cluster_script(&["kill", PORT]);
    let killed = Instant::now();
    // The replica takes over: the store serves every slot again.
    let probe = loop {
        let key = Token::generate().unwrap().store_key();
        let probe = store
            .create(&key, session(now), &[])
            .await
            .and(store.load(&key, &[], at(now)).await);
        let promoted = matches!(probe, Ok(Some(_)));
        let primaries: String = redis::cmd("CLUSTER")
            .arg("NODES")
            .query_async(&mut conn)
            .await
            .unwrap_or_default();
        let serving = primaries
            .lines()
            .filter(|l| l.contains("master") && !l.contains("fail") && l.split(' ').count() > 8)
            .count();
        if promoted && serving == 3 {
            break killed.elapsed();
        }
        assert!(
            killed.elapsed() < Duration::from_secs(30),
            "the cluster did not fail over within 30 s: {probe:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.store(true, Ordering::Relaxed);
    let mut seen = Seen::default();
    for worker in workers {
        let part = worker.await.unwrap();
        seen.destroyed.extend(part.destroyed);
        seen.written.extend(part.written);
        seen.unavailable += part.unavailable;
        seen.lost += part.lost;
    }
    // The killed node comes back, as a replica of its successor.
    cluster_script(&["start", PORT]);

    // After: what was confirmed is there; no acknowledged logout undone.
    let later = now_secs();
    for (key, value) in &kept {
        let record = store.load(key, &[], at(later)).await.unwrap();
        let fields = record
            .expect("a confirmed session survives the failover")
            .fields;
        assert_eq!(fields, vec![("cart".to_string(), value.clone())]);
    }
    for key in gone.iter().chain(&seen.destroyed) {
        assert_eq!(
            store.load(key, &[], at(later)).await.unwrap(),
            None,
            "a destroyed session never comes back"
        );
    }
    let lost = {
        let mut lost = seen.lost;
        for (key, value) in &seen.written {
            match store.load(key, &[], at(later)).await.unwrap() {
                Some(record) => assert_eq!(record.fields, vec![("cart".into(), value.clone())]),
                None => lost += 1,
            }
        }
        lost
    };
    eprintln!(
        "failover: served again after {probe:?}; during the load {} writes and {} destroys \
         acknowledged, {} calls unavailable; {lost} acknowledged unconfirmed writes lost \
         (the cluster's asynchronous replication allows it)",
        seen.written.len(),
        seen.destroyed.len(),
        seen.unavailable
    );
    assert!(
        !seen.written.is_empty() && !seen.destroyed.is_empty(),
        "the load ran"
    );
    drop(store);
    cluster_script(&["down", PORT]);
}

/// The port of the replica of the primary on `port` (`INFO replication`).
async fn replica_of(port: &str) -> String {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let info: String = redis::cmd("INFO")
        .arg("replication")
        .query_async(&mut conn)
        .await
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("slave0:"))
        .and_then(|v| v.split(',').find_map(|kv| kv.strip_prefix("port=")))
        .expect("the primary has a replica")
        .to_string()
}

/// A key whose slot the primary on `port` serves (`CLUSTER KEYSLOT`
/// against its ranges in `CLUSTER NODES`).
async fn key_on(store: &RedisStore, port: &str) -> session_core::StoreKey {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let nodes: String = redis::cmd("CLUSTER")
        .arg("NODES")
        .query_async(&mut conn)
        .await
        .unwrap();
    let ranges: Vec<(i64, i64)> = nodes
        .lines()
        .find(|l| l.contains("myself"))
        .unwrap()
        .split(' ')
        .skip(8)
        .filter_map(|r| {
            let (a, b) = r.split_once('-').unwrap_or((r, r));
            Some((a.parse().ok()?, b.parse().ok()?))
        })
        .collect();
    loop {
        let key = Token::generate().unwrap().store_key();
        let name = format!("{}sess:{{{}}}", store.prefix(), hex(key.as_bytes()));
        let slot: i64 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(&name)
            .query_async(&mut conn)
            .await
            .unwrap();
        if ranges.iter().any(|&(a, b)| a <= slot && slot <= b) {
            return key;
        }
    }
}

/// A logout is acknowledged only once a replica holds it: with the
/// primary's replica frozen (SIGSTOP) and its link cut, a destroy answers unavailable (a
/// 503 the user can retry) instead of done, and the primary killed then
/// shows why: the promoted replica never saw the deletion, and the session
/// is back. A logout acknowledged before, with the replica running, stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_is_acknowledged_only_once_a_replica_has_it() {
    const PORT: &str = "7201";
    cluster_script(&["fresh", PORT]);
    let url = "redis+cluster://127.0.0.1:7201,127.0.0.1:7202,127.0.0.1:7203";
    let config = Config {
        table_prefix: unique_prefix("w"),
        ..Config::default()
    };
    let store = RedisStore::connect(url, &config).await.unwrap();
    let now = now_secs();
    let confirmed = key_on(&store, PORT).await;
    let unconfirmed = key_on(&store, PORT).await;
    for key in [&confirmed, &unconfirmed] {
        assert!(store.create(key, session(now), &[]).await.unwrap());
    }
    replicas_caught_up(&[PORT]).await;
    assert!(store.destroy(&confirmed, now).await.unwrap());

    // The replica frozen, and its link cut while it is (what it had
    // received it would read on waking): the deletion cannot reach it.
    let replica = replica_of(PORT).await;
    cluster_script(&["pause", &replica]);
    let primary = redis::Client::open(format!("redis://127.0.0.1:{PORT}")).unwrap();
    let mut primary = primary.get_multiplexed_async_connection().await.unwrap();
    let cut: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("replica")
        .query_async(&mut primary)
        .await
        .unwrap();
    assert_eq!(cut, 1, "the replica's link was cut");
    let started = Instant::now();
    let outcome = store.destroy(&unconfirmed, now).await;
    assert!(
        matches!(outcome, Err(Error::Unavailable(_))),
        "a logout no replica has is not reported done: {outcome:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "it waited about a second"
    );
    cluster_script(&["kill", PORT]);
    cluster_script(&["resume", &replica]);

    let started = Instant::now();
    let came_back = loop {
        match store.load(&unconfirmed, &[], at(now)).await {
            Ok(found) => break found.is_some(),
            Err(Error::Unavailable(_)) if started.elapsed() < Duration::from_secs(30) => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(other) => panic!("the replica did not take over: {other:?}"),
        }
    };
    assert!(
        came_back,
        "the promoted replica never saw the unconfirmed deletion (which is why it was not acknowledged)"
    );
    assert_eq!(
        store.load(&confirmed, &[], at(now)).await.unwrap(),
        None,
        "the acknowledged logout stays"
    );
    drop(store);
    cluster_script(&["down", PORT]);
}
