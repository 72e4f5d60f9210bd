//! The SQL stores: one implementation, [`SqlStore`], over a small driver
//! contract per database. This module holds the store and its reads;
//! `save` what a login and a request's changes send, `writes` how a write
//! reaches the server (retries, lost replies, time limits), `statements`
//! the SQL text, `names` the tables, `layout` the check of existing tables.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;

use crate::error::{BoxError, Error, Result};
use crate::store::{
    Changes, Counters, Ended, IndexTag, NewSession, PreviousKey, Record, Replaced, Saved,
    SessionIndexes, SessionStore, StoreStats, Timestamp, Validity,
};
use crate::token::StoreKey;

mod backend;
mod doc;
mod driver;
mod layout;
mod load;
#[cfg(all(test, feature = "mysql", feature = "postgres"))]
mod lost_reply;
mod names;
mod packed;
pub(crate) mod pool;
mod save;
mod statements;
#[cfg(all(test, feature = "mysql", feature = "postgres", feature = "sqlite"))]
mod upgrade;
mod writes;

pub(crate) use backend::{is_timeout, timed_out};
pub use backend::{
    Affected, Arg, Backend, Conns, ErrorClass, JsonDialect, SessionRow, Stmt, Taken,
};
pub(crate) use driver::{shared_sql, sqlx_backend};
use load::Want;
pub use names::TableNames;
pub(crate) use packed::unpack;
use statements::Statements;

/// Bytes of a write statement that are not field values (its text, names,
/// hashes and timestamps), kept free under the server's packet size.
const PACKET_OVERHEAD: i64 = 64 * 1024;

/// The statement timeout of a store built without a configuration.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// What the SQL stores share: the layout, the statements, retries, counters
/// and cleanup. Each dialect ([`mysql`](super::mysql), [`sqlite`](super::sqlite))
/// keeps only its driver calls, its conflict clause and its error codes.
///
/// # Layout
/// - `{prefix}sessions(pk, token_hash UNIQUE, created_at, expires_at,
///   idle_timeout, persistent, data)`: `token_hash` is the SHA-256 of the
///   cookie's token, so the table holds no usable token. The internal `pk`
///   never changes, so regenerate is one `UPDATE` of `token_hash` and field
///   rows are never rewritten. `data` is the session's document: its small
///   fields (values of at most 1 KB) as one JSON object of base64 values,
///   so reading a session is one lookup in one table;
/// - `{prefix}session_fields(session_pk, name, value, version, writers,
///   PRIMARY KEY(session_pk, name))`, with a foreign key to `sessions` `ON
///   DELETE CASCADE`: the fields too large for the document, and the
///   versioned ones (their version and last writers beside them), each
///   marked `0` in the document; destroy is one `DELETE`;
/// - `{prefix}session_previous(token_hash, session_pk, valid_until)`: the
///   hashes a regenerate replaced, which reach their session for a logout
///   only, during a short grace (every one of several regenerates in a
///   row).
///
/// # Statements
/// - load: one `SELECT` of the session's row by `token_hash`, with the
///   expiry checks in its `WHERE`; when the fields the request needs
///   include some this store has found in rows of their own, the same
///   statement joins those rows (by name). A document that marks a needed
///   field the statement did not ask for costs a second statement, once:
///   the store learns the name;
/// - write: one `UPDATE` of the session's row that moves its expiry and
///   edits its document on the server, key by key (`JSON_SET` /
///   `JSON_REMOVE` on MySQL and SQLite, `||` and `-` on PostgreSQL), so
///   two requests that change different fields of one session both keep
///   their change, and only the changed fields are sent. It matches the row
///   only while the session is alive, so a save to a destroyed session
///   writes nothing and reports it: a logout is never undone, without locks
///   (`GET_LOCK` and `FOR UPDATE` are node-local on a multi-primary
///   cluster). A large field is also upserted into its own row
///   (`INSERT … SELECT … ON DUPLICATE KEY UPDATE` / `ON CONFLICT`, the
///   `SELECT` finding a live session by hash);
/// - a save that needs more than one statement (a regenerate, a large or
///   versioned field, removed fields) runs them in one short transaction,
///   all or nothing, the session row's update first. Every write is
///   retried whole on deadlock and lock-wait timeout (MySQL 1213/1205,
///   SQLite BUSY). A foreign-key miss (the session deleted between an
///   upsert's read and its insert, possible under READ COMMITTED) reports
///   the session gone, the same outcome as under REPEATABLE READ.
///
/// # Tables of an earlier release
/// A `sessions` table without `data` gets the column at launch
/// (`create_tables = true`; otherwise launch names the statement). Its
/// rows keep working: a row without a document has all its fields in
/// rows, and its first write marks them in a new document (on the
/// server, in the same statement), so nothing stored is lost.
///
/// # Sharing a database with other software
/// [`create_tables`](SqlStore::create_tables) and [`check`](SqlStore::check)
/// first look at tables that already exist under the store's names: a
/// `sessions` table of another library (express-mysql-session, Laravel,
/// Rails and Django all use that name) is reported by name with the columns
/// found, and the fix (`table_prefix`), instead of failing later with a
/// foreign-key error.
///
/// Use it through [`MySqlStore`](super::mysql::MySqlStore) or
/// [`SqliteStore`](super::sqlite::SqliteStore).
pub struct SqlStore<B> {
    pub(crate) backend: B,
    names: TableNames,
    sql: Statements,
    counters: Counters,
    timeout: Option<Duration>,
    /// The fields this store has found in rows of their own (see
    /// [`doc`]): a load that may need one asks for its row in the same
    /// statement, any other reads the session's row alone. Only a hint,
    /// learned from the documents loads return: a field a document marks
    /// and the load did not fetch is fetched by a second statement, and
    /// learned.
    in_rows: std::sync::RwLock<Vec<String>>,
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

impl<B: Backend> SqlStore<B> {
    pub(crate) fn from_backend(backend: B) -> Self {
        let names = TableNames::new("").unwrap_or_else(|_| unreachable!("empty prefix is valid"));
        SqlStore {
            backend,
            sql: Statements::new::<B>(&names),
            names,
            counters: Counters::default(),
            timeout: Some(DEFAULT_TIMEOUT),
            in_rows: std::sync::RwLock::default(),
        }
    }

