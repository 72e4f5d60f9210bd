//! The store conformance suite on SQLite, a temporary file per test.

use std::path::PathBuf;

use session_core::store::sqlite::SqliteStore;
use session_core::{Config, Token};

/// A fresh prefix per test; the test's database file is named after it.
fn temp_prefix() -> String {
    let name = Token::generate().unwrap().to_cookie_value();
    format!(
        "t{}_",
        name[..12].to_ascii_lowercase().replace(['-', '_'], "x")
    )
}

fn db_path(prefix: &str) -> PathBuf {
    std::env::temp_dir().join(format!("session-test-{prefix}.db"))
}

async fn open(prefix: String) -> SqliteStore {
    let url = format!("sqlite://{}", db_path(&prefix).display());
    let config = Config {
        table_prefix: prefix,
        ..Config::default()
    };
    SqliteStore::connect(&url, &config)
        .await
        .expect("open sqlite file")
}

async fn store() -> SqliteStore {
    let store = open(temp_prefix()).await;
    store.create_tables().await.expect("create tables");
    store
}

async fn teardown(store: &SqliteStore) {
    let path = db_path(store.table_names().prefix());
    session_core::store::SessionStore::close(store).await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

session_core::store_conformance_tests!(store, teardown);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_requests_on_one_session_all_succeed() {
    use session_core::flush;
    use session_core::state::Outcome;
    use session_core::testing::Cart;
    use session_core::SessionManager;
    use std::sync::Arc;

    let store = Arc::new(store().await);
    let manager = SessionManager::new(store.clone(), Config::default()).unwrap();
    let cookie = session_core::testing::login(&manager, 1).await;
    // 32 requests at once, each appending to its own field through a full
    // load-modify-flush: none may fail with "database is locked".
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let manager = manager.clone();
            let cookie = cookie.clone();
            tokio::spawn(async move {
                let mut h = manager.open::<Cart>(Some(&cookie));
                let _ = h.user().await?;
                match i % 3 {
                    0 => h.cart_mut().await?.push(format!("item{i}")),
                    1 => *h.visits_mut().await? += 1,
                    _ => h.set_history(vec![format!("/p{i}")]),
                }
                flush(&mut h).await
            })
        })
        .collect();
    for task in tasks {
        let outcome = task.await.unwrap().expect("no request fails");
        assert!(matches!(outcome, Outcome::Saved | Outcome::Unchanged));
    }
    teardown(&store).await;
}

#[tokio::test]
async fn the_file_and_tables_are_created() {
    let prefix = temp_prefix();
    let path = db_path(&prefix);
    assert!(!path.exists());
    let store = open(prefix).await;
    store.create_tables().await.unwrap();
    store
        .create_tables()
        .await
        .expect("creating twice is harmless");
    store.check().await.unwrap();
    assert!(path.exists());
    teardown(&store).await;
}

#[tokio::test]
async fn sequential_requests_reuse_one_connection() {
    let store = std::sync::Arc::new(store().await);
    let idle = store.clone();
    session_core::testing::sequential_requests_reuse_one_connection(store.clone(), move || {
        idle.idle_connections()
    })
    .await;
    teardown(&store).await;
}

/// Item 11: a destroyed session's primary key is never handed out again.
#[tokio::test]
async fn a_destroyed_sessions_key_is_never_reused() {
    use session_core::store::{NewSession, SessionStore};
    use sqlx::Connection as _;

    let store = store().await;
    let prefix = store.table_names().prefix().to_string();
    let path = db_path(&prefix);
    let t = session_core::now();
    let session = NewSession {
        created_at: t,
        expires_at: t + 60,
        idle_timeout: 60,
        persistent: None,
    };
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let mut pks = Vec::new();
    for _ in 0..2 {
        let key = Token::generate().unwrap().store_key();
        assert!(store
            .create(&key, session, &[("a", b"1".to_vec())])
            .await
            .unwrap());
        let (pk,): (i64,) = sqlx::query_as(&format!(
            "SELECT pk FROM `{prefix}sessions` WHERE token_hash = ?"
        ))
        .bind(key.as_bytes().as_slice())
        .fetch_one(&mut conn)
        .await
        .unwrap();
        pks.push(pk);
        store.destroy(&key, t).await.unwrap();
    }
    assert_ne!(pks[0], pks[1], "AUTOINCREMENT");
    teardown(&store).await;
}

/// A stored value edited by hand into TEXT holding a NUL byte (and a name
/// with a non-ASCII character) still loads, as the bytes it holds: `b` is
/// large, so in a row of its own (the packed load's case). One bad
/// value costs its field a decode fallback in the typed layer, never the
/// whole session an error ("malformed packed fields").
#[tokio::test]
async fn a_value_edited_into_text_still_loads() {
    use session_core::store::{NewSession, SessionStore, Validity};
    use sqlx::Connection as _;

    let store = store().await;
    let prefix = store.table_names().prefix().to_string();
    let key = Token::generate().unwrap().store_key();
    let t = session_core::now();
    let session = NewSession {
        created_at: t,
        expires_at: t + 60,
        idle_timeout: 60,
        persistent: None,
    };
    let fields = [
        ("a", b"1".to_vec()),
        ("b", vec![b'2'; 2048]),
        ("z\u{e9}", b"3".to_vec()),
    ];
    assert!(store.create(&key, session, &fields).await.unwrap());
    let url = format!("sqlite://{}", db_path(&prefix).display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query(&format!(
        "UPDATE `{prefix}session_fields` SET value = CAST(x'410042' AS TEXT) WHERE name = 'b'"
    ))
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    let at = Validity {
        now: t,
        created_after: t - 3600,
    };
    let mut record = store
        .load(&key, &[], at)
        .await
        .unwrap()
        .expect("the session");
    record.fields.sort();
    assert_eq!(
        record.fields,
        vec![
            ("a".to_string(), b"1".to_vec()),
            ("b".to_string(), b"A\0B".to_vec()),
            ("z\u{e9}".to_string(), b"3".to_vec()),
        ]
    );
    teardown(&store).await;
}

/// Two store instances over one database file (two app instances)
/// cleaning up at once report each expired session once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_cleanups_report_each_session_once() {
    let a = store().await;
    let b = open(a.table_names().prefix().to_string()).await;
    let a = std::sync::Arc::new(a);
    let b = std::sync::Arc::new(b);
    session_core::testing::racing_cleanups_report_each_session_once(a.clone(), b.clone()).await;
    session_core::testing::expiry_events_fire_once_across_instances(a.clone(), b).await;
    teardown(&a).await;
}
