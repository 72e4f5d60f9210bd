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

async fn teardown(store: &MySqlStore) {
    store.drop_tables().await.expect("drop tables");
}

session_core::store_conformance_tests!(store, teardown);

#[tokio::test]
async fn the_table_holds_no_usable_token() {
    use session_core::state::{flush, CookieAction};
    use session_core::testing::Cart;
    use session_core::SessionManager;
    use std::sync::Arc;

    let store = Arc::new(store().await);
    let manager = SessionManager::new(store.clone(), Config::default()).unwrap();
    let mut h = manager.open::<Cart>(None);
    h.set_user(Some(1));
    flush(&mut h).await.unwrap();
    let Some(CookieAction::Set { token, .. }) = h.state_mut_ref().take_cookie_action() else {
        panic!("login sets a cookie")
    };
    let cookie = token.to_cookie_value();
    let rows: Vec<(Vec<u8>,)> = sqlx::query_as(&format!(
        "SELECT token_hash FROM `{}sessions`",
        store.table_names().prefix()
    ))
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(rows.len(), 1);
    let stored = &rows[0].0;
    assert_eq!(stored.len(), 32);
    assert_ne!(stored.as_slice(), cookie.as_bytes());
    assert_ne!(
        Some(stored.as_slice()),
        Token::parse(&cookie).map(|_| cookie.as_bytes())
    );
    assert_eq!(
        stored.as_slice(),
        token.store_key().as_bytes(),
        "the table holds the SHA-256 only"
    );
    // the token's raw bytes appear nowhere in the table
    let raw = base64_decode(&cookie);
    assert!(!stored.windows(raw.len()).any(|w| w == raw.as_slice()));
    teardown(&store).await;
}

fn base64_decode(s: &str) -> Vec<u8> {
    // URL-safe base64 without padding, decoded by hand to keep dev-deps small.
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'-' => 62,
        _ => 63,
    };
    let bits: Vec<u8> = s.bytes().map(val).collect();
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut n = 0;
    for b in bits {
        acc = (acc << 6) | u32::from(b);
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((acc >> n) as u8);
        }
    }
    out
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