    /// Bounds every statement (a whole transaction counts as one): past
    /// it, the connection is closed (the server rolls back) and the call
    /// fails with [`Error::Unavailable`], so a server that stopped
    /// answering costs a bounded 503 instead of a request stuck until TCP
    /// gives up. `None` waits forever. Default 5 s (`statement_timeout`).
    pub fn with_statement_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }

    /// Uses `{prefix}sessions` and `{prefix}session_fields`.
    ///
    /// # Errors
    /// [`Error::Config`] unless the prefix is ASCII letters, digits and `_`.
    pub fn with_table_prefix(mut self, prefix: &str) -> Result<Self> {
        self.names = TableNames::new(prefix)?;
        self.sql = Statements::new::<B>(&self.names);
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
    /// EXISTS`; never drops or alters anything), after checking that tables
    /// already there under these names have the store's layout.
    ///
    /// # Errors
    /// [`Error::Config`] naming a table of another layout, the columns found
    /// and the fix; the driver's error, e.g. when the user lacks the CREATE
    /// privilege (then run [`schema_sql`](Self::schema_sql) once and set
    /// `create_tables = false`).
    pub async fn create_tables(&self) -> Result<()> {
        self.check_layout(true).await?;
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
        self.backend
            .run_ddl(self.sql.drop())
            .await
            .map_err(|e| map_error::<B>(e))
    }

    /// Idle connections in the store's own pool (`None` on a pool shared
    /// with the app): for tests and metrics.
    pub fn idle_connections(&self) -> Option<usize> {
        self.backend.idle_connections()
    }

    /// Checks that both tables exist with the store's layout and are
    /// readable.
    ///
    /// # Errors
    /// [`Error::Config`] for a table of another layout; the driver's error:
    /// unreachable server, missing table, no privilege.
    pub async fn check(&self) -> Result<()> {
        self.check_layout(false).await?;
        self.backend
            .fetch_ints(&self.sql.probe())
            .await
            .map(drop)
            .map_err(|e| map_error::<B>(e))
    }

    /// Runs a read, once more on a fresh connection if the connection was
    /// lost.
    async fn read<T, F, Fut>(&self, run: F) -> Result<T>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, sqlx::Error>>,
    {
        let mut reconnected = false;
        loop {
            self.counters.statement();
            match self.bounded(run()).await? {
                Err(e) if B::classify(&e) == ErrorClass::Lost && !reconnected => {
                    reconnected = true;
                    self.lost(&e);
                }
                result => return result.map_err(|e| map_error::<B>(e)),
            }
        }
    }

    /// Refuses limits the server would not take: a request's changes go in
    /// one statement, which must fit the server's packet size (MySQL's
    /// `max_allowed_packet`; a larger one makes the server drop the
    /// connection).
    async fn check_limits(&self, config: &crate::config::Config) -> Result<()> {
        let Some(query) = B::MAX_PACKET else {
            return Ok(());
        };
        let stmt = Stmt {
            sql: query.into(),
            args: Vec::new(),
        };
        let packet = self
            .backend
            .fetch_ints(&stmt)
            .await
            .map_err(|e| map_error::<B>(e))?
            .first()
            .copied()
            .unwrap_or(i64::MAX);
        // Room for the statement's text, names and hashes around the values.
        let room = usize::try_from(packet.saturating_sub(PACKET_OVERHEAD)).unwrap_or(0);
        // Small fields travel as base64 (4 bytes for every 3).
        let sent = |bytes: usize| bytes.saturating_add(2) / 3 * 4;
        if sent(config.max_session_bytes) > room || sent(config.max_field_bytes) > room {
            return Err(Error::config(format!(
                "`max_session_bytes` ({}) and `max_field_bytes` ({}) must fit the server's \
                 `max_allowed_packet` ({packet} bytes, less {PACKET_OVERHEAD} for the statement): \
                 a request's changes are written in one statement, and a larger one makes the \
                 server drop the connection (values of at most 1 KB travel as base64, 4 bytes \
                 for every 3). Lower them to at most {}, or raise \
                 `max_allowed_packet` on the server",
                config.max_session_bytes,
                config.max_field_bytes,
                room / 4 * 3
            )));
        }
        Ok(())
    }

    /// Runs `call` within the statement timeout.
    async fn bounded<T>(&self, call: impl std::future::Future<Output = T>) -> Result<T> {
        super::within(self.timeout, call).await
    }
}

/// Maps a driver error to the crate's error, keeping it as the source.
pub(crate) fn map_error<B: Backend>(error: sqlx::Error) -> Error {
    let class = B::classify(&error);
    let source: BoxError = Box::new(error);
    match class {
        ErrorClass::Unavailable | ErrorClass::Lost | ErrorClass::Retry => {
            Error::Unavailable(source)
        }
        ErrorClass::Duplicate | ErrorClass::Gone | ErrorClass::Other => Error::Backend(source),
    }
}

#[async_trait]
impl<B: Backend> SessionIndexes for SqlStore<B> {
    async fn find(&self, name: &str, tags: &[IndexTag], at: Validity) -> Result<Vec<StoreKey>> {
        if tags.is_empty() {
            return Ok(Vec::new());
        }
        let stmt = self.sql.find(name, tags, at);
        let hashes = self.read(|| self.backend.fetch_bytes(&stmt)).await?;
        Ok(hashes
            .into_iter()
            .filter_map(|h| <[u8; 32]>::try_from(h).ok().map(StoreKey::from_bytes))
            .collect())
    }

