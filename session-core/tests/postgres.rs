//! The store conformance suite on PostgreSQL (the server of `POSTGRES_URL`,
//! set in `.cargo/config.toml`), tables of its own per test. Fails, never
//! skips, when the server is unreachable.

use session_core::store::postgres::PgStore;
use session_core::testing::unique_prefix;
use session_core::Config;

fn url() -> String {
    std::env::var("POSTGRES_URL").expect("POSTGRES_URL names the PostgreSQL server (see README)")
}

async fn store() -> PgStore {
    let config = Config {
        table_prefix: unique_prefix("t"),
        ..Config::default()
    };
    let url = url();
    let store = PgStore::connect(&url, &config)
        .await
        .unwrap_or_else(|e| panic!("cannot reach PostgreSQL at {url}: {e:?}"));
    store.create_tables().await.expect("create tables");
    store
}

async fn teardown(store: &PgStore) {
    store.drop_tables().await.expect("drop tables");
    session_core::store::SessionStore::close(store).await;
}

session_core::store_conformance_tests!(store, teardown);

/// The suite above runs at the server's default isolation, which must be
/// PostgreSQL's own: READ COMMITTED.
#[tokio::test]
async fn the_suite_runs_under_read_committed() {
    use sqlx::Connection as _;
    let mut conn = sqlx::PgConnection::connect(&url()).await.unwrap();
    let level: String = sqlx::query_scalar("SHOW transaction_isolation")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(level, "read committed");
}

/// `create_tables` is idempotent and `check` accepts what it made.
#[tokio::test]
async fn tables_are_created_once_and_checked() {
    let store = store().await;
    store.create_tables().await.unwrap();
    store.check().await.unwrap();
    assert!(store.schema_sql().contains("BYTEA"));
    teardown(&store).await;
}

/// A write that waits past `statement_timeout` (here on a row lock another
/// connection holds) answers unavailable, and the server cancels it too
/// (`lock_timeout`, `statement_timeout`): when the lock goes, nothing of
/// it commits.
#[tokio::test]
async fn a_write_past_the_statement_timeout_is_ended_by_the_server() {
    use session_core::store::{Changes, NewSession, SessionStore, Validity};
    use session_core::Token;
    use sqlx::{Connection as _, Executor as _};

    let config = Config {
        table_prefix: unique_prefix("t"),
        statement_timeout: 1,
        ..Config::default()
    };
    let store = PgStore::connect(&url(), &config).await.unwrap();
    store.create_tables().await.unwrap();
    let prefix = store.table_names().prefix().to_string();
    let key = Token::generate().unwrap().store_key();
    let t = session_core::now();
    let session = NewSession {
        created_at: t,
        expires_at: t + 60,
        idle_timeout: 60,
        persistent: None,
    };
    assert!(store
        .create(&key, session, &[("a", b"1".to_vec())])
        .await
        .unwrap());

    let mut holder = sqlx::PgConnection::connect(&url()).await.unwrap();
    holder.execute("BEGIN").await.unwrap();
    holder
        .execute(format!("UPDATE \"{prefix}sessions\" SET data = '{{}}'::jsonb").as_str())
        .await
        .unwrap();
    let at = Validity {
        now: t,
        created_after: t - 3600,
    };
    let changes = Changes {
        upsert: vec![("a", b"2".to_vec())],
        upsert_existing: true,
        ..Changes::default()
    };
    let started = std::time::Instant::now();
    let saved = store.save(&key, &changes, at).await;
    assert!(
        matches!(saved, Err(ref e) if e.is_unavailable()),
        "{saved:?}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    holder.execute("ROLLBACK").await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let record = store.load(&key, &[], at).await.unwrap().unwrap();
    assert_eq!(record.fields, vec![("a".to_string(), b"1".to_vec())]);
    teardown(&store).await;
}

/// Two store instances over one database (two app instances) cleaning up
/// at once report each expired session once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_cleanups_report_each_session_once() {
    let a = store().await;
    let config = Config {
        table_prefix: a.table_names().prefix().to_string(),
        ..Config::default()
    };
    let b = PgStore::connect(&url(), &config).await.unwrap();
    let a = std::sync::Arc::new(a);
    let b = std::sync::Arc::new(b);
    session_core::testing::racing_cleanups_report_each_session_once(a.clone(), b.clone()).await;
    session_core::testing::expiry_events_fire_once_across_instances(a.clone(), b).await;
    teardown(&a).await;
}
