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
    let prefix = session_core::testing::unique_prefix("t");
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
/// A session created at `t` that lives a minute.
fn minute_session(t: i64) -> session_core::store::NewSession {
    session_core::store::NewSession {
        created_at: t,
        expires_at: t + 60,
        idle_timeout: 60,
        persistent: None,
    }
}

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
    let idle = store.clone();
    session_core::testing::sequential_requests_reuse_one_connection(store.clone(), move || {
        idle.idle_connections()
    })
    .await;
    teardown(&store).await;
}

/// Item 7: under READ COMMITTED, a save racing a logout reports the session
/// gone (never a foreign-key error), exactly as under REPEATABLE READ.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_committed_gives_the_same_outcomes() {
    use sqlx::mysql::MySqlPoolOptions;
    use std::sync::Arc;

    let prefix = store().await.table_names().prefix().to_string();
    let pool = MySqlPoolOptions::new()
        .max_connections(10)
        .after_connect(|conn, _| {
            Box::pin(async move {
                sqlx::query("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
                    .execute(&mut *conn)
                    .await
                    .map(drop)
            })
        })
        .connect(&url())
        .await
        .unwrap();
    let level: (String,) = sqlx::query_as("SELECT @@tx_isolation") // MariaDB's name; MySQL 8 says transaction_isolation
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(level.0, "READ-COMMITTED");
    let store = Arc::new(MySqlStore::new(pool).with_table_prefix(&prefix).unwrap());
    session_core::testing::writes_racing_a_destroy_never_resurrect(store.clone()).await;
    session_core::testing::destroy_wins_over_a_slower_request(store.clone()).await;
    session_core::testing::requests_racing_a_regenerate(store.clone()).await;
    teardown(&store).await;
}

/// Item 3c: the rename and the field write of a regenerate are one
/// transaction: when the write fails, the old token still works.
#[tokio::test]
async fn a_failed_write_undoes_its_regenerate() {
    use session_core::store::{Changes, Rename, SessionStore, Validity};

    let store = store().await;
    let t = session_core::now();
    let from = Token::generate().unwrap().store_key();
    let session = minute_session(t);
    assert!(store
        .create(&from, session, &[("user", b"1".to_vec())])
        .await
        .unwrap());
    let to = Token::generate().unwrap().store_key();
    let at = Validity {
        now: t,
        created_after: t - 1000,
    };
    let too_long: &'static str = Box::leak("n".repeat(100).into_boxed_str());
    let changes = Changes {
        rename: Some(Rename {
            to,
            previous_until: t + 60,
            reason: session_core::store::Replaced::Regenerated,
        }),
        // Large, so in a row of its own, whose name column refuses it.
        upsert: vec![(too_long, vec![b'1'; 2048])],
        ..Changes::default()
    };
    assert!(
        store.save(&from, &changes, at).await.is_err(),
        "a name over 64 characters fails"
    );
    assert!(
        store.load(&from, &[], at).await.unwrap().is_some(),
        "the old token still works"
    );
    assert!(
        store.load(&to, &[], at).await.unwrap().is_none(),
        "the move was rolled back"
    );
    teardown(&store).await;
}

/// Item 9: a `sessions` table of another layout is refused by name, with
/// the columns found and the fix.
#[tokio::test]
async fn a_foreign_sessions_table_is_named_with_the_fix() {
    let store = store().await;
    let prefix = store.table_names().prefix().to_string();
    teardown(&store).await;
    let mut conn = raw_connection().await;
    sqlx::query(&format!(
        "CREATE TABLE `{prefix}sessions` (session_id VARCHAR(128) PRIMARY KEY, expires INT UNSIGNED, data MEDIUMTEXT)"
    ))
    .execute(&mut conn)
    .await
    .unwrap();
    let err = store.create_tables().await.unwrap_err().to_string();
    let table = format!("`{prefix}sessions`");
    for needle in [table.as_str(), "session_id, expires, data", "table_prefix"] {
        assert!(err.contains(needle), "{needle:?} missing from: {err}");
    }
    assert!(store
        .check()
        .await
        .unwrap_err()
        .to_string()
        .contains("table_prefix"));
    sqlx::query(&format!("DROP TABLE `{prefix}sessions`"))
        .execute(&mut conn)
        .await
        .unwrap();
}