    async fn destroy_found(
        &self,
        name: &str,
        tags: &[IndexTag],
        except: Option<&StoreKey>,
    ) -> Result<Vec<StoreKey>> {
        if tags.is_empty() {
            return Ok(Vec::new());
        }
        // No token hashes to 32 zero bytes.
        let except = except.map_or([0; 32], |k| *k.as_bytes());
        let claim = self.sql.destroy_found(name, tags, &except);
        let taken = self.take(&claim, &|pks| self.sql.delete_pks(pks)).await?;
        Ok(taken
            .into_iter()
            .filter_map(|(hash, _)| key_of(&hash))
            .collect())
    }

    async fn destroy_one(&self, name: &str, tags: &[IndexTag], key: &StoreKey) -> Result<bool> {
        if tags.is_empty() {
            return Ok(false);
        }
        let affected = self
            .write(&[self.sql.destroy_one(name, tags, key)], 0)
            .await?;
        Ok(affected.and_then(|a| a.first().copied()).unwrap_or(0) > 0)
    }
}

#[async_trait]
impl<B: Backend> SessionStore for SqlStore<B> {
    async fn load(&self, key: &StoreKey, skip: &[&str], at: Validity) -> Result<Option<Record>> {
        self.fetch(key, Want::AllBut(skip), at).await
    }

    async fn load_only(
        &self,
        key: &StoreKey,
        only: &[&str],
        at: Validity,
    ) -> Result<Option<Record>> {
        self.fetch(key, Want::Only(only), at).await
    }

    async fn load_field(
        &self,
        key: &StoreKey,
        name: &str,
        at: Validity,
    ) -> Result<Option<Vec<u8>>> {
        self.fetch_field(key, name, at).await
    }

