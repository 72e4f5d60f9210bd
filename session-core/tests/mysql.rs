//! The store conformance suite on a real MySQL/MariaDB server.
//!
//! Reads `DATABASE_URL` (the workspace's `.cargo/config.toml` points it at
//! the local server, `mysql://root@127.0.0.1:3306/test`) and fails loudly
//! when it is unset or unreachable: these tests never skip. Each test gets
//! its own table prefix, so parallel tests never see each other's rows.

use session_core::store::mysql::MySqlStore;
use session_core::{Config, Token};

fn url() -> String {
    std::env::var("DATABASE_URL")
        .expect("DATABASE_URL must name the MySQL server for these tests (see README)")
}

async fn store() -> MySqlStore {
    let url = url();
    let prefix = format!(
        "t{}_",
        &Token::generate().unwrap().to_cookie_value()[..10]
            .to_ascii_lowercase()
            .replace(['-', '_'], "x")
    );
    let config = Config {
        table_prefix: prefix,
        max_connections: 20,
        ..Config::default()
    };
    let store = MySqlStore::connect(&url, &config)
        .await
        .unwrap_or_else(|e| panic!("cannot reach MySQL at {url}: {e:?}"));
    store.create_tables().await.expect("create tables");
    store
}

/// A connection of the test's own, to look at the tables directly.
async fn raw_connection() -> sqlx::MySqlConnection {
    use sqlx::Connection as _;
    sqlx::MySqlConnection::connect(&url())
        .await
        .expect("connect to MySQL")
}

async fn teardown(store: &MySqlStore) {
    store.drop_tables().await.expect("drop tables");
}

session_core::store_conformance_tests!(store, teardown);

#[tokio::test]
async fn the_table_holds_no_usable_token() {
    use base64::Engine as _;
    use session_core::SessionManager;
    use std::sync::Arc;

    let store = Arc::new(store().await);
    let manager = SessionManager::new(store.clone(), Config::default()).unwrap();
    let cookie = session_core::testing::login(&manager, 1).await;
    let rows: Vec<(Vec<u8>,)> = sqlx::query_as(&format!(
        "SELECT token_hash FROM `{}sessions`",
        store.table_names().prefix()
    ))
    .fetch_all(&mut raw_connection().await)
    .await
    .unwrap();
    assert_eq!(rows.len(), 1);
    let stored = &rows[0].0;
    let token = Token::parse(&cookie).expect("the cookie holds a token");
    assert_eq!(
        stored.as_slice(),
        token.store_key().as_bytes(),
        "the table holds the SHA-256 only"
    );
    // neither the cookie text nor the token's raw bytes appear in the table
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&cookie)
        .unwrap();
    assert_ne!(stored.as_slice(), cookie.as_bytes());
    assert_ne!(stored, &raw);
    teardown(&store).await;
}

#[tokio::test]
async fn table_prefixes_must_be_identifiers() {
    let err = MySqlStore::connect(
        &url(),
        &Config {
            table_prefix: "x`; drop".into(),
            ..Config::default()
        },
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("table_prefix"), "{err}");
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable() {
    let config = Config {
        connect_timeout: 1,
        ..Config::default()
    };
    let err = MySqlStore::connect("mysql://root@127.0.0.1:1/test", &config)
        .await
        .unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
}

#[tokio::test]
async fn sequential_requests_reuse_one_connection() {
    let store = std::sync::Arc::new(store().await);
    session_core::testing::sequential_requests_reuse_one_connection(store.clone()).await;
    teardown(&store).await;
}