/// A `session_fields` table from before versioned fields (no `version`,
/// no `writers`) and one from before lost replies were recognised (no
/// `writers`): `create_tables` adds the missing columns and keeps the
/// rows; `check` (the `create_tables = false` path) refuses the table and
/// names the statements.
#[tokio::test]
async fn an_older_fields_table_gets_its_columns() {
    for dropped in [&["writers", "version"][..], &["writers"][..]] {
        older_fields_table(dropped).await;
    }
}

async fn older_fields_table(dropped: &[&str]) {
    use session_core::store::SessionStore;

    let store = store().await;
    let prefix = store.table_names().prefix().to_string();
    let mut conn = raw_connection().await;
    let key = Token::generate().unwrap().store_key();
    let t = session_core::now();
    let session = minute_session(t);
    assert!(store
        .create(&key, session, &[("kept", b"1".to_vec())])
        .await
        .unwrap());
    for column in dropped {
        sqlx::query(&format!(
            "ALTER TABLE `{prefix}session_fields` DROP COLUMN `{column}`"
        ))
        .execute(&mut conn)
        .await
        .unwrap();
    }
    let err = store.check().await.unwrap_err().to_string();
    for column in dropped {
        assert!(
            err.contains(&format!(
                "ALTER TABLE `{prefix}session_fields` ADD COLUMN `{column}`"
            )),
            "{err}"
        );
    }
    store.create_tables().await.unwrap();
    store.check().await.unwrap();
    let at = session_core::store::Validity {
        now: t,
        created_after: t - 3600,
    };
    let record = store.load(&key, &[], at).await.unwrap().unwrap();
    assert_eq!(record.fields, vec![("kept".to_string(), b"1".to_vec())]);
    teardown(&store).await;
}

/// A read-only server (a replica, a node being failed over) is an outage,
/// 503, not a failure of the app: MySQL error 1290 is `Unavailable`.
#[tokio::test]
async fn a_read_only_server_is_unavailable() {
    use session_core::store::{Changes, SessionStore, Validity};
    use sqlx::Executor as _;

    let store = store().await;
    let prefix = store.table_names().prefix().to_string();
    let mut root = raw_connection().await;
    root.execute("CREATE USER IF NOT EXISTS 'session_ro'@'127.0.0.1' IDENTIFIED BY 'ro'")
        .await
        .unwrap();
    root.execute("GRANT ALL PRIVILEGES ON test.* TO 'session_ro'@'127.0.0.1'")
        .await
        .unwrap();
    let host = url().replace("root@", "session_ro:ro@");
    let config = Config {
        table_prefix: prefix,
        ..Config::default()
    };
    let limited = MySqlStore::connect(&host, &config).await.unwrap();
    let key = Token::generate().unwrap().store_key();
    let t = session_core::now();
    let session = minute_session(t);
    assert!(limited.create(&key, session, &[]).await.unwrap());
    // Only users without the privilege to bypass it are affected, so the
    // other tests (as root) run on.
    root.execute("SET GLOBAL read_only = 1").await.unwrap();
    let changes = Changes {
        upsert: vec![("a", b"1".to_vec())],
        ..Changes::default()
    };
    let at = Validity {
        now: t,
        created_after: t - 1000,
    };
    let result = limited.save(&key, &changes, at).await;
    root.execute("SET GLOBAL read_only = 0").await.unwrap();
    let err = result.expect_err("a read-only server refuses the write");
    assert!(err.is_unavailable(), "a 503, not a 500: {err:?}");
    teardown(&store).await;
}

