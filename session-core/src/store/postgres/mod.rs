//! The PostgreSQL store (feature `postgres`).
//!
//! The MySQL layout and statements ([`SqlStore`]), with `ON CONFLICT`
//! upserts, `BYTEA` values and `RETURNING` for a new session's key; the
//! statement counts are MySQL's. Statements are written once with `?` and
//! backquoted names and turned into PostgreSQL's `$1` and double quotes
//! here. Everything holds under READ COMMITTED, PostgreSQL's default: every
//! write finds its session by key and checks it is alive in the same
//! statement, and a foreign-key miss (a session deleted between the two)
//! reports the session gone.
//!
//! ```no_run
//! # async fn run() -> session_core::Result<()> {
//! use session_core::{Config, store::postgres::PgStore};
//!
//! let store = PgStore::connect("postgres://root@127.0.0.1/test", &Config::default()).await?;
//! store.create_tables().await?;
//! # Ok(()) }
//! ```

use std::borrow::Cow;

use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::store::sql::pool::ConnPool;
use crate::store::sql::{is_timeout, sqlx_backend, Conns, ErrorClass, SqlStore};

/// The session store on PostgreSQL.
pub type PgStore = SqlStore<PgBackend>;

/// The PostgreSQL half of [`PgStore`]: its connections and the dialect.
#[derive(Debug)]
pub struct PgBackend {
    conns: Conns<sqlx::postgres::Postgres, PgConnection>,
}

impl SqlStore<PgBackend> {
    /// A store on a pool shared with the app (built with the same sqlx,
    /// re-exported as `session_rocket::sqlx`). Tables are not created:
    /// call [`create_tables`](Self::create_tables).
    pub fn new(pool: PgPool) -> Self {
        SqlStore::from_backend(PgBackend {
            conns: Conns::Shared(pool),
        })
    }

    /// Opens connections of its own to `url` (at most `max_connections`,
    /// waiting at most `connect_timeout` for one) and checks the server
    /// answers; see [`MySqlStore::connect`](super::mysql::MySqlStore::connect)
    /// for the pool.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the server cannot be reached;
    /// [`Error::Config`] for a bad URL or prefix.
    pub async fn connect(url: &str, config: &Config) -> Result<Self> {
        let mut options: PgConnectOptions = url
            .parse()
            .map_err(|e| Error::config(format!("invalid PostgreSQL `url`: {e}")))?;
        // The statement timeout as the server's own limit, sent with the
        // connection's startup (no extra round trip): a write the store
        // stopped waiting for is cancelled and rolled back by the server,
        // never committed after the request answered 503.
        if let Some(timeout) = config.statement_timeout() {
            let ms = timeout.as_millis().to_string();
            options = options.options([("statement_timeout", &ms), ("lock_timeout", &ms)]);
        }
        let pool = ConnPool::<PgConnection>::open(options, config).await?;
        SqlStore::from_backend(PgBackend {
            conns: Conns::Own(pool),
        })
        .with_statement_timeout(config.statement_timeout())
        .with_table_prefix(&config.table_prefix)
    }
}

/// The shared statement text in PostgreSQL's dialect: `?` becomes `$1`,
/// `$2`, … and a backquoted name a double-quoted one. The shared text has
/// neither character inside a string literal.
fn dialect_sql(sql: &str) -> Cow<'_, str> {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    for c in sql.chars() {
        match c {
            '?' => {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
            }
            '`' => out.push('"'),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
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
            if db.is_foreign_key_violation() {
                return ErrorClass::Gone;
            }
            match db.code().as_deref() {
                // deadlock_detected, serialization_failure,
                // lock_not_available
                Some("40P01" | "40001" | "55P03") => ErrorClass::Retry,
                // admin_shutdown, crash_shutdown
                Some("57P01" | "57P02") => ErrorClass::Lost,
                // cannot_connect_now, too_many_connections,
                // query_canceled, read_only_sql_transaction
                Some("57P03" | "53300" | "57014" | "25006") => ErrorClass::Unavailable,
                _ => ErrorClass::Other,
            }
        }
        _ => ErrorClass::Other,
    }
}

/// Opens the store for a `postgres://` URL (see [`open`](super::open)).
pub(crate) fn open_url<'a>(url: &'a str, config: &'a Config) -> super::Opening<'a> {
    Box::pin(async move {
        let store: std::sync::Arc<dyn super::SessionStore> =
            std::sync::Arc::new(PgStore::connect(url, config).await?);
        Ok(store)
    })
}

sqlx_backend! {
    backend: PgBackend,
    database: sqlx::postgres::Postgres,
    connection: PgConnection,
    arguments: sqlx::postgres::PgArguments,
    name: "postgres",
    upsert: "ON CONFLICT (session_pk, name) DO UPDATE SET value = excluded.value",
    greatest: "GREATEST",
    least: "LEAST",
    // `TEXT` arrives as bytes this way, as from the other dialects.
    name_bytes: "convert_to(f.name, 'UTF8')",
    columns: "SELECT convert_to(column_name::text, 'UTF8') FROM information_schema.columns \
              WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position",
    max_packet: None,
    // A row per field, as on MySQL.
    pack_fields: None,
    // Unused: the key comes back through `RETURNING`.
    last_insert_id: |_: &sqlx::postgres::PgQueryResult| 0,
    insert_returning: " RETURNING pk",
    dialect_sql: dialect_sql,
    version_type: "BIGINT NULL",
    writers_type: "BYTEA NULL",
    push_writer: "substring(? || COALESCE(writers, ''::bytea) from 1 for 128)",
    has_writer: "position(? in f.writers) > 0",
    schema: include_str!("schema.sql"),
    json: crate::store::sql::JsonDialect::Postgres,
    data_type: "JSONB NULL",
    classify: classify,
}

#[cfg(test)]
mod tests {
    #[test]
    fn placeholders_and_names_become_postgres_ones() {
        assert_eq!(
            super::dialect_sql("SELECT `a` FROM `t` WHERE x = ? AND y IN (?, ?)"),
            "SELECT \"a\" FROM \"t\" WHERE x = $1 AND y IN ($2, $3)"
        );
    }
}
