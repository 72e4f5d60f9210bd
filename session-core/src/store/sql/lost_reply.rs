//! Writes whose reply is lost after the server applied them, on the real
//! MySQL (`DATABASE_URL`) and PostgreSQL (`POSTGRES_URL`) servers (these
//! tests fail, never skip, when a server is unreachable).
//!
//! [`LoseReply`] wraps a real backend: the statements run on the server,
//! commit, and then the call fails as a connection reset does, which is
//! what a proxy restart, a failover or `KILL CONNECTION` between the
//! commit and its reply looks like to the store. Each test fails on a
//! store that replays such a write blindly.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;

use super::{Affected, Backend, SessionRow, SqlStore, Stmt};
use crate::config::Config;
use crate::store::{Changes, Expect, NewSession, Rename, Saved, SessionStore, Validity};
use crate::token::{StoreKey, Token};

/// A backend whose next `armed` writes (`execute`: statements, a
/// transaction; `insert`: a new session's row) run on the server and then
/// report a connection reset instead of their result.
#[derive(Debug)]
struct LoseReply<B> {
    inner: B,
    armed: AtomicUsize,
    armed_inserts: AtomicUsize,
}

impl<B> LoseReply<B> {
    fn lose_next(&self, writes: usize) {
        self.armed.store(writes, Ordering::SeqCst);
    }

    fn lost<T>(armed: &AtomicUsize, result: Result<T, sqlx::Error>) -> Result<T, sqlx::Error> {
        let armed = armed.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        match (armed, result) {
            // The write failed on its own: nothing to lose.
            (_, Err(e)) => Err(e),
            (Ok(_), Ok(_)) => Err(sqlx::Error::Io(std::io::Error::from(
                std::io::ErrorKind::ConnectionReset,
            ))),
            (Err(_), ok) => ok,
        }
    }
}

#[async_trait]
impl<B: Backend> Backend for LoseReply<B> {
    const NAME: &'static str = B::NAME;
    const UPSERT: &'static str = B::UPSERT;
    const GREATEST: &'static str = B::GREATEST;
    const LEAST: &'static str = B::LEAST;
    const NAME_BYTES: &'static str = B::NAME_BYTES;
    const COLUMNS: &'static str = B::COLUMNS;
    const SCHEMA: &'static str = B::SCHEMA;
    const PACK_FIELDS: Option<&'static str> = B::PACK_FIELDS;
    const VERSION_TYPE: &'static str = B::VERSION_TYPE;
    const WRITERS_TYPE: &'static str = B::WRITERS_TYPE;
    const PUSH_WRITER: &'static str = B::PUSH_WRITER;
    const HAS_WRITER: &'static str = B::HAS_WRITER;
    const INSERT_RETURNING: &'static str = B::INSERT_RETURNING;
    const JSON: super::JsonDialect = B::JSON;
    const DATA_TYPE: &'static str = B::DATA_TYPE;
    const MAX_PACKET: Option<&'static str> = B::MAX_PACKET;