    async fn create(
        &self,
        key: &StoreKey,
        session: NewSession,
        fields: &[(&'static str, Vec<u8>)],
    ) -> Result<bool> {
        self.insert_session(key, session, fields).await
    }

    async fn save(&self, key: &StoreKey, changes: &Changes, at: Validity) -> Result<Saved> {
        self.save_changes(key, changes, at).await
    }

    async fn previous(&self, key: &StoreKey, now: Timestamp) -> Result<Option<PreviousKey>> {
        let rows = self
            .read(|| async move {
                self.backend
                    .fetch_replaced(&self.sql.previous(key, now))
                    .await
            })
            .await?;
        let Some((hash, until, rotated)) = rows.into_iter().next() else {
            return Ok(None);
        };
        let reason = if rotated.unwrap_or(0) != 0 {
            Replaced::Rotated
        } else {
            Replaced::Regenerated
        };
        let within_grace = until > now;
        if !within_grace && reason == Replaced::Regenerated {
            return Ok(None);
        }
        Ok(key_of(&hash).map(|current| PreviousKey {
            current,
            reason,
            within_grace,
        }))
    }

    async fn destroy(&self, key: &StoreKey, now: Timestamp) -> Result<bool> {
        let affected = self.write(&[self.sql.destroy(key, now)], 0).await?;
        Ok(affected.and_then(|a| a.first().copied()).unwrap_or(0) > 0)
    }

    async fn delete_expired(&self, at: Validity, batch: u32) -> Result<Vec<Ended>> {
        // Claim a batch of dead sessions and delete them in one step that
        // reports what it deleted (see `claim_expired`): two instances
        // cleaning up at once never both report one session. Without
        // `RETURNING` (MySQL), the batch is picked first without locks,
        // then re-read with locks and deleted in one transaction, so locks
        // stay on the picked rows only.
        let picked = if self.sql.returning() {
            Vec::new()
        } else {
            self.read(|| async move { self.backend.fetch_ints(&self.sql.expired(at, batch)).await })
                .await?
        };
        let taken = if self.sql.returning() || !picked.is_empty() {
            let claim = self.sql.claim_expired(at, batch, &picked);
            self.take(&claim, &|pks| self.sql.delete(pks, at)).await?
        } else {
            Vec::new()
        };
        let last = if self.sql.returning() {
            taken.len() < batch as usize
        } else {
            picked.len() < batch as usize
        };
        if last {
            // The round's last batch: also forget the replaced keys of
            // live sessions whose grace is over (a dead session's went
            // with it).
            self.write(&[self.sql.prune_previous(at.now)], 0).await?;
        }
        Ok(taken
            .into_iter()
            .filter_map(|(hash, data)| {
                Some(Ended {
                    key: key_of(&hash)?,
                    fields: doc_fields(data.as_deref()),
                })
            })
            .collect())
    }

    async fn count_live(&self, at: Validity) -> Result<Option<u64>> {
        let count = self
            .read(|| async move { self.backend.fetch_ints(&self.sql.count_live(at)).await })
            .await?;
        Ok(count.first().and_then(|n| u64::try_from(*n).ok()))
    }

    fn name(&self) -> &'static str {
        B::NAME
    }

    fn indexes(&self) -> Option<&dyn SessionIndexes> {
        Some(self)
    }

    fn stats(&self) -> StoreStats {
        self.counters.snapshot()
    }

    async fn prepare(&self, config: &crate::config::Config) -> Result<()> {
        if config.create_tables {
            self.create_tables().await?;
        } else {
            self.check().await?;
        }
        self.check_limits(config).await
    }

    async fn close(&self) {
        self.backend.close().await;
    }
}

/// A key read back from the `token_hash` column.
fn key_of(hash: &[u8]) -> Option<StoreKey> {
    Some(StoreKey::from_bytes(hash.try_into().ok()?))
}

/// The values a session row's `data` document holds (what an ended
/// session's events are described from); none when it is unreadable.
fn doc_fields(data: Option<&str>) -> Vec<(String, Vec<u8>)> {
    let Some(doc) = data.and_then(|d| doc::Doc::parse(d).ok()) else {
        return Vec::new();
    };
    doc.0
        .iter()
        .filter_map(|(name, entry)| match entry {
            doc::Entry::Value(value) => Some((name.to_string(), doc::decode(name, value).ok()?)),
            _ => None,
        })
        .collect()
}
