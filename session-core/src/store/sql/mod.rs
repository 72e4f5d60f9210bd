//! What the SQL stores share: the layout, the statements, retries, counters
//! and cleanup. Each dialect ([`mysql`](super::mysql), [`sqlite`](super::sqlite))
//! keeps only its driver calls, its conflict clause and its error codes.
//!
//! # Layout
//! - `{prefix}sessions(pk, token_hash UNIQUE, created_at, expires_at INDEX)`:
//!   `token_hash` is the SHA-256 of the cookie's token, so the table holds no
//!   usable token. The internal `pk` never changes, so regenerate is one
//!   `UPDATE` of `token_hash` and field rows are never rewritten.
//! - `{prefix}session_fields(session_pk, name, value, PRIMARY KEY(session_pk, name))`,
//!   with a foreign key to `sessions` `ON DELETE CASCADE`: destroy is one
//!   `DELETE`.
//!
//! # Statements
//! - load: one `SELECT` joining both tables, skipping deferred fields, with
//!   the expiry checks in its `WHERE`;
//! - write: one `INSERT … SELECT … ON DUPLICATE KEY UPDATE` (MySQL) /
//!   `ON CONFLICT … DO UPDATE` (SQLite) for every changed field. The `SELECT`
//!   finds the session by `token_hash` and checks it is alive, so a save
//!   to a destroyed session inserts nothing and reports it: a logout is never
//!   undone, without locks (`GET_LOCK` and `FOR UPDATE` are node-local on a
//!   multi-primary cluster);
//! - a save that needs more than one statement (removed fields, an expiry
//!   touch) runs them in one short transaction. Every write is retried whole
//!   on deadlock and lock-wait timeout (MySQL 1213/1205, SQLite BUSY), which
//!   per-field upserts make safe.

use std::fmt::{self, Write as _};
use std::time::Duration;

use async_trait::async_trait;

use crate::error::{BoxError, Error, Result};
use crate::store::{
    validate_prefix, Changes, Counters, ExpiryUpdate, Record, Saved, SessionStore, StoreStats,
    Timestamp, Validity,
};
use crate::token::StoreKey;

mod driver;
pub mod pool;
pub(crate) use driver::sqlx_backend;

/// Where a SQL store's connections come from.
#[derive(Debug)]
pub enum Conns<DB: sqlx::Database, C: sqlx::Connection> {
    /// The store's own pool (see [`pool`]): opened by `connect`.
    Own(pool::ConnPool<C>),
    /// A sqlx pool shared with the application.
    Shared(sqlx::Pool<DB>),
}

/// A statement argument.
#[derive(Debug, Clone, Copy)]
pub enum Arg<'a> {
    /// An integer (timestamps, limits, primary keys).
    Int(i64),
    /// A string (field names).
    Text(&'a str),
    /// Bytes (hashes, field values).
    Bytes(&'a [u8]),
}

/// One statement with its arguments.
#[derive(Debug)]
pub struct Stmt<'a> {
    /// The SQL text, `?` placeholders.
    pub sql: String,
    /// The arguments, in placeholder order.
    pub args: Vec<Arg<'a>>,
}

/// How a driver error should be handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Deadlock, lock-wait timeout, busy database: retry the transaction.
    Retry,
    /// The server is unreachable or the pool timed out: 503.
    Unavailable,
    /// A unique key was violated.
    Duplicate,
    /// Anything else: 500.
    Other,
}

/// A rows-affected count per statement, or `None` when the batch stopped
/// early because its first statement matched nothing.
pub type Affected = Option<Vec<u64>>;

