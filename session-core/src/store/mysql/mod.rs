//! The MySQL / MariaDB store (feature `mysql`): the production store.
//!
//! Everything but the driver calls and error codes is shared with SQLite in
//! [`sql`](super::sql); read its docs for the layout and the statements.
//!
//! ```no_run
//! # async fn run() -> session_core::Result<()> {
//! use session_core::{Config, store::mysql::MySqlStore};
//!
//! let config = Config { url: Some("mysql://root@127.0.0.1/test".into()), ..Config::default() };
//! let store = MySqlStore::connect("mysql://root@127.0.0.1/test", &config).await?;
//! store.create_tables().await?;
//! # Ok(()) }
//! ```

use std::time::Duration;

use sqlx::mysql::{MySqlDatabaseError, MySqlPool, MySqlPoolOptions};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::store::sql::{sqlx_backend, ErrorClass, SqlStore};

/// MySQL error numbers the store reacts to.
mod codes {
    /// `ER_LOCK_WAIT_TIMEOUT`.
    pub const LOCK_WAIT_TIMEOUT: u16 = 1205;
    /// `ER_LOCK_DEADLOCK`; Galera reports certification conflicts with it too.
    pub const DEADLOCK: u16 = 1213;
    /// `ER_CON_COUNT_ERROR`: too many connections.
    pub const TOO_MANY_CONNECTIONS: u16 = 1040;
    /// `ER_SERVER_SHUTDOWN`.
    pub const SERVER_SHUTDOWN: u16 = 1053;
    /// `ER_UNKNOWN_COM_ERROR`, which Galera returns while a node has no quorum.
    pub const NO_QUORUM: u16 = 1047;
    /// `ER_QUERY_INTERRUPTED`.
    pub const QUERY_INTERRUPTED: u16 = 1317;
}

/// The session store on MySQL or MariaDB.
pub type MySqlStore = SqlStore<MySqlBackend>;

/// The MySQL half of [`MySqlStore`]: a pool and the dialect.
#[derive(Debug, Clone)]
pub struct MySqlBackend {
    pool: MySqlPool,
}

impl SqlStore<MySqlBackend> {
    /// A store on an existing pool (share your app's pool; the same sqlx
    /// version is re-exported as `session_rocket::sqlx`). Tables are not
    /// created: call [`create_tables`](Self::create_tables).
    pub fn new(pool: MySqlPool) -> Self {
        SqlStore::from_backend(MySqlBackend { pool })
    }

    /// Opens a pool of its own from `url`, sized and timed by `config`
    /// (`max_connections`, `connect_timeout`, `table_prefix`), and checks
    /// the server answers.
    ///
    /// The pool does not ping the server before handing out a connection
    /// (`test_before_acquire(false)`): that ping would be one more round trip
    /// in front of every statement. A dead connection is reported by the
    /// statement itself, which answers one request with 503 while the pool
    /// replaces the connection. sqlx 0.8 still pings each connection when it
    /// goes back to the pool; that ping runs after the statement, in a task
    /// of its own, so it delays no response, but it is one more command for
    /// the server per statement (measured in `BENCHMARKS.md`; no sqlx option
    /// turns it off).
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the server cannot be reached;
    /// [`Error::Config`] for a bad URL or prefix.
    pub async fn connect(url: &str, config: &Config) -> Result<Self> {
        let options: sqlx::mysql::MySqlConnectOptions = url
            .parse()
            .map_err(|e| Error::config(format!("invalid MySQL `url`: {e}")))?;
        let pool = MySqlPoolOptions::new()
            .max_connections(config.max_connections)
            .acquire_timeout(Duration::from_secs(config.connect_timeout))
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .map_err(|e| Error::Unavailable(Box::new(e)))?;
        Self::new(pool).with_table_prefix(&config.table_prefix)
    }

    /// The pool (to share it, or to close it at shutdown).
    pub fn pool(&self) -> &MySqlPool {
        &self.backend.pool
    }
}

fn classify(error: &sqlx::Error) -> ErrorClass {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => ErrorClass::Unavailable,
        sqlx::Error::Database(db) => {
            if db.is_unique_violation() {
                return ErrorClass::Duplicate;
            }
            match db
                .try_downcast_ref::<MySqlDatabaseError>()
                .map(|e| e.number())
            {
                Some(codes::DEADLOCK | codes::LOCK_WAIT_TIMEOUT) => ErrorClass::Retry,
                Some(
                    codes::TOO_MANY_CONNECTIONS
                    | codes::SERVER_SHUTDOWN
                    | codes::NO_QUORUM
                    | codes::QUERY_INTERRUPTED,
                ) => ErrorClass::Unavailable,
                _ => ErrorClass::Other,
            }
        }
        _ => ErrorClass::Other,
    }
}

sqlx_backend! {
    backend: MySqlBackend,
    database: sqlx::mysql::MySql,
    connection: sqlx::mysql::MySqlConnection,
    arguments: sqlx::mysql::MySqlArguments,
    name: "mysql",
    // `v.value` names the derived table's column: portable between MySQL 8
    // (where `VALUES(col)` is deprecated) and MariaDB.
    upsert: "ON DUPLICATE KEY UPDATE value = v.value",
    greatest: "GREATEST",
    // `ascii_bin` columns arrive as binary.
    name_bytes: "f.name",
    schema: include_str!("schema.sql"),
    classify: classify,
}