/// Limits that the server's `max_allowed_packet` cannot carry are refused
/// when the store is prepared, not found out by a dropped connection.
#[tokio::test]
async fn limits_beyond_max_allowed_packet_are_refused_at_launch() {
    use session_core::store::SessionStore;

    let store = store().await;
    let too_big = Config {
        max_session_bytes: 64 << 20,
        table_prefix: store.table_names().prefix().to_string(),
        ..Config::default()
    };
    let err = store.prepare(&too_big).await.unwrap_err().to_string();
    assert!(
        err.contains("max_allowed_packet") && err.contains("max_session_bytes"),
        "{err}"
    );
    let fine = Config {
        table_prefix: store.table_names().prefix().to_string(),
        ..Config::default()
    };
    store.prepare(&fine).await.unwrap();
    teardown(&store).await;
}

/// A write that waits past `statement_timeout` (here on a row lock another
/// connection holds) answers unavailable, and the server ends it too: when
/// the lock goes, nothing of it commits. (The store's own wait alone would
/// close its connection and leave the statement waiting on the server,
/// to commit after the request answered 503.)
#[tokio::test]
async fn a_write_past_the_statement_timeout_is_ended_by_the_server() {
    use session_core::store::{Changes, SessionStore, Validity};
    use sqlx::Executor as _;

    let config = Config {
        table_prefix: session_core::testing::unique_prefix("t"),
        statement_timeout: 1,
        ..Config::default()
    };
    let store = MySqlStore::connect(&url(), &config).await.unwrap();
    store.create_tables().await.unwrap();
    let prefix = store.table_names().prefix().to_string();
    let key = Token::generate().unwrap().store_key();
    let t = session_core::now();
    assert!(store
        .create(&key, minute_session(t), &[("a", b"1".to_vec())])
        .await
        .unwrap());

    let mut holder = raw_connection().await;
    holder.execute("BEGIN").await.unwrap();
    holder
        .execute(format!("UPDATE `{prefix}sessions` SET data = 'held'").as_str())
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
    // Past the store's wait: the store's statement would still be queued
    // behind the lock now, had the server not ended it.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    holder.execute("ROLLBACK").await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let record = store.load(&key, &[], at).await.unwrap().unwrap();
    assert_eq!(record.fields, vec![("a".to_string(), b"1".to_vec())]);
    teardown(&store).await;
}

/// A database set up for an earlier release, without the table of replaced
/// tokens: `check` (`create_tables = false`) names the statement to run,
/// `create_tables` adds the table.
#[tokio::test]
async fn a_missing_previous_keys_table_is_named_or_created() {
    let store = store().await;
    let prefix = store.table_names().prefix().to_string();
    let mut conn = raw_connection().await;
    sqlx::query(&format!("DROP TABLE `{prefix}session_previous`"))
        .execute(&mut conn)
        .await
        .unwrap();
    let err = store.check().await.unwrap_err().to_string();
    assert!(
        err.contains(&format!(
            "CREATE TABLE IF NOT EXISTS `{prefix}session_previous`"
        )),
        "{err}"
    );
    store.create_tables().await.unwrap();
    store.check().await.unwrap();
    teardown(&store).await;
}

/// Two store instances over one database (two app instances) cleaning up
/// at once report each expired session once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_cleanups_report_each_session_once() {
    let a = store().await;
    let config = Config {
        table_prefix: a.table_names().prefix().to_string(),
        max_connections: 20,
        ..Config::default()
    };
    let b = MySqlStore::connect(&url(), &config).await.unwrap();
    let a = std::sync::Arc::new(a);
    let b = std::sync::Arc::new(b);
    session_core::testing::racing_cleanups_report_each_session_once(a.clone(), b.clone()).await;
    session_core::testing::expiry_events_fire_once_across_instances(a.clone(), b).await;
    teardown(&a).await;
}
