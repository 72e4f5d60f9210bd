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
