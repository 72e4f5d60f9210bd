//! The one-row layout on the real servers (MySQL `DATABASE_URL`,
//! PostgreSQL `POSTGRES_URL`, and a SQLite file; these tests fail, never
//! skip, when a server is unreachable):
//!
//! - tables of the layout before the session row's document (no `data`
//!   column), filled as that release filled them, opened by this one:
//!   the column is added at launch (or its statement named when
//!   `create_tables = false`), and nothing stored is lost, read by a store
//!   that never saw the session, then written, then read again;
//! - a field moving between the document and a row of its own as its
//!   value grows and shrinks, read each time by a store that knows nothing
//!   of it.

use super::doc::ROW_VALUE_BYTES;
use super::{Arg, Backend, SqlStore, Stmt};
use crate::config::Config;
use crate::store::{
    Changes, Expect, NewSession, PreviousKey, Rename, Replaced, Saved, SessionStore, Validity,
};
use crate::token::{StoreKey, Token};

fn at() -> Validity {
    let now = crate::now();
    Validity {
        now,
        created_after: now - 3600,
    }
}

fn key() -> StoreKey {
    Token::generate().unwrap().store_key()
}

fn run<'a>(sql: String, args: Vec<Arg<'a>>) -> Stmt<'a> {
    Stmt {
        sql: sql.into(),
        args,
    }
}

/// Every field of the session under `key`, as a store that never saw it
/// reads it, sorted; and the versions.
async fn read_cold<B: Backend>(
    store: &SqlStore<B>,
    key: &StoreKey,
) -> (Vec<(String, Vec<u8>)>, Vec<(String, u64)>) {
    let cold = store.cold();
    let mut record = cold.load(key, &[], at()).await.unwrap().expect("alive");
    record.fields.sort();
    record.versions.sort();
    (record.fields, record.versions)
}

/// Writes a session as the release before the document did: its row,
/// then one row per field.
async fn old_session<B: Backend>(
    store: &SqlStore<B>,
    key: &StoreKey,
    fields: &[(&str, &[u8], Option<i64>)],
) {
    let names = store.table_names();
    let now = crate::now();
    store
        .backend
        .execute(
            &[run(
                format!(
                    "INSERT INTO `{}` (token_hash, created_at, expires_at, idle_timeout, persistent) VALUES (?, ?, ?, ?, NULL)",
                    names.sessions
                ),
                vec![
                    Arg::Bytes(key.as_bytes()),
                    Arg::Int(now),
                    Arg::Int(now + 600),
                    Arg::Int(600),
                ],
            )],
            1,
            None,
        )
        .await
        .unwrap();
    for (name, value, version) in fields {
        let version = version.map_or("NULL".to_string(), |v| v.to_string());
        store
            .backend
            .execute(
                &[run(
                    format!(
                        "INSERT INTO `{}` (session_pk, name, value, version) SELECT pk, ?, ?, {version} FROM `{}` WHERE token_hash = ?",
                        names.fields, names.sessions
                    ),
                    vec![Arg::Text(name), Arg::Bytes(value), Arg::Bytes(key.as_bytes())],
                )],
                1,
                None,
            )
            .await
            .unwrap();
    }
}

async fn an_older_layout_upgrades_and_loses_nothing<B: Backend>(store: SqlStore<B>) {
    store.create_tables().await.unwrap();
    let names = store.table_names().clone();
    // The layout of the release before: no `data` column, and replaced
    // keys without `rotated`.
    store
        .backend
        .run_ddl(&[
            format!("ALTER TABLE `{}` DROP COLUMN `data`", names.sessions),
            format!("ALTER TABLE `{}` DROP COLUMN `rotated`", names.previous),
        ])
        .await
        .unwrap();
    let big = vec![b'b'; ROW_VALUE_BYTES * 2];
    let k = key();
    old_session(
        &store,
        &k,
        &[("a", b"1", None), ("big", &big, None), ("v", b"7", Some(3))],
    )
    .await;
    let bare = key();
    old_session(&store, &bare, &[]).await;

    // `create_tables = false`: refused, with the statement to run.
    let err = store.check().await.unwrap_err().to_string();
    assert!(err.contains("ADD COLUMN `data`"), "{err}");
    // `create_tables = true`: the column is added.
    store.create_tables().await.unwrap();
    store.check().await.unwrap();

    let all = || {
        (
            vec![
                ("a".to_string(), b"1".to_vec()),
                ("big".to_string(), big.clone()),
                ("v".to_string(), b"7".to_vec()),
            ],
            vec![("v".to_string(), 3)],
        )
    };
    assert_eq!(read_cold(&store, &k).await, all(), "read as it was written");
    let cold = store.cold();
    let only = cold.load_only(&k, &["a"], at()).await.unwrap().unwrap();
    assert_eq!(only.fields, vec![("a".to_string(), b"1".to_vec())]);
    assert_eq!(
        cold.load_field(&k, "big", at()).await.unwrap(),
        Some(big.clone())
    );
    assert_eq!(
        cold.load(&bare, &[], at()).await.unwrap().unwrap().fields,
        vec![]
    );

    // The first write of an upgraded session keeps every field.
    let write = Changes {
        upsert: vec![("n", b"new".to_vec())],
        ..Changes::default()
    };
    assert_eq!(
        store.cold().save(&k, &write, at()).await.unwrap(),
        Saved::Saved
    );
    let (mut fields, versions) = all();
    fields.push(("n".to_string(), b"new".to_vec()));
    fields.sort();
    assert_eq!(read_cold(&store, &k).await, (fields.clone(), versions));

    // Its versioned field takes a compare-and-set at its version; its
    // large one goes.
    let cas = Changes {
        upsert: vec![("v", b"8".to_vec())],
        expect: vec![Expect {
            name: "v",
            version: Some(3),
        }],
        remove: vec!["big"],
        ..Changes::default()
    };
    assert_eq!(
        store.cold().save(&k, &cas, at()).await.unwrap(),
        Saved::Saved
    );
    assert_eq!(
        read_cold(&store, &k).await,
        (
            vec![
                ("a".to_string(), b"1".to_vec()),
                ("n".to_string(), b"new".to_vec()),
                ("v".to_string(), b"8".to_vec()),
            ],
            vec![("v".to_string(), 4)]
        )
    );

    // Its token rotates, and the replaced one names it.
    let rotated = key();
    let rotate = Changes {
        rename: Some(Rename {
            to: rotated,
            previous_until: at().now + 10,
            reason: Replaced::Rotated,
        }),
        ..Changes::default()
    };
    assert_eq!(
        store.cold().save(&k, &rotate, at()).await.unwrap(),
        Saved::Saved
    );
    let previous = store.cold().previous(&k, at().now).await.unwrap();
    assert_eq!(
        previous,
        Some(PreviousKey {
            current: rotated,
            reason: Replaced::Rotated,
            within_grace: true
        })
    );
    store.drop_tables().await.unwrap();
}