/// The driver half of a SQL store: the few calls that differ between
/// databases. Everything else is [`SqlStore`].
#[async_trait]
pub trait Backend: fmt::Debug + Send + Sync + 'static {
    /// The dialect's name, for logs.
    const NAME: &'static str;
    /// The conflict clause that turns the field insert into an upsert.
    const UPSERT: &'static str;
    /// The function returning the larger of two values.
    const GREATEST: &'static str;
    /// `f.name` as a byte string (MySQL reports an `ascii_bin` column as
    /// binary already; SQLite needs a cast), so one decoder serves both.
    const NAME_BYTES: &'static str;
    /// The table DDL with the default names (`sessions`, `session_fields`).
    const SCHEMA: &'static str;

    /// Runs statements: one alone in autocommit, several in one
    /// transaction. If `first_must_match` and the first statement affects no
    /// row, the transaction is rolled back and `None` returned.
    async fn execute(
        &self,
        stmts: &[Stmt<'_>],
        first_must_match: bool,
    ) -> Result<Affected, sqlx::Error>;

    /// Rows of `(created_at, expires_at, name, value)` from the load query.
    async fn fetch_session(
        &self,
        stmt: &Stmt<'_>,
    ) -> Result<Vec<(i64, i64, Option<String>, Option<Vec<u8>>)>, sqlx::Error>;

    /// The single bytes column of at most one row.
    async fn fetch_bytes(&self, stmt: &Stmt<'_>) -> Result<Option<Vec<u8>>, sqlx::Error>;

    /// A single integer column.
    async fn fetch_ints(&self, stmt: &Stmt<'_>) -> Result<Vec<i64>, sqlx::Error>;

    /// Runs DDL, statement by statement.
    async fn run_ddl(&self, statements: &[String]) -> Result<(), sqlx::Error>;

    /// Closes the connections the store opened itself.
    async fn close(&self);

    /// Idle connections in the store's own pool; `None` for a shared pool.
    fn idle_connections(&self) -> Option<usize>;

    /// Classifies a driver error.
    fn classify(error: &sqlx::Error) -> ErrorClass;
}

/// How often and how long a write is retried on deadlock or busy errors.
const RETRIES: u32 = 5;
const RETRY_BASE: Duration = Duration::from_millis(5);

/// The table names, checked once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableNames {
    prefix: String,
    sessions: String,
    fields: String,
}

impl TableNames {
    /// Names with a prefix of ASCII letters, digits and `_`.
    ///
    /// # Errors
    /// [`Error::Config`] for any other prefix.
    pub fn new(prefix: &str) -> Result<Self> {
        validate_prefix(prefix)?;
        Ok(TableNames {
            prefix: prefix.to_string(),
            sessions: format!("`{prefix}sessions`"),
            fields: format!("`{prefix}session_fields`"),
        })
    }

    /// The prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The DDL for these names, split into statements: every table, index
    /// and constraint name in the shipped schema starts with `` `sessions``
    /// or `` `session_fields``, so the prefix goes right after the backquote.
    fn ddl(&self, schema: &str) -> Vec<String> {
        // Comments go first: they may contain `;`.
        let code: String = schema
            .lines()
            .filter(|l| !l.trim_start().starts_with("--"))
            .map(|l| format!("{l}\n"))
            .collect();
        let p = &self.prefix;
        code.replace("`sessions", &format!("`{p}sessions"))
            .replace("`session_fields", &format!("`{p}session_fields"))
            .split(';')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    }
}

/// A session store on a SQL database; see the module docs for the layout
/// and statements. Use it through [`MySqlStore`](super::mysql::MySqlStore)
/// or [`SqliteStore`](super::sqlite::SqliteStore).
pub struct SqlStore<B> {
    pub(crate) backend: B,
    names: TableNames,
    counters: Counters,
}

impl<B: Backend> fmt::Debug for SqlStore<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlStore")
            .field("dialect", &B::NAME)
            .field("sessions_table", &self.names.sessions)
            .field("fields_table", &self.names.fields)
            .finish()
    }
}

fn placeholders(out: &mut String, n: usize) {
    for i in 0..n {
        out.push_str(if i == 0 { "?" } else { ", ?" });
    }
}

impl<B: Backend> SqlStore<B> {
    pub(crate) fn from_backend(backend: B) -> Self {
        SqlStore {
            backend,
            names: TableNames::new("").unwrap_or_else(|_| unreachable!("empty prefix is valid")),
            counters: Counters::default(),
        }
    }

    /// Uses `{prefix}sessions` and `{prefix}session_fields`.
    ///
    /// # Errors
    /// [`Error::Config`] unless the prefix is ASCII letters, digits and `_`.
    pub fn with_table_prefix(mut self, prefix: &str) -> Result<Self> {
        self.names = TableNames::new(prefix)?;
        Ok(self)
    }

    /// The table names in use.
    pub fn table_names(&self) -> &TableNames {
        &self.names
    }

    /// The DDL this store would run, with its table names: what
    /// [`create_tables`](Self::create_tables) executes.
    pub fn schema_sql(&self) -> String {
        self.names.ddl(B::SCHEMA).join(";\n") + ";\n"
    }

