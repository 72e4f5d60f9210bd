//! The MySQL / MariaDB store (feature `mysql`): the production store.
//!
//! Everything but the driver calls and error codes is shared with SQLite in
//! [`SqlStore`]; read its docs for the layout and the statements.
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

use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlDatabaseError, MySqlPool};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::store::sql::pool::ConnPool;
use crate::store::sql::{is_timeout, sqlx_backend, Conns, ErrorClass, SqlStore};

/// MySQL error numbers the store reacts to.
mod codes {
    /// `ER_LOCK_WAIT_TIMEOUT`.
    pub const LOCK_WAIT_TIMEOUT: u16 = 1205;
    /// `ER_LOCK_DEADLOCK`; Galera reports certification conflicts with it too.
    pub const DEADLOCK: u16 = 1213;
    /// TiDB's write conflict of an optimistic transaction (`ErrWriteConflict`,
    /// from TiDB's documentation; not tested here, no TiDB server can be
    /// installed where this crate is tested). Retrying the write is what
    /// TiDB asks for.
    pub const TIDB_WRITE_CONFLICT: u16 = 9007;
    /// `ER_CON_COUNT_ERROR`: too many connections.
    pub const TOO_MANY_CONNECTIONS: u16 = 1040;
    /// `ER_SERVER_SHUTDOWN`.
    pub const SERVER_SHUTDOWN: u16 = 1053;
    /// `ER_UNKNOWN_COM_ERROR`, which Galera returns while a node has no quorum.
    pub const NO_QUORUM: u16 = 1047;
    /// `ER_QUERY_INTERRUPTED`.
    pub const QUERY_INTERRUPTED: u16 = 1317;
    /// `ER_STATEMENT_TIMEOUT` (MariaDB): `max_statement_time` ended the
    /// statement, which the server rolled back.
    pub const STATEMENT_TIMEOUT: u16 = 1969;
    /// `ER_OPTION_PREVENTS_STATEMENT`: `--read-only` (a replica, a node
    /// being failed over).
    pub const READ_ONLY_OPTION: u16 = 1290;
    /// `ER_READ_ONLY_MODE`.
    pub const READ_ONLY_MODE: u16 = 1836;
    /// `ER_CLIENT_INTERACTION_TIMEOUT` (MySQL 8): the server closed an idle
    /// connection.
    pub const IDLE_DISCONNECT: u16 = 4031;
    /// `ER_NO_REFERENCED_ROW_2`: the field upsert found its session row
    /// deleted (READ COMMITTED lets a concurrent destroy slip in between
    /// the upsert's read and its insert).
    pub const NO_REFERENCED_ROW: u16 = 1452;
}

/// The session store on MySQL or MariaDB.
pub type MySqlStore = SqlStore<MySqlBackend>;

/// The MySQL half of [`MySqlStore`]: its connections and the dialect.
#[derive(Debug)]
pub struct MySqlBackend {
    conns: Conns<sqlx::mysql::MySql, MySqlConnection>,
}

impl SqlStore<MySqlBackend> {
    /// A store on a pool shared with the app (built with the same sqlx,
    /// re-exported as `session_rocket::sqlx`). Tables are not created: call
    /// [`create_tables`](Self::create_tables).
    ///
    /// sqlx's pool pings each connection when it is returned (one extra
    /// round trip per statement); a store of its own from
    /// [`connect`](Self::connect) does not.
    pub fn new(pool: MySqlPool) -> Self {
        SqlStore::from_backend(MySqlBackend {
            conns: Conns::Shared(pool),
        })
    }

    /// Opens connections of its own to `url` (at most `max_connections`,
    /// waiting at most `connect_timeout` for one) in the store's own
    /// pool, and checks the server answers.
    ///
    /// That pool sends nothing but the store's statements: no ping before
    /// a connection is handed out and none when it comes back (sqlx's pool
    /// pings on every return). A connection idle for 30 s is pinged before
    /// reuse, and one that failed for want of the server is dropped.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the server cannot be reached;
    /// [`Error::Config`] for a bad URL or prefix.
    pub async fn connect(url: &str, config: &Config) -> Result<Self> {
        let options: MySqlConnectOptions = url
            .parse()
            .map_err(|e| Error::config(format!("invalid MySQL `url`: {e}")))?;
        let pool = ConnPool::<MySqlConnection>::open(options, config).await?;
        let server = Server::of(&pool).await?;
        let causal = config.causal_reads && server.galera;
        if causal {
            tracing::info!(
                "the session store's server is a Galera cluster node: its statements wait for \
                 writes committed on other nodes first (`wsrep_sync_wait = 7`)"
            );
        }
        if let Some(set) = session_settings(config.statement_timeout(), server.mariadb, causal) {
            pool.set_init(Box::new(move |conn| {
                let set = set.clone();
                Box::pin(async move {
                    use sqlx::Executor as _;
                    conn.execute(set.as_str()).await.map(drop)
                })
            }));
            // The connection that answered the questions above predates
            // the settings.
            pool.purge_idle();
        }
        SqlStore::from_backend(MySqlBackend {
            conns: Conns::Own(pool),
        })
        .with_statement_timeout(config.statement_timeout())
        .with_table_prefix(&config.table_prefix)
    }
}

/// What the store needs to know of the server it connected to.
struct Server {
    /// A Galera cluster node (`wsrep_on = ON`; MySQL has no such variable,
    /// a plain MariaDB has it `OFF`).
    galera: bool,
    /// MariaDB (`max_statement_time`), not MySQL.
    mariadb: bool,
}

