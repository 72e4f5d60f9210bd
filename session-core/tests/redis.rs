//! The store conformance suite on Redis (the server of `REDIS_URL`, set in
//! `.cargo/config.toml`), a key prefix of its own per test. Fails, never
//! skips, when the server is unreachable.

use session_core::store::redis::RedisStore;
use session_core::testing::unique_prefix;
use session_core::Config;

async fn store() -> RedisStore {
    let url = std::env::var("REDIS_URL").expect("REDIS_URL names the Redis server (see README)");
    let config = Config {
        table_prefix: unique_prefix("t"),
        ..Config::default()
    };
    RedisStore::connect(&url, &config)
        .await
        .unwrap_or_else(|e| panic!("cannot reach Redis at {url}: {e:?}"))
}

async fn teardown(store: &RedisStore) {
    store.drop_keys().await.expect("drop keys");
}

session_core::store_conformance_tests!(store, teardown);

/// Two store instances over one server (two app instances) cleaning up at
/// once report each expired session once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_cleanups_report_each_session_once() {
    let a = store().await;
    let url = std::env::var("REDIS_URL").unwrap();
    let config = Config {
        table_prefix: a.prefix().to_string(),
        ..Config::default()
    };
    let b = RedisStore::connect(&url, &config).await.unwrap();
    let a = std::sync::Arc::new(a);
    let b = std::sync::Arc::new(b);
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

async fn raw() -> redis::aio::MultiplexedConnection {
    let url = std::env::var("REDIS_URL").unwrap();
    redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// "Log out everywhere" for a user with 100,000 sessions (an account a
/// script logged into forever) works page by page: the server keeps
/// answering everyone else (a `PING` on another connection, timed
/// throughout, never waits long), and every session ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ending_100000_sessions_of_one_user_never_blocks_the_server() {
    use session_core::store::SessionStore;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let store = store().await;
    let mut conn = raw().await;
    let now = now_secs();
    let tag = [7u8; 32];
    let tag_hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
    let set = format!("{}idx:user_id:{tag_hex}", store.prefix());
    for chunk in 0..100u64 {
        let mut pipe = redis::pipe();
        for n in chunk * 1000..(chunk + 1) * 1000 {
            let hex = format!("{n:064x}");
            let key = format!("{}sess:{{{hex}}}", store.prefix());
            pipe.hset_multiple(
                &key,
                &[
                    ("_c", now.to_string()),
                    ("_e", (now + 3600).to_string()),
                    ("_i", "3600".to_string()),
                    ("x:user_id", tag_hex.clone()),
                ],
            )
            .ignore();
            pipe.sadd(&set, &hex).ignore();
        }
        let _: () = pipe.query_async(&mut conn).await.unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let pinger = {
        let stop = stop.clone();
        let mut conn = raw().await;
        tokio::spawn(async move {
            let (mut worst, mut pings) = (std::time::Duration::ZERO, 0);
            while !stop.load(Ordering::Relaxed) {
                let started = std::time::Instant::now();
                let _: String = redis::cmd("PING").query_async(&mut conn).await.unwrap();
                worst = worst.max(started.elapsed());
                pings += 1;
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
            (worst, pings)
        })
    };
    let started = std::time::Instant::now();
    let indexes = store.indexes().unwrap();
    let ended = indexes
        .destroy_found("user_id", &[tag], None)
        .await
        .unwrap();
    let took = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let (worst, pings) = pinger.await.unwrap();
    assert_eq!(ended.len(), 100_000, "every session of the user ended");
    eprintln!("ended 100,000 sessions in {took:?}; {pings} PINGs meanwhile, the slowest {worst:?}");
    assert!(
        worst < std::time::Duration::from_millis(100),
        "the server kept answering others: the slowest PING took {worst:?}"
    );
    let left: i64 = redis::cmd("EXISTS")
        .arg(&set)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(left, 0, "the emptied set is gone");
    teardown(&store).await;
}

/// An index set lives as long as its sessions, not forever: it expires
/// with its last session (an hour after, as the sessions' own keys do),
/// and a touch that extends a session extends its set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_sets_do_not_outlive_their_sessions() {
    use session_core::store::{
        Changes, ExpiryUpdate, IndexUpdate, NewSession, SessionStore, Validity,
    };
    let store = store().await;
    let mut conn = raw().await;
    let now = now_secs();
    let at = Validity {
        now,
        created_after: now - 86_400,
    };
    let key = session_core::Token::generate().unwrap().store_key();
    let session = NewSession {
        created_at: now,
        expires_at: now + 600,
        idle_timeout: 600,
        persistent: None,
    };
    assert!(store.create(&key, session, &[]).await.unwrap());
    let tag = [9u8; 32];
    let changes = Changes {
        index: vec![IndexUpdate {
            name: "user_id",
            tag: Some(tag),
        }],
        ..Changes::default()
    };
    store.save(&key, &changes, at).await.unwrap();
    let tag_hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
    let set = format!("{}idx:user_id:{tag_hex}", store.prefix());
    let expiry = |conn: &mut redis::aio::MultiplexedConnection| {
        let set = set.clone();
        let mut conn = conn.clone();
        async move {
            let t: i64 = redis::cmd("EXPIRETIME")
                .arg(&set)
                .query_async(&mut conn)
                .await
                .unwrap();
            t
        }
    };
    assert_eq!(
        expiry(&mut conn).await,
        now + 600 + 3600,
        "the set expires with its session"
    );
    let touch = Changes {
        expiry: Some(ExpiryUpdate::Extend(now + 900)),
        ..Changes::default()
    };
    store.save(&key, &touch, at).await.unwrap();
    assert_eq!(
        expiry(&mut conn).await,
        now + 900 + 3600,
        "and follows its touches"
    );
    teardown(&store).await;
}
