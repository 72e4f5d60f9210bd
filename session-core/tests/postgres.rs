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
