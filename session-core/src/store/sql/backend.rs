//! The driver contract of the SQL stores: what a database must provide for
//! [`SqlStore`](super::SqlStore) to run on it.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;

use super::pool;

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
    /// A string (field and table names).
    Text(&'a str),
    /// Bytes (hashes, field values).
    Bytes(&'a [u8]),
    /// A nullable flag.
    Flag(Option<bool>),
}

/// One statement with its arguments.
#[derive(Debug)]
pub struct Stmt<'a> {
    /// The SQL text, `?` placeholders: borrowed from the statements built
    /// once per store, or built for a variable number of arguments.
    pub sql: std::borrow::Cow<'a, str>,
    /// The arguments, in placeholder order.
    pub args: Vec<Arg<'a>>,
}

/// How a driver error should be handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Deadlock, lock-wait timeout, busy database: retry the transaction.
    Retry,
    /// The connection is gone (reset, closed by the server, a restart or a
    /// failover): the statement is retried once on a fresh connection, then
    /// it is a 503.
    Lost,
    /// The server cannot serve the statement now (unreachable, read-only,
    /// too many connections, no quorum) or the pool timed out: 503.
    Unavailable,
    /// A unique key was violated.
    Duplicate,
    /// A foreign key found no session row: the session was deleted between
    /// the statement's read and its insert (READ COMMITTED). The save
    /// reports the session gone, exactly as under REPEATABLE READ.
    Gone,
    /// Anything else: 500.
    Other,
}

/// The error of a call that outlived its `limit` (see
/// [`Backend::execute`]): an I/O error of kind `TimedOut`, which every
/// dialect classifies as [`ErrorClass::Unavailable`], never as a lost
/// connection to replay on: the server may still be running the write
/// until its own time limit ends it.
pub(crate) fn timed_out(limit: Duration) -> sqlx::Error {
    sqlx::Error::Io(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!(
            "the session store did not answer within {} ms",
            limit.as_millis()
        ),
    ))
}

/// Whether `error` is [`timed_out`]'s.
pub(crate) fn is_timeout(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Io(e) if e.kind() == std::io::ErrorKind::TimedOut)
}

/// A rows-affected count per statement, or `None` when the batch stopped
/// early because its first statement matched nothing.
pub type Affected = Option<Vec<u64>>;

/// How a database edits the JSON document of a session's row (its small
/// fields, see [`SqlStore`](super::SqlStore)'s layout): set and remove keys
/// in place, on the server, so two requests that change different fields
/// of one session both keep their change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonDialect {
    /// `JSON_SET` / `JSON_REMOVE` with `$."name"` paths on a `LONGTEXT`
    /// (MySQL 5.7+, MariaDB 10.2+).
    MySql,
    /// `json_set` / `json_remove` with `$."name"` paths on a `TEXT`
    /// (SQLite 3.38+, or earlier with JSON1).
    Sqlite,
    /// `||` and `-` on a `JSONB`, by key (PostgreSQL 9.5+).
    Postgres,
}

/// One row of the load query: the session's timestamps, its row's
/// document of small fields, and one field row (none when the load asked
/// for none or the session has none).
#[derive(Debug)]
pub struct SessionRow {
    /// `created_at`.
    pub created_at: i64,
    /// `expires_at`.
    pub expires_at: i64,
    /// `idle_timeout`.
    pub idle_timeout: i64,
    /// `persistent`.
    pub persistent: Option<bool>,
    /// `data`: the JSON document of the fields kept in the session's row
    /// (`None` for a row written before the column existed).
    pub data: Option<String>,
    /// The field's name and bytes.
    pub field: Option<(String, Vec<u8>)>,
    /// The field's version, when it has one (a versioned field).
    pub version: Option<i64>,
}

/// A session a claim deleted: its `token_hash` and `data` document.
pub type Taken = (Vec<u8>, Option<String>);

