//! The SQLite store (feature `sqlite`): the embedded default, one file and
//! no server, with the same layout and contract as the MySQL store.
//!
//! The database runs in WAL mode with a busy timeout, so concurrent
//! requests wait for each other's writes instead of failing with "database
//! is locked"; the bundled SQLite library needs no system package.
//!
//! ```no_run
//! # async fn run() -> session_core::Result<()> {
//! use session_core::{Config, store::sqlite::SqliteStore};
//!
//! let store = SqliteStore::connect("sqlite://sessions.db", &Config::default()).await?;
//! store.create_tables().await?;
//! # Ok(()) }
//! ```

use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    Sqlite, SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool,
    SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Connection, Row};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::store::sql::{Affected, Arg, Backend, ErrorClass, SqlStore, Stmt};

/// SQLite primary result codes the store reacts to.
mod codes {
    /// `SQLITE_BUSY`: another connection holds the write lock past the busy
    /// timeout.
    pub const BUSY: i64 = 5;
    /// `SQLITE_LOCKED`.
    pub const LOCKED: i64 = 6;
    /// `SQLITE_CANTOPEN`.
    pub const CANTOPEN: i64 = 14;
}

/// How long a writer waits for the lock before SQLite reports BUSY.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The session store on a SQLite file.
pub type SqliteStore = SqlStore<SqliteBackend>;

/// The SQLite half of [`SqliteStore`]: a pool and the dialect.
#[derive(Debug, Clone)]
pub struct SqliteBackend {
    pool: SqlitePool,
}

impl SqlStore<SqliteBackend> {
    /// A store on an existing pool. Tables are not created: call
    /// [`create_tables`](Self::create_tables).
    pub fn new(pool: SqlitePool) -> Self {
        SqlStore::from_backend(SqliteBackend { pool })
    }

    /// Opens (and creates, if missing) the database file named by `url`
    /// (`sqlite://path/sessions.db`), in WAL mode with a busy timeout.
    ///
    /// # Errors
    /// [`Error::Config`] for a bad URL or prefix; [`Error::Unavailable`]
    /// when the file cannot be opened or created.
    pub async fn connect(url: &str, config: &Config) -> Result<Self> {
        let options: SqliteConnectOptions = url
            .parse()
            .map_err(|e| Error::config(format!("invalid SQLite `url`: {e}")))?;
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(config.max_connections.max(1))
            .acquire_timeout(Duration::from_secs(config.connect_timeout))
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .map_err(|e| Error::Unavailable(Box::new(e)))?;
        Self::new(pool).with_table_prefix(&config.table_prefix)
    }

    /// The pool (to share it, or to close it at shutdown).
    pub fn pool(&self) -> &SqlitePool {
        &self.backend.pool
    }
}

type Query<'q> = sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments<'q>>;

fn bind<'q>(stmt: &'q Stmt<'q>) -> Query<'q> {
    stmt.args
        .iter()
        .fold(sqlx::query(&stmt.sql), |q, arg| match *arg {
            Arg::Int(v) => q.bind(v),
            Arg::Text(v) => q.bind(v),
            Arg::Bytes(v) => q.bind(v),
        })
}

async fn run_all(
    conn: &mut SqliteConnection,
    stmts: &[Stmt<'_>],
    first_must_match: bool,
) -> Result<Affected, sqlx::Error> {
    let mut affected = Vec::with_capacity(stmts.len());
    for (i, stmt) in stmts.iter().enumerate() {
        let n = bind(stmt).execute(&mut *conn).await?.rows_affected();
        if i == 0 && first_must_match && n == 0 {
            return Ok(None);
        }
        affected.push(n);
    }
    Ok(Some(affected))
}

#[async_trait]
impl Backend for SqliteBackend {
    const NAME: &'static str = "sqlite";
    const UPSERT: &'static str =
        "ON CONFLICT (session_pk, name) DO UPDATE SET value = excluded.value";
    const GREATEST: &'static str = "MAX";
    const SCHEMA: &'static str = include_str!("schema.sql");

    async fn execute(
        &self,
        stmts: &[Stmt<'_>],
        first_must_match: bool,
    ) -> Result<Affected, sqlx::Error> {
        let mut conn = self.pool.acquire().await?;
        if stmts.len() == 1 {
            return run_all(&mut conn, stmts, first_must_match).await;
        }
        // BEGIN IMMEDIATE would avoid a deferred transaction's lock upgrade;
        // every transaction here starts with a write, so the write lock is
        // taken by its first statement and waits on the busy timeout.
        let mut tx = conn.begin().await?;
        let affected = run_all(&mut tx, stmts, first_must_match).await?;
        match affected {
            Some(_) => tx.commit().await?,
            None => tx.rollback().await?,
        }
        Ok(affected)
    }

    async fn fetch_session(
        &self,
        stmt: &Stmt<'_>,
    ) -> Result<Vec<(i64, i64, Option<String>, Option<Vec<u8>>)>, sqlx::Error> {
        let rows = bind(stmt).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?)))
            .collect()
    }

    async fn fetch_bytes(&self, stmt: &Stmt<'_>) -> Result<Option<Vec<u8>>, sqlx::Error> {
        let row = bind(stmt).fetch_optional(&self.pool).await?;
        row.map(|r| r.try_get(0)).transpose()
    }

    async fn fetch_ints(&self, stmt: &Stmt<'_>) -> Result<Vec<i64>, sqlx::Error> {
        let rows = bind(stmt).fetch_all(&self.pool).await?;
        rows.iter().map(|r| r.try_get::<i64, _>(0)).collect()
    }

    async fn run_ddl(&self, statements: &[String]) -> Result<(), sqlx::Error> {
        let mut conn = self.pool.acquire().await?;
        for sql in statements {
            sqlx::query(sql).execute(&mut *conn).await?;
        }
        Ok(())
    }

    fn classify(error: &sqlx::Error) -> ErrorClass {
        match error {
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => ErrorClass::Unavailable,
            sqlx::Error::Database(db) => {
                if db.is_unique_violation() {
                    return ErrorClass::Duplicate;
                }
                // Extended codes carry the primary code in their low byte.
                let primary = db
                    .code()
                    .and_then(|c| c.parse::<i64>().ok())
                    .map(|c| c & 0xff);
                match primary {
                    Some(codes::BUSY | codes::LOCKED) => ErrorClass::Retry,
                    Some(codes::CANTOPEN) => ErrorClass::Unavailable,
                    _ => ErrorClass::Other,
                }
            }
            _ => ErrorClass::Other,
        }
    }
}
