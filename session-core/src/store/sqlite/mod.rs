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

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqliteSynchronous,
};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::store::sql::pool::ConnPool;
use crate::store::sql::{sqlx_backend, Conns, ErrorClass, SqlStore};

/// SQLite primary result codes the store reacts to.
mod codes {
    /// `SQLITE_BUSY`: another connection holds the write lock past the busy
    /// timeout.
    pub const BUSY: i64 = 5;
    /// `SQLITE_LOCKED`.
    pub const LOCKED: i64 = 6;
    /// `SQLITE_CANTOPEN`.
    pub const CANTOPEN: i64 = 14;
    /// `SQLITE_CONSTRAINT_FOREIGNKEY` (an extended code): the field upsert
    /// found its session row deleted.
    pub const CONSTRAINT_FOREIGNKEY: i64 = 787;
}

/// How long a writer waits for the lock before SQLite reports BUSY.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The session store on a SQLite file.
pub type SqliteStore = SqlStore<SqliteBackend>;

/// The SQLite half of [`SqliteStore`]: its connections and the dialect.
#[derive(Debug)]
pub struct SqliteBackend {
    conns: Conns<sqlx::sqlite::Sqlite, SqliteConnection>,
}

impl SqlStore<SqliteBackend> {
    /// A store on a pool shared with the app. Tables are not created: call
    /// [`create_tables`](Self::create_tables). Foreign keys must be on for
    /// its connections (sqlx's default), or destroy leaves field rows behind.
    pub fn new(pool: SqlitePool) -> Self {
        SqlStore::from_backend(SqliteBackend {
            conns: Conns::Shared(pool),
        })
    }

    /// Opens (and creates, if missing) the database file named by `url`
    /// (`sqlite://path/sessions.db`), in WAL mode with a busy timeout and
    /// foreign keys on, with connections in the store's own
    /// pool.
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
        let pool = ConnPool::<SqliteConnection>::open(options, config).await?;
        SqlStore::from_backend(SqliteBackend {
            conns: Conns::Own(pool),
        })
        .with_statement_timeout(config.statement_timeout())
        .with_table_prefix(&config.table_prefix)
    }
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
            let code = db.code().and_then(|c| c.parse::<i64>().ok());
            if code == Some(codes::CONSTRAINT_FOREIGNKEY) {
                return ErrorClass::Gone;
            }
            // Extended codes carry the primary code in their low byte.
            match code.map(|c| c & 0xff) {
                Some(codes::BUSY | codes::LOCKED) => ErrorClass::Retry,
                Some(codes::CANTOPEN) => ErrorClass::Unavailable,
                _ => ErrorClass::Other,
            }
        }
        _ => ErrorClass::Other,
    }
}

/// Opens the store for a `sqlite://` URL (see [`open`](super::open)).
pub(crate) fn open_url<'a>(url: &'a str, config: &'a Config) -> super::Opening<'a> {
    Box::pin(async move {
        let store: std::sync::Arc<dyn super::SessionStore> =
            std::sync::Arc::new(SqliteStore::connect(url, config).await?);
        Ok(store)
    })
}

sqlx_backend! {
    backend: SqliteBackend,
    database: sqlx::sqlite::Sqlite,
    connection: sqlx::sqlite::SqliteConnection,
    arguments: sqlx::sqlite::SqliteArguments<'q>,
    name: "sqlite",
    upsert: "ON CONFLICT (session_pk, name) DO UPDATE SET value = excluded.value",
    greatest: "MAX",
    least: "MIN",
    name_bytes: "CAST(f.name AS BLOB)",
    columns: "SELECT CAST(name AS BLOB) FROM pragma_table_info(?) ORDER BY cid",
    max_packet: None,
    // One packed row per load: measured 2026-11-29, see `PACK_FIELDS`.
    // `octet_length` counts bytes whatever the value's type: the store
    // binds every value as a BLOB, but a value edited by hand into TEXT
    // (say, holding a NUL byte) must still pack to what it holds, so one
    // bad value costs its field a decode fallback, not the session a 500
    // (`length` counts a TEXT's characters up to its first NUL). `||` and
    // `group_concat` copy the bytes as they are. On the column itself,
    // `octet_length` reads the length from the record header, as `length`
    // of a BLOB does (a CAST would read a large value twice).
    pack_fields: Some(
        "group_concat(octet_length(f.name) || ',' || octet_length(f.value) || coalesce(',' || f.version, '') || ':' || f.name || f.value, '')"
    ),
    last_insert_id: sqlx::sqlite::SqliteQueryResult::last_insert_rowid,
    insert_returning: "",
    dialect_sql: crate::store::sql::shared_sql,
    version_type: "INTEGER",
    writers_type: "BLOB",
    // In-process: a reply is never lost, so only the last writer is kept
    // (the column is there for the shared statements).
    push_writer: "?",
    has_writer: "f.writers = ?",
    schema: include_str!("schema.sql"),
    json: crate::store::sql::JsonDialect::Sqlite,
    data_type: "TEXT",
    classify: classify,
}