async fn a_field_moves_between_the_row_and_its_own<B: Backend>(store: SqlStore<B>) {
    store.create_tables().await.unwrap();
    let k = key();
    let now = crate::now();
    let session = NewSession {
        created_at: now,
        expires_at: now + 600,
        idle_timeout: 600,
        persistent: None,
    };
    let large = |c: u8| vec![c; ROW_VALUE_BYTES + 1];
    assert!(store
        .create(&k, session, &[("x", large(b'1')), ("s", b"s".to_vec())])
        .await
        .unwrap());
    for value in [b"2".to_vec(), large(b'3'), b"4".to_vec(), large(b'5')] {
        // Written by one store, read by another that never saw the field.
        let write = Changes {
            upsert: vec![("x", value.clone())],
            ..Changes::default()
        };
        assert_eq!(
            store.cold().save(&k, &write, at()).await.unwrap(),
            Saved::Saved
        );
        let (fields, _) = read_cold(&store, &k).await;
        assert_eq!(
            fields,
            vec![("s".to_string(), b"s".to_vec()), ("x".to_string(), value)]
        );
    }
    // Removed while in its own row: gone for every reader.
    let remove = Changes {
        remove: vec!["x"],
        ..Changes::default()
    };
    assert_eq!(
        store.cold().save(&k, &remove, at()).await.unwrap(),
        Saved::Saved
    );
    assert_eq!(
        read_cold(&store, &k).await.0,
        vec![("s".to_string(), b"s".to_vec())]
    );
    assert_eq!(store.cold().load_field(&k, "x", at()).await.unwrap(), None);
    store.drop_tables().await.unwrap();
}

fn url(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| panic!("{var} must name the server for these tests"))
}

fn config(prefix: &str) -> Config {
    Config {
        table_prefix: prefix.to_string(),
        ..Config::default()
    }
}

impl<B: Backend> SqlStore<B> {
    /// The store as one that never saw a session: what it learned of
    /// fields in rows of their own forgotten.
    fn cold(&self) -> &Self {
        self.in_rows.write().unwrap().clear();
        self
    }
}

/// Both checks, each on tables of its own.
async fn both<B: Backend>(first: SqlStore<B>, second: SqlStore<B>) {
    an_older_layout_upgrades_and_loses_nothing(first).await;
    a_field_moves_between_the_row_and_its_own(second).await;
}

/// A store of type `$store` at `$url` on tables of its own.
macro_rules! open {
    ($store:ty, $url:expr, $tag:expr) => {
        <$store>::connect(&$url, &config(&crate::testing::unique_prefix($tag)))
            .await
            .expect("the store opens")
    };
}

#[tokio::test]
async fn on_mysql() {
    use crate::store::mysql::MySqlStore as S;
    let url = url("DATABASE_URL");
    both(open!(S, url, "up"), open!(S, url, "mv")).await;
}

#[tokio::test]
async fn on_postgres() {
    use crate::store::postgres::PgStore as S;
    let url = url("POSTGRES_URL");
    both(open!(S, url, "up"), open!(S, url, "mv")).await;
}

#[tokio::test]
async fn on_sqlite() {
    use crate::store::sqlite::SqliteStore as S;
    let prefix = crate::testing::unique_prefix("up");
    let file = std::env::temp_dir().join(format!("session-upgrade-{prefix}.db"));
    let url = format!("sqlite://{}", file.display());
    both(open!(S, url, "up"), open!(S, url, "mv")).await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
    }
}