    /// Creates the tables when they are missing (`CREATE TABLE IF NOT
    /// EXISTS`; never drops or alters anything).
    ///
    /// # Errors
    /// The driver's error, e.g. when the user lacks the CREATE privilege
    /// (then run the shipped `.sql` file instead and set
    /// `create_tables = false`).
    pub async fn create_tables(&self) -> Result<()> {
        let ddl = self.names.ddl(B::SCHEMA);
        self.backend
            .run_ddl(&ddl)
            .await
            .map_err(|e| map_error::<B>(e))
    }

    /// Drops this store's tables. For test suites that create a prefix per
    /// test; never called by the library.
    #[doc(hidden)]
    pub async fn drop_tables(&self) -> Result<()> {
        let ddl = [
            format!("DROP TABLE IF EXISTS {}", self.names.fields),
            format!("DROP TABLE IF EXISTS {}", self.names.sessions),
        ];
        self.backend
            .run_ddl(&ddl)
            .await
            .map_err(|e| map_error::<B>(e))
    }

    /// Closes the connections this store opened itself (call it at
    /// shutdown); a pool shared with the app is left to the app.
    pub async fn close(&self) {
        self.backend.close().await;
    }

    /// Idle connections in the store's own pool (`None` on a pool shared
    /// with the app): for tests and metrics.
    pub fn idle_connections(&self) -> Option<usize> {
        self.backend.idle_connections()
    }

    /// Checks that the tables exist and are readable, with one cheap query.
    ///
    /// # Errors
    /// The driver's error: unreachable server, missing table, no privilege.
    pub async fn check(&self) -> Result<()> {
        let stmt = Stmt {
            sql: format!("SELECT pk FROM {} WHERE pk = 0", self.names.sessions),
            args: Vec::new(),
        };
        self.backend
            .fetch_ints(&stmt)
            .await
            .map(drop)
            .map_err(|e| map_error::<B>(e))
    }

    fn load_stmt<'a>(&self, key: &'a StoreKey, skip: &'a [&str], at: Validity) -> Stmt<'a> {
        let mut sql = format!(
            "SELECT s.created_at, s.expires_at, {}, f.value FROM {} s LEFT JOIN {} f ON f.session_pk = s.pk",
            B::NAME_BYTES, self.names.sessions, self.names.fields
        );
        let mut args: Vec<Arg<'a>> = Vec::with_capacity(skip.len() + 3);
        if !skip.is_empty() {
            sql.push_str(" AND f.name NOT IN (");
            placeholders(&mut sql, skip.len());
            sql.push(')');
            args.extend(skip.iter().map(|s| Arg::Text(s)));
        }
        sql.push_str(" WHERE s.token_hash = ? AND s.expires_at > ? AND s.created_at > ?");
        args.extend([
            Arg::Bytes(key.as_bytes()),
            Arg::Int(at.now),
            Arg::Int(at.created_after),
        ]);
        Stmt { sql, args }
    }