    async fn execute(
        &self,
        stmts: &[Stmt<'_>],
        must_match: usize,
        limit: Option<Duration>,
    ) -> Result<Affected, sqlx::Error> {
        Self::lost(
            &self.armed,
            self.inner.execute(stmts, must_match, limit).await,
        )
    }

    async fn insert(&self, stmt: &Stmt<'_>, limit: Option<Duration>) -> Result<i64, sqlx::Error> {
        Self::lost(&self.armed_inserts, self.inner.insert(stmt, limit).await)
    }

    async fn take(
        &self,
        claim: &Stmt<'_>,
        delete: &(dyn for<'p> Fn(&'p [i64]) -> Stmt<'static> + Send + Sync),
        limit: Option<Duration>,
    ) -> Result<Vec<super::Taken>, sqlx::Error> {
        Self::lost(&self.armed, self.inner.take(claim, delete, limit).await)
    }

    async fn fetch_session(&self, stmt: &Stmt<'_>) -> Result<Vec<SessionRow>, sqlx::Error> {
        self.inner.fetch_session(stmt).await
    }

    async fn fetch_bytes(&self, stmt: &Stmt<'_>) -> Result<Vec<Vec<u8>>, sqlx::Error> {
        self.inner.fetch_bytes(stmt).await
    }

    async fn fetch_ints(&self, stmt: &Stmt<'_>) -> Result<Vec<i64>, sqlx::Error> {
        self.inner.fetch_ints(stmt).await
    }

    async fn fetch_replaced(
        &self,
        stmt: &Stmt<'_>,
    ) -> Result<Vec<(Vec<u8>, i64, Option<i64>)>, sqlx::Error> {
        self.inner.fetch_replaced(stmt).await
    }

    async fn run_ddl(&self, statements: &[String]) -> Result<(), sqlx::Error> {
        self.inner.run_ddl(statements).await
    }

    async fn close(&self) {
        self.inner.close().await;
    }

    fn idle_connections(&self) -> Option<usize> {
        self.inner.idle_connections()
    }

    fn purge_idle(&self) {
        self.inner.purge_idle();
    }

    fn classify(error: &sqlx::Error) -> super::ErrorClass {
        B::classify(error)
    }
}

/// `store` with its backend wrapped.
fn losing<B: Backend>(store: SqlStore<B>) -> SqlStore<LoseReply<B>> {
    let prefix = store.table_names().prefix().to_string();
    SqlStore::from_backend(LoseReply {
        inner: store.backend,
        armed: AtomicUsize::new(0),
        armed_inserts: AtomicUsize::new(0),
    })
    .with_table_prefix(&prefix)
    .expect("a valid prefix")
}

fn config() -> Config {
    Config {
        table_prefix: crate::testing::unique_prefix("lr"),
        ..Config::default()
    }
}

fn at() -> Validity {
    let now = crate::now();
    Validity {
        now,
        created_after: now - 3600,
    }
}

fn session() -> NewSession {
    let now = crate::now();
    NewSession {
        created_at: now,
        expires_at: now + 600,
        idle_timeout: 600,
        persistent: None,
    }
}

fn key() -> StoreKey {
    Token::generate().unwrap().store_key()
}

async fn field<B: Backend>(store: &SqlStore<B>, key: &StoreKey, name: &str) -> Option<Vec<u8>> {
    let record = store.load(key, &[], at()).await.unwrap()?;
    record
        .fields
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
}

async fn version<B: Backend>(store: &SqlStore<B>, key: &StoreKey, name: &str) -> u64 {
    let record = store.load(key, &[], at()).await.unwrap().expect("alive");
    record
        .versions
        .into_iter()
        .find(|(n, _)| n == name)
        .map_or(0, |(_, v)| v)
}

/// A compare-and-set of a versioned field.
fn bump(name: &'static str, from: Option<u64>, to: &[u8]) -> Changes {
    Changes {
        upsert: vec![(name, to.to_vec())],
        expect: vec![Expect {
            name,
            version: from,
        }],
        ..Changes::default()
    }
}

/// Every case, on one backend.
async fn lost_replies_are_recognised<B: Backend>(store: SqlStore<B>) {
    store.create_tables().await.unwrap();
    let store = losing(store);
    let k = key();
    assert!(store
        .create(
            &k,
            session(),
            &[("n", b"0".to_vec()), ("cart", b"[1]".to_vec())]
        )
        .await
        .unwrap());

    // A compare-and-set (version 0 -> 1) applied, its reply lost: the
    // store reports it saved (not a conflict, which `update_x` would
    // answer by running its closure again).
    store.backend.lose_next(1);
    let saved = store.save(&k, &bump("n", Some(0), b"1"), at()).await;
    assert_eq!(saved.unwrap(), Saved::Saved, "an applied write is saved");
    assert_eq!(field(&store, &k, "n").await.as_deref(), Some(&b"1"[..]));
    assert_eq!(version(&store, &k, "n").await, 1);
    assert_eq!(store.stats().recovered, 1);

    // Its writers column records the writes: the next one, lost too, is
    // recognised by its own nonce, not by the first one's.
    store.backend.lose_next(1);
    let saved = store.save(&k, &bump("n", Some(1), b"2"), at()).await;
    assert_eq!(saved.unwrap(), Saved::Saved);
    assert_eq!(version(&store, &k, "n").await, 2);

    // A real conflict is still one: a write from a stale version, its
    // reply lost, is not mistaken for an applied one.
    store.backend.lose_next(1);
    let stale = store.save(&k, &bump("n", Some(1), b"9"), at()).await;
    assert_eq!(stale.unwrap(), Saved::Conflict);
    assert_eq!(field(&store, &k, "n").await.as_deref(), Some(&b"2"[..]));

    // A versioned field added (absent -> version 1), reply lost.
    store.backend.lose_next(1);
    let saved = store.save(&k, &bump("points", None, b"10"), at()).await;
    assert_eq!(saved.unwrap(), Saved::Saved);
    assert_eq!(version(&store, &k, "points").await, 1);

    // A regenerate's transaction committed, its reply lost: the session
    // is under its new key with its data and this save's write, the old
    // key reads nothing.
    let to = key();
    let moved = Changes {
        rename: Some(Rename {
            to,
            previous_until: crate::now() + 60,
            reason: crate::store::Replaced::Regenerated,
        }),
        upsert: vec![("user", b"42".to_vec())],
        ..Changes::default()
    };
    store.backend.lose_next(1);
    assert_eq!(store.save(&k, &moved, at()).await.unwrap(), Saved::Saved);
    assert_eq!(
        field(&store, &to, "cart").await.as_deref(),
        Some(&b"[1]"[..])
    );
    assert_eq!(
        field(&store, &to, "user").await.as_deref(),
        Some(&b"42"[..])
    );
    assert!(store.load(&k, &[], at()).await.unwrap().is_none());

    // A versioned removal applied, reply lost.
    let removal = Changes {
        remove: vec!["points"],
        expect: vec![Expect {
            name: "points",
            version: Some(1),
        }],
        ..Changes::default()
    };
    store.backend.lose_next(1);
    assert_eq!(store.save(&to, &removal, at()).await.unwrap(), Saved::Saved);
    assert_eq!(field(&store, &to, "points").await, None);

    // A login: the session row's insert, or the insert of its fields in
    // rows of their own (a value too large for the row), applied with its
    // reply lost: the session is created once, whole.
    for lose_row in [true, false] {
        let user = if lose_row {
            b"7".to_vec()
        } else {
            vec![b'7'; super::doc::ROW_VALUE_BYTES + 1]
        };
        let fresh = key();
        if lose_row {
            store.backend.armed_inserts.store(1, Ordering::SeqCst);
        } else {
            store.backend.lose_next(1);
        }
        let before = store.stats().recovered;
        let created = store
            .create(&fresh, session(), &[("user", user.clone())])
            .await;
        assert!(
            created.unwrap(),
            "an applied insert is neither a taken key nor an error"
        );
        assert_eq!(store.stats().recovered, before + 1);
        assert_eq!(field(&store, &fresh, "user").await, Some(user));
    }

    // More writers than the column remembers came after a lost write:
    // whether it was applied cannot be told, and the answer says so
    // (unavailable), never a conflict the caller would write again after.
    let k = key();
    assert!(store.create(&k, session(), &[]).await.unwrap());
    let nonce = super::statements::Nonce([7; 8]);
    let mut v = 0;
    for _ in 0..super::statements::WRITERS_KEPT + 1 {
        assert_eq!(
            store
                .save(&k, &bump("c", (v > 0).then_some(v), b"x"), at())
                .await
                .unwrap(),
            Saved::Saved
        );
        v += 1;
    }
    let landed = super::writes::Landed::Wrote {
        key: &k,
        name: "c",
        version: 1,
        nonce: &nonce,
    };
    assert_eq!(store.landed(&landed).await.unwrap(), None);
    let recent = super::writes::Landed::Wrote {
        key: &k,
        name: "c",
        version: v,
        nonce: &nonce,
    };
    assert_eq!(store.landed(&recent).await.unwrap(), Some(false));

    store.drop_tables().await.unwrap();
}

fn url(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| panic!("{var} must name the server for these tests"))
}

#[tokio::test]
async fn on_mysql() {
    let store = crate::store::mysql::MySqlStore::connect(&url("DATABASE_URL"), &config())
        .await
        .expect("MySQL reachable");
    lost_replies_are_recognised(store).await;
}

#[tokio::test]
async fn on_postgres() {
    let store = crate::store::postgres::PgStore::connect(&url("POSTGRES_URL"), &config())
        .await
        .expect("PostgreSQL reachable");
    lost_replies_are_recognised(store).await;
}