/// The driver half of a SQL store: the few calls that differ between
/// databases. Everything else is [`SqlStore`](super::SqlStore).
#[async_trait]
pub trait Backend: fmt::Debug + Send + Sync + 'static {
    /// The dialect's name, for logs.
    const NAME: &'static str;
    /// The conflict clause that turns the field insert into an upsert.
    const UPSERT: &'static str;
    /// The functions returning the larger and the smaller of two values.
    const GREATEST: &'static str;
    /// See [`GREATEST`](Self::GREATEST).
    const LEAST: &'static str;
    /// `f.name` as a byte string (MySQL reports an `ascii_bin` column as
    /// binary already; SQLite needs a cast), so one decoder serves both.
    const NAME_BYTES: &'static str;
    /// A query listing a table's column names as byte strings, with the
    /// table name as its one argument; no rows when the table is missing.
    const COLUMNS: &'static str;
    /// The table DDL with the default names (`sessions`, `session_fields`).
    const SCHEMA: &'static str;
    /// How a load that asks for field rows (the fields kept apart from
    /// the session row's document) returns them. `None`: one row per field
    /// (a join). `Some(aggregate)`: one row, whose last column packs every
    /// such field with this aggregate over `f`, each as
    /// `<name bytes>,<value bytes>[,<version>]:<name><value>` (see
    /// `packed::unpack`).
    /// Chosen per database by measurement (BENCHMARKS.md): through sqlx,
    /// SQLite pays a handoff between threads and a value copy under a
    /// global lock for every row, so one packed row reads faster than
    /// several; on MariaDB the packed subquery costs four times the join
    /// (ninth run).
    const PACK_FIELDS: Option<&'static str>;
    /// The `version` column's type, for adding it to an older table.
    const VERSION_TYPE: &'static str;
    /// The `writers` column's type, for adding it to an older table.
    const WRITERS_TYPE: &'static str;
    /// The new value of a field's `writers` column (its last writers'
    /// nonces, newest first) with the nonce of this write as its one `?`.
    const PUSH_WRITER: &'static str;
    /// A condition true when `f.writers` holds the nonce given as its one
    /// `?`.
    const HAS_WRITER: &'static str;
    /// What follows a session row's `INSERT` for the database to return
    /// its new key (`" RETURNING pk"`); empty when the driver reports it
    /// (`last_insert_id`).
    const INSERT_RETURNING: &'static str;
    /// How the database edits the `data` document of a session row.
    const JSON: JsonDialect;
    /// The `data` column's type, for adding it to an older table.
    const DATA_TYPE: &'static str;
    /// A query returning the largest statement the server accepts, in
    /// bytes; `None` when there is no such limit.
    const MAX_PACKET: Option<&'static str>;

    /// Runs statements: one alone in autocommit, several in one
    /// transaction. If any of the first `must_match` statements affects no
    /// row, the transaction is rolled back and `None` returned. A failed
    /// transaction is rolled back before the connection is reused.
    ///
    /// `limit` bounds the wait for the server once a connection is held
    /// (not the wait for one): past it, the connection is closed and the
    /// call fails with an I/O error of kind `TimedOut`.
    async fn execute(
        &self,
        stmts: &[Stmt<'_>],
        must_match: usize,
        limit: Option<Duration>,
    ) -> Result<Affected, sqlx::Error>;

    /// Runs one `INSERT` in autocommit and returns the new row's
    /// auto-increment key; `limit` as for [`execute`](Self::execute).
    async fn insert(&self, stmt: &Stmt<'_>, limit: Option<Duration>) -> Result<i64, sqlx::Error>;

    /// Whether `DELETE … RETURNING` exists (PostgreSQL, SQLite 3.35+,
    /// not MySQL): claims are then one statement (see [`take`](Self::take)).
    const DELETE_RETURNING: bool = !matches!(Self::JSON, JsonDialect::MySql);

    /// Deletes the sessions `claim` names and returns each one's
    /// `(token_hash, data)`, so that of several callers racing, each
    /// session is returned by the one whose statement deleted it. Where
    /// the database has `DELETE … RETURNING` (`DELETE_RETURNING`),
    /// `claim` is that one `DELETE … RETURNING token_hash, data`; else it
    /// is a locking `SELECT token_hash, data, pk … FOR UPDATE`, run in
    /// one transaction with `delete` of the keys it returned. `limit` as
    /// for [`execute`](Self::execute).
    async fn take(
        &self,
        claim: &Stmt<'_>,
        delete: &(dyn for<'p> Fn(&'p [i64]) -> Stmt<'static> + Send + Sync),
        limit: Option<Duration>,
    ) -> Result<Vec<Taken>, sqlx::Error>;

    /// The rows of the load query.
    async fn fetch_session(&self, stmt: &Stmt<'_>) -> Result<Vec<SessionRow>, sqlx::Error>;

    /// The single bytes column of every row.
    async fn fetch_bytes(&self, stmt: &Stmt<'_>) -> Result<Vec<Vec<u8>>, sqlx::Error>;

    /// A single integer column.
    async fn fetch_ints(&self, stmt: &Stmt<'_>) -> Result<Vec<i64>, sqlx::Error>;

    /// The rows of the previous-key lookup: a hash, an integer and a
    /// nullable integer.
    async fn fetch_replaced(
        &self,
        stmt: &Stmt<'_>,
    ) -> Result<Vec<(Vec<u8>, i64, Option<i64>)>, sqlx::Error>;

    /// Runs DDL, statement by statement.
    async fn run_ddl(&self, statements: &[String]) -> Result<(), sqlx::Error>;

    /// Closes the connections the store opened itself.
    async fn close(&self);

    /// Idle connections in the store's own pool; `None` for a shared pool.
    fn idle_connections(&self) -> Option<usize>;

    /// Drops the idle connections of the store's own pool (see
    /// [`ErrorClass::Lost`]); nothing for a shared pool.
    fn purge_idle(&self);

    /// Classifies a driver error.
    fn classify(error: &sqlx::Error) -> ErrorClass;
}