    fn upsert_stmt<'a>(
        &self,
        key: &'a StoreKey,
        fields: &'a [(&'static str, Vec<u8>)],
        at: Validity,
    ) -> Stmt<'a> {
        let mut sql = format!(
            "INSERT INTO {} (session_pk, name, value) SELECT s.pk, v.name, v.value FROM {} s CROSS JOIN (",
            self.names.fields, self.names.sessions
        );
        let mut args = Vec::with_capacity(fields.len() * 2 + 3);
        for (i, (name, value)) in fields.iter().enumerate() {
            sql.push_str(if i == 0 {
                "SELECT ? AS name, ? AS value"
            } else {
                " UNION ALL SELECT ?, ?"
            });
            args.push(Arg::Text(name));
            args.push(Arg::Bytes(value));
        }
        let _ = write!(
            sql,
            ") v WHERE s.token_hash = ? AND s.expires_at > ? AND s.created_at > ? {}",
            B::UPSERT
        );
        args.extend([
            Arg::Bytes(key.as_bytes()),
            Arg::Int(at.now),
            Arg::Int(at.created_after),
        ]);
        Stmt { sql, args }
    }

    fn remove_stmt<'a>(&self, key: &'a StoreKey, names: &'a [&'static str]) -> Stmt<'a> {
        let mut sql = format!(
            "DELETE FROM {} WHERE session_pk = (SELECT pk FROM {} WHERE token_hash = ?) AND name IN (",
            self.names.fields, self.names.sessions
        );
        placeholders(&mut sql, names.len());
        sql.push(')');
        let mut args = vec![Arg::Bytes(key.as_bytes())];
        args.extend(names.iter().map(|n| Arg::Text(n)));
        Stmt { sql, args }
    }

    fn expiry_stmt<'a>(&self, key: &'a StoreKey, update: ExpiryUpdate, at: Validity) -> Stmt<'a> {
        let (set, t) = match update {
            ExpiryUpdate::Extend(t) => (format!("{}(expires_at, ?)", B::GREATEST), t),
            ExpiryUpdate::Set(t) => ("?".to_string(), t),
        };
        Stmt {
            sql: format!(
                "UPDATE {} SET expires_at = {set} WHERE token_hash = ? AND expires_at > ? AND created_at > ?",
                self.names.sessions
            ),
            args: vec![
                Arg::Int(t),
                Arg::Bytes(key.as_bytes()),
                Arg::Int(at.now),
                Arg::Int(at.created_after),
            ],
        }
    }

    /// Runs a write, retrying it whole on deadlock / busy errors.
    async fn write(&self, stmts: &[Stmt<'_>], first_must_match: bool) -> Result<Affected> {
        let mut attempt = 0;
        loop {
            for _ in stmts {
                self.counters.statement();
            }
            match self.backend.execute(stmts, first_must_match).await {
                Ok(affected) => return Ok(affected),
                Err(e) if B::classify(&e) == ErrorClass::Retry && attempt < RETRIES => {
                    attempt += 1;
                    tracing::debug!(error = %e, attempt, "session write hit a deadlock or lock timeout; retrying");
                    tokio::time::sleep(RETRY_BASE * 2u32.pow(attempt)).await;
                }
                Err(e) => return Err(map_error::<B>(e)),
            }
        }
    }

    async fn read<T, F>(&self, run: F) -> Result<T>
    where
        F: std::future::Future<Output = Result<T, sqlx::Error>>,
    {
        self.counters.statement();
        run.await.map_err(|e| map_error::<B>(e))
    }
}

/// Maps a driver error to the crate's error, keeping it as the source.
pub(crate) fn map_error<B: Backend>(error: sqlx::Error) -> Error {
    let class = B::classify(&error);
    let source: BoxError = Box::new(error);
    match class {
        ErrorClass::Unavailable | ErrorClass::Retry => Error::Unavailable(source),
        ErrorClass::Duplicate | ErrorClass::Other => Error::Backend(source),
    }
}

#[async_trait]
impl<B: Backend> SessionStore for SqlStore<B> {
    async fn load(&self, key: &StoreKey, skip: &[&str], at: Validity) -> Result<Option<Record>> {
        let stmt = self.load_stmt(key, skip, at);
        let rows = self.read(self.backend.fetch_session(&stmt)).await?;
        let mut rows = rows.into_iter();
        let Some((created_at, expires_at, name, value)) = rows.next() else {
            return Ok(None);
        };
        let mut fields = Vec::with_capacity(rows.len() + 1);
        let first = name.zip(value);
        fields.extend(first);
        fields.extend(rows.filter_map(|(_, _, name, value)| name.zip(value)));
        Ok(Some(Record {
            created_at,
            expires_at,
            fields,
        }))
    }

    async fn load_field(
        &self,
        key: &StoreKey,
        name: &str,
        at: Validity,
    ) -> Result<Option<Vec<u8>>> {
        let stmt = Stmt {
            sql: format!(
                "SELECT f.value FROM {} s JOIN {} f ON f.session_pk = s.pk AND f.name = ? WHERE s.token_hash = ? AND s.expires_at > ? AND s.created_at > ?",
                self.names.sessions, self.names.fields
            ),
            args: vec![
                Arg::Text(name),
                Arg::Bytes(key.as_bytes()),
                Arg::Int(at.now),
                Arg::Int(at.created_after),
            ],
        };
        self.read(self.backend.fetch_bytes(&stmt)).await
    }