impl Server {
    async fn of(pool: &ConnPool<MySqlConnection>) -> Result<Server> {
        let mut conn = pool
            .acquire()
            .await
            .map_err(|e| Error::Unavailable(Box::new(e)))?;
        let version: (String,) = sqlx::query_as("SELECT VERSION()")
            .fetch_one(&mut *conn)
            .await
            .map_err(|e| Error::Backend(Box::new(e)))?;
        let wsrep: Option<(String, String)> = sqlx::query_as("SHOW VARIABLES LIKE 'wsrep_on'")
            .fetch_optional(&mut *conn)
            .await
            .map_err(|e| Error::Backend(Box::new(e)))?;
        conn.finish();
        Ok(Server {
            galera: wsrep.is_some_and(|(_, value)| value.eq_ignore_ascii_case("ON")),
            mariadb: version.0.to_ascii_lowercase().contains("mariadb"),
        })
    }
}

/// The `SET SESSION` every connection of the store runs once, if any:
/// - the statement timeout as the server's own limit, so that a write the
///   store stopped waiting for is ended by the server too, not committed
///   after the request answered 503: `innodb_lock_wait_timeout` (whole
///   seconds, rounded up; MySQL and MariaDB) bounds lock waits, and on
///   MariaDB `max_statement_time` bounds any statement (MySQL's
///   `max_execution_time` covers `SELECT` only);
/// - on a Galera node, `wsrep_sync_wait = 7`: reads (1), updates and
///   deletes (2) and inserts (4) wait for writes committed on other nodes.
///   The store's writes read too (the upsert's `SELECT` checks the session
///   is alive, a destroy finds it by its hash), so all three: with reads
///   alone, a write on one node could miss a session created on another a
///   moment before and start a new one.
fn session_settings(
    timeout: Option<std::time::Duration>,
    mariadb: bool,
    galera: bool,
) -> Option<String> {
    let mut set = Vec::new();
    if let Some(timeout) = timeout {
        let secs = timeout.as_secs_f64();
        set.push(format!(
            "innodb_lock_wait_timeout = {}",
            secs.ceil().max(1.0)
        ));
        if mariadb {
            set.push(format!("max_statement_time = {secs:.3}"));
        }
    }
    if galera {
        set.push("wsrep_sync_wait = 7".to_string());
    }
    (!set.is_empty()).then(|| format!("SET SESSION {}", set.join(", ")))
}

fn classify(error: &sqlx::Error) -> ErrorClass {
    match error {
        // The store's own wait ran out: the server may still be running
        // the write (until its own limit), so it is not replayed.
        e if is_timeout(e) => ErrorClass::Unavailable,
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => ErrorClass::Lost,
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => ErrorClass::Unavailable,
        sqlx::Error::Database(db) => {
            if db.is_unique_violation() {
                return ErrorClass::Duplicate;
            }
            match db
                .try_downcast_ref::<MySqlDatabaseError>()
                .map(|e| e.number())
            {
                Some(codes::DEADLOCK | codes::LOCK_WAIT_TIMEOUT | codes::TIDB_WRITE_CONFLICT) => {
                    ErrorClass::Retry
                }
                Some(codes::NO_REFERENCED_ROW) => ErrorClass::Gone,
                Some(codes::SERVER_SHUTDOWN | codes::IDLE_DISCONNECT) => ErrorClass::Lost,
                Some(
                    codes::TOO_MANY_CONNECTIONS
                    | codes::NO_QUORUM
                    | codes::QUERY_INTERRUPTED
                    | codes::STATEMENT_TIMEOUT
                    | codes::READ_ONLY_OPTION
                    | codes::READ_ONLY_MODE,
                ) => ErrorClass::Unavailable,
                _ => ErrorClass::Other,
            }
        }
        _ => ErrorClass::Other,
    }
}

/// Opens the store for a `mysql://` URL (see [`open`](super::open)).
pub(crate) fn open_url<'a>(url: &'a str, config: &'a Config) -> super::Opening<'a> {
    Box::pin(async move {
        let store: std::sync::Arc<dyn super::SessionStore> =
            std::sync::Arc::new(MySqlStore::connect(url, config).await?);
        Ok(store)
    })
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
    least: "LEAST",
    // `ascii_bin` columns arrive as binary.
    name_bytes: "f.name",
    columns: "SELECT CAST(column_name AS BINARY) FROM information_schema.columns \
              WHERE table_schema = DATABASE() AND table_name = ? ORDER BY ordinal_position",
    max_packet: Some("SELECT CAST(@@max_allowed_packet AS SIGNED)"),
    // A row per field: see `PACK_FIELDS` and BENCHMARKS.md.
    pack_fields: None,
    // Keys start at 1 and stay far below 2^63.
    last_insert_id: |r: &sqlx::mysql::MySqlQueryResult| {
        i64::try_from(r.last_insert_id()).unwrap_or(i64::MAX)
    },
    insert_returning: "",
    dialect_sql: crate::store::sql::shared_sql,
    version_type: "BIGINT NULL",
    writers_type: "VARBINARY(128) NULL",
    // Binary strings: CONCAT, LEFT and INSTR count bytes.
    push_writer: "LEFT(CONCAT(?, COALESCE(writers, '')), 128)",
    has_writer: "INSTR(f.writers, ?) > 0",
    schema: include_str!("schema.sql"),
    json: crate::store::sql::JsonDialect::MySql,
    data_type: "LONGTEXT CHARACTER SET utf8mb4 NULL",
    classify: classify,
}