    async fn create(
        &self,
        key: &StoreKey,
        created_at: Timestamp,
        expires_at: Timestamp,
        fields: &[(&'static str, Vec<u8>)],
    ) -> Result<bool> {
        let insert = Stmt {
            sql: format!(
                "INSERT INTO {} (token_hash, created_at, expires_at) VALUES (?, ?, ?)",
                self.names.sessions
            ),
            args: vec![
                Arg::Bytes(key.as_bytes()),
                Arg::Int(created_at),
                Arg::Int(expires_at),
            ],
        };
        match self.write(std::slice::from_ref(&insert), false).await {
            Ok(_) => {}
            Err(Error::Backend(source))
                if source
                    .downcast_ref::<sqlx::Error>()
                    .is_some_and(|e| B::classify(e) == ErrorClass::Duplicate) =>
            {
                return Ok(false)
            }
            Err(e) => return Err(e),
        }
        if !fields.is_empty() {
            // The session row is committed and its token is known to no one
            // else yet, so the fields go in with the same upsert a save uses.
            let at = Validity {
                now: created_at - 1,
                created_after: created_at - 1,
            };
            self.write(&[self.upsert_stmt(key, fields, at)], false)
                .await?;
            self.counters
                .wrote(fields.iter().map(|(_, v)| v.as_slice()));
        }
        Ok(true)
    }

    async fn save(&self, key: &StoreKey, changes: &Changes, at: Validity) -> Result<Saved> {
        // The expiry update goes first: it takes the session row's exclusive
        // lock before the upsert takes its shared one. The other order lets
        // two saves of one session each hold the shared lock and wait for
        // the exclusive one: a deadlock (seen in the benchmark's 1-session
        // `bump` run). Both statements match only a live session, so
        // whichever comes first tells whether the session is gone.
        let mut stmts = Vec::with_capacity(3);
        if let Some(update) = changes.expiry {
            stmts.push(self.expiry_stmt(key, update, at));
        }
        if !changes.upsert.is_empty() {
            stmts.push(self.upsert_stmt(key, &changes.upsert, at));
        }
        if !changes.remove.is_empty() {
            stmts.push(self.remove_stmt(key, &changes.remove));
        }
        if stmts.is_empty() {
            return Ok(Saved::Saved);
        }
        // The first statement is an upsert or an expiry update, both of which
        // match only a live session; a removal alone cannot resurrect
        // anything, so it need not match.
        let must_match = !changes.upsert.is_empty() || changes.expiry.is_some();
        match self.write(&stmts, must_match).await? {
            None => Ok(Saved::Gone),
            Some(_) => {
                self.counters
                    .wrote(changes.upsert.iter().map(|(_, v)| v.as_slice()));
                Ok(Saved::Saved)
            }
        }
    }

    async fn rename(&self, from: &StoreKey, to: &StoreKey, at: Validity) -> Result<bool> {
        let stmt = Stmt {
            sql: format!(
                "UPDATE {} SET token_hash = ? WHERE token_hash = ? AND expires_at > ? AND created_at > ?",
                self.names.sessions
            ),
            args: vec![
                Arg::Bytes(to.as_bytes()),
                Arg::Bytes(from.as_bytes()),
                Arg::Int(at.now),
                Arg::Int(at.created_after),
            ],
        };
        Ok(self.write(&[stmt], true).await?.is_some())
    }

    async fn destroy(&self, key: &StoreKey) -> Result<()> {
        let stmt = Stmt {
            sql: format!("DELETE FROM {} WHERE token_hash = ?", self.names.sessions),
            args: vec![Arg::Bytes(key.as_bytes())],
        };
        self.write(&[stmt], false).await.map(drop)
    }

    async fn delete_expired(&self, now: Timestamp, batch: u32) -> Result<u64> {
        // Pick a batch by the expiry index, then delete by primary key,
        // re-checking the expiry in case a request touched a session in
        // between. Small batches keep locks short; several instances may run
        // this at once, at worst deleting the same rows twice (a no-op).
        let select = Stmt {
            sql: format!(
                "SELECT pk FROM {} WHERE expires_at <= ? ORDER BY expires_at LIMIT ?",
                self.names.sessions
            ),
            args: vec![Arg::Int(now), Arg::Int(i64::from(batch))],
        };
        let pks = self.read(self.backend.fetch_ints(&select)).await?;
        if pks.is_empty() {
            return Ok(0);
        }
        let mut sql = format!("DELETE FROM {} WHERE pk IN (", self.names.sessions);
        placeholders(&mut sql, pks.len());
        sql.push_str(") AND expires_at <= ?");
        let mut args: Vec<Arg<'_>> = pks.iter().map(|pk| Arg::Int(*pk)).collect();
        args.push(Arg::Int(now));
        let affected = self.write(&[Stmt { sql, args }], false).await?;
        Ok(affected.and_then(|a| a.first().copied()).unwrap_or(0))
    }

    fn stats(&self) -> StoreStats {
        self.counters.snapshot()
    }
}
