//! The SQL stores: one implementation, [`SqlStore`], over a small driver
//! contract per database. (A little over 350 lines: most of it is
//! `SqlStore`'s documentation of the layout and the statements.)

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;

use crate::error::{BoxError, Error, Result};
use crate::store::{
    Changes, Counters, IndexTag, NewSession, Record, Saved, SessionStore, StoreStats, Timestamp,
    Validity,
};
use crate::token::StoreKey;

mod backend;
mod driver;
mod layout;
#[cfg(all(test, feature = "mysql", feature = "postgres"))]
mod lost_reply;
pub(crate) mod pool;
mod statements;

pub(crate) use backend::{is_timeout, timed_out};
pub use backend::{Affected, Arg, Backend, Conns, ErrorClass, SessionRow, Stmt};
pub(crate) use driver::{shared_sql, sqlx_backend};
pub(crate) use statements::unpack;
pub use statements::TableNames;
use statements::{Nonce, Statements};

/// How a write is retried on deadlock, busy or (on a Galera cluster)
/// certification-conflict errors: after pauses drawn at random below 4, 8,
/// … 256 ms (so writers that collided do not come back in step), for as
/// long as the statement timeout lasts (5 s without one). A fixed number
/// ran out under contention: 32 requests bumping one session through two
/// Galera nodes lost 0.7–1.4 % of them to 503s after 5 to 7 retries in the
/// benchmark. A lock wait the server ended at the statement timeout is
/// not retried: the timeout has passed.
const RETRY_BASE: Duration = Duration::from_millis(2);
const RETRY_MAX_PAUSE: Duration = Duration::from_millis(256);

/// Bytes of a write statement that are not field values (its text, names,
/// hashes and timestamps), kept free under the server's packet size.
const PACKET_OVERHEAD: i64 = 64 * 1024;

/// How many times a write that must not land twice is sent when each
/// time its connection is lost and it is found not applied.
const SEND_ROUNDS: u32 = 3;

/// How much longer than the statement timeout a write waits for the
/// server's answer (see `write_limit`): the server's own limit ends a
/// statement that long after it began, and its error or answer travels
/// back within this margin.
const WRITE_MARGIN: Duration = Duration::from_millis(250);

/// The statement timeout of a store built without a configuration.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// What the SQL stores share: the layout, the statements, retries, counters
/// and cleanup. Each dialect ([`mysql`](super::mysql), [`sqlite`](super::sqlite))
/// keeps only its driver calls, its conflict clause and its error codes.
///
/// # Layout
/// - `{prefix}sessions(pk, token_hash UNIQUE, created_at, expires_at,
///   idle_timeout, persistent)`: `token_hash` is the SHA-256 of the
///   cookie's token, so the table holds no usable token. The internal `pk`
///   never changes, so regenerate is one `UPDATE` of `token_hash` and field
///   rows are never rewritten;
/// - `{prefix}session_previous(token_hash, session_pk, valid_until)`: the
///   hashes a regenerate replaced, which reach their session for a logout
///   only, during a short grace (every one of several regenerates in a
///   row);
/// - `{prefix}session_fields(session_pk, name, value, PRIMARY KEY(session_pk, name))`,
///   with a foreign key to `sessions` `ON DELETE CASCADE`: destroy is one
///   `DELETE`.
///
/// # Statements
/// - load: one `SELECT` joining both tables, skipping deferred fields, with
///   the expiry checks in its `WHERE`;
/// - write: one `INSERT … SELECT … ON DUPLICATE KEY UPDATE` (MySQL) /
///   `ON CONFLICT … DO UPDATE` (SQLite) for every changed field. The `SELECT`
///   finds the session by `token_hash` and checks it is alive, so a save
///   to a destroyed session inserts nothing and reports it: a logout is never
///   undone, without locks (`GET_LOCK` and `FOR UPDATE` are node-local on a
///   multi-primary cluster);
/// - the common write, fields the request read and found stored (a `bump`),
///   is one plain `UPDATE … SET value = CASE name … END WHERE session_pk =
///   (SELECT pk … alive) AND name IN (…)` instead: InnoDB updates rows in
///   place rather than trying an insert through a derived table. It must
///   match one row per field; short of that (a field removed or the session
///   destroyed meanwhile) the upsert runs and settles it;
/// - a save that needs more than one statement (a regenerate, removed
///   fields, an expiry touch) runs them in one short transaction, all or
///   nothing. Every write is retried whole on deadlock and lock-wait timeout
///   (MySQL 1213/1205, SQLite BUSY), which per-field upserts make safe. A
///   foreign-key miss (the session deleted between the upsert's read and
///   its insert, possible under READ COMMITTED) reports the session gone,
///   the same outcome as under REPEATABLE READ.
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

    /// Runs a write that is safe to apply twice (an upsert of plain
    /// fields, a delete, an expiry touch), retrying it whole on deadlock /
    /// busy errors, and once on a fresh connection when the connection was
    /// lost (its first attempt may have been applied: harmless here). A
    /// foreign-key miss (see [`ErrorClass::Gone`]) is `Ok(None)`, like a
    /// first statement that matched nothing.
    async fn write(&self, stmts: &[Stmt<'_>], must_match: usize) -> Result<Affected> {
        let attempt = self
            .retried(stmts.len(), || {
                self.backend.execute(stmts, must_match, self.write_limit())
            })
            .await;
        attempt.result.map(Option::flatten)
    }

    /// Runs a write that must not be applied twice (a compare-and-set, a
    /// regenerate's move), as [`write`](Self::write) does; but when the
    /// connection was lost on the way (the reply to an applied write can
    /// be what was lost), and the attempt that followed did not apply,
    /// asks the server whether the lost attempt was: `landed`. Applied,
    /// the write reports success (`Some` with no counts); not applied, it
    /// reports what its last attempt found; unknown, it is
    /// [`Error::Unavailable`], never a conflict that the caller would
    /// answer by writing again.
    async fn write_once(
        &self,
        stmts: &[Stmt<'_>],
        must_match: usize,
        landed: &Landed<'_>,
    ) -> Result<Affected> {
        // A write found not applied after its replay's reply was lost too
        // is sent again: nothing of it landed, so that is safe.
        for round in 1.. {
            let attempt = self
                .retried(stmts.len(), || {
                    self.backend.execute(stmts, must_match, self.write_limit())
                })
                .await;
            if !attempt.replayed {
                return attempt.result.map(Option::flatten);
            }
            let unsure = match &attempt.result {
                Ok(Some(Some(_))) => false,
                Ok(_) => true,
                Err(e) => e.is_unavailable() || is_duplicate::<B>(e),
            };
            if !unsure {
                return attempt.result.map(Option::flatten);
            }
            match self.landed(landed).await? {
                Some(true) => {
                    tracing::info!("a session write whose reply was lost had been applied: reported as saved, not sent again");
                    self.counters.recovered();
                    return Ok(Some(Vec::new()));
                }
                Some(false) if attempt.result.is_err() && round < SEND_ROUNDS => {}
                Some(false) => return attempt.result.map(Option::flatten),
                None => {
                    return Err(Error::Unavailable(
                        "the connection was lost after a session write was sent, and whether \
                         the server applied it cannot be told any more: reported as not saved"
                            .into(),
                    ))
                }
            }
        }
        unreachable!("the loop returns by its last round")
    }

    /// Whether a write whose reply was lost was applied: `None` when that
    /// cannot be told.
    async fn landed(&self, landed: &Landed<'_>) -> Result<Option<bool>> {
        match landed {
            Landed::Never => Ok(Some(false)),
            Landed::Moved(to) => {
                let stmt = self.sql.pk_of(to);
                let pks = self.read(|| self.backend.fetch_ints(&stmt)).await?;
                Ok(Some(!pks.is_empty()))
            }
            Landed::Wrote {
                key,
                name,
                version,
                nonce,
            } => {
                let stmt = self.sql.cas_landed(key, name, *version, nonce);
                let found = self.read(|| self.backend.fetch_ints(&stmt)).await?;
                Ok(match found.first() {
                    Some(1) => Some(true),
                    Some(2) => None,
                    // Absent, or short of the version the write set.
                    _ => Some(false),
                })
            }
            Landed::Removed { key, name } => {
                let stmt = self.sql.cas_landed(key, name, 0, &Nonce([0; 8]));
                let found = self.read(|| self.backend.fetch_ints(&stmt)).await?;
                Ok(Some(found.is_empty()))
            }
        }
    }

    /// The retry policy of every write call of `statements` statements;
    /// `Ok(None)` on a foreign-key miss. `replayed`: the call was sent
    /// again after a lost connection.
    async fn retried<T, F, Fut>(&self, statements: usize, run: F) -> Attempt<T>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, sqlx::Error>>,
    {
        let mut attempt = 0;
        let mut replayed = false;
        let started = tokio::time::Instant::now();
        let budget = self.timeout.unwrap_or(DEFAULT_TIMEOUT);
        let result = loop {
            for _ in 0..statements {
                self.counters.statement();
            }
            match run().await {
                Ok(done) => break Ok(Some(done)),
                Err(e) if B::classify(&e) == ErrorClass::Retry && started.elapsed() < budget => {
                    attempt += 1;
                    self.counters.retry();
                    tracing::debug!(error = %e, attempt, "session write hit a deadlock, lock timeout or cluster conflict; retrying");
                    let window = (RETRY_BASE * 2u32.pow(attempt.min(8))).min(RETRY_MAX_PAUSE);
                    tokio::time::sleep(jittered(window)).await;
                }
                Err(e) if B::classify(&e) == ErrorClass::Lost && !replayed => {
                    replayed = true;
                    self.lost(&e);
                }
                Err(e) if B::classify(&e) == ErrorClass::Gone => break Ok(None),
                Err(e) => break Err(map_error::<B>(e)),
            }
        };
        Attempt { result, replayed }
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
        if config.max_session_bytes > room || config.max_field_bytes > room {
            return Err(Error::config(format!(
                "`max_session_bytes` ({}) and `max_field_bytes` ({}) must fit the server's \
                 `max_allowed_packet` ({packet} bytes, less {PACKET_OVERHEAD} for the statement): \
                 a request's changes are written in one statement, and a larger one makes the \
                 server drop the connection. Lower them to at most {room}, or raise \
                 `max_allowed_packet` on the server",
                config.max_session_bytes, config.max_field_bytes
            )));
        }
        Ok(())
    }

    /// A connection was lost: the idle ones went with it, most likely.
    fn lost(&self, error: &sqlx::Error) {
        tracing::warn!(%error, "session store connection lost; retrying once on a fresh connection");
        self.backend.purge_idle();
    }

    /// How long a write waits for the server once it holds a connection:
    /// the statement timeout, which the server applies to each statement
    /// itself where it can (see the dialects' `connect`), and a little
    /// more, so that a write the store gave up on was ended by the server
    /// first, not left to commit after a 503.
    fn write_limit(&self) -> Option<Duration> {
        self.timeout.map(|t| t + WRITE_MARGIN)
    }

    /// Runs `call` within the statement timeout.
    async fn bounded<T>(&self, call: impl std::future::Future<Output = T>) -> Result<T> {
        super::within(self.timeout, call).await
    }
}

/// What a write call came to, and whether it was sent more than once.
struct Attempt<T> {
    result: Result<Option<T>>,
    /// Sent again after a lost connection: the first attempt may have
    /// been applied, its reply lost.
    replayed: bool,
}

/// How to tell, after a lost reply, whether a write was applied.
enum Landed<'a> {
    /// It can be applied twice harmlessly: no need to ask.
    Never,
    /// A regenerate: applied if the session is under its new key.
    Moved(&'a StoreKey),
    /// A compare-and-set that gave field `name` version `version`, tagged
    /// with `nonce`.
    Wrote {
        key: &'a StoreKey,
        name: &'a str,
        version: u64,
        nonce: &'a Nonce,
    },
    /// A compare-and-set removal of field `name`: applied if it is gone.
    Removed { key: &'a StoreKey, name: &'a str },
}

/// Whether `error` is the driver's unique-key violation.
fn is_duplicate<B: Backend>(error: &Error) -> bool {
    matches!(error, Error::Backend(source)
        if source
            .downcast_ref::<sqlx::Error>()
            .is_some_and(|e| B::classify(e) == ErrorClass::Duplicate))
}

/// A pause drawn uniformly below `window` ("full jitter").
fn jittered(window: Duration) -> Duration {
    let mut r = [0u8; 2];
    // Not secret; on the (never seen) failure, the whole window.
    let fraction =
        getrandom::getrandom(&mut r).map_or(1.0, |()| f64::from(u16::from_le_bytes(r)) / 65536.0);
    window.mul_f64(fraction)
}

/// The session a load's rows describe; `None` for no rows.
fn record(rows: Vec<SessionRow>) -> Option<Record> {
    let first = rows.first()?;
    let (created_at, expires_at, idle_timeout, persistent) = (
        first.created_at,
        first.expires_at,
        first.idle_timeout,
        first.persistent,
    );
    let versions = rows
        .iter()
        .filter_map(|r| {
            let (name, _) = r.field.as_ref()?;
            let version = u64::try_from(r.version?).ok()?;
            Some((name.clone(), version))
        })
        .collect();
    Some(Record {
        created_at,
        expires_at,
        idle_timeout,
        persistent,
        fields: rows.into_iter().filter_map(|r| r.field).collect(),
        versions,
    })
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
impl<B: Backend> SessionStore for SqlStore<B> {
    async fn load(&self, key: &StoreKey, skip: &[&str], at: Validity) -> Result<Option<Record>> {
        let stmt = self.sql.load(key, skip, at);
        let rows = self.read(|| self.backend.fetch_session(&stmt)).await?;
        Ok(record(rows))
    }

    async fn load_field(
        &self,
        key: &StoreKey,
        name: &str,
        at: Validity,
    ) -> Result<Option<Vec<u8>>> {
        let stmt = self.sql.load_field(key, name, at);
        Ok(self
            .read(|| self.backend.fetch_bytes(&stmt))
            .await?
            .into_iter()
            .next())
    }

    async fn create(
        &self,
        key: &StoreKey,
        session: NewSession,
        fields: &[(&'static str, Vec<u8>)],
    ) -> Result<bool> {
        // Two autocommit statements, not a transaction: BEGIN and COMMIT
        // would double a login's round trips, and all a failed second
        // statement can leave is an empty session row whose token nobody
        // ever received (the request fails, so no cookie is sent); cleanup
        // deletes it when it expires. The token is known to no one else
        // yet, so the fields go in by the new row's key with a plain
        // multi-row insert: measured faster than the upsert a save uses,
        // which finds the session by token through a derived table.
        let insert = self.sql.insert(key, session);
        let attempt = self
            .retried(1, || self.backend.insert(&insert, self.write_limit()))
            .await;
        let pk = match attempt.result {
            Ok(Some(pk)) => pk,
            // No foreign key to miss: cannot happen, and would mean the
            // row is not there.
            Ok(None) => return Err(Error::Interrupted),
            // The key is taken. After a lost reply, by this very insert
            // (a 256-bit random key is taken by no one else): its row.
            Err(e) if is_duplicate::<B>(&e) && attempt.replayed => {
                let stmt = self.sql.pk_of(key);
                let pks = self.read(|| self.backend.fetch_ints(&stmt)).await?;
                match pks.first() {
                    Some(&pk) => {
                        self.counters.recovered();
                        pk
                    }
                    None => return Err(Error::Interrupted),
                }
            }
            Err(e) if is_duplicate::<B>(&e) => return Ok(false),
            Err(e) => return Err(e),
        };
        if !fields.is_empty() {
            // A foreign-key miss here means the new row went already (a
            // destroy by a key no one has yet cannot): never report the
            // fields saved when they were not. A duplicate after a lost
            // reply: the one multi-row insert was applied, whole.
            let stmt = self.sql.insert_fields(pk, fields);
            let attempt = self
                .retried(1, || {
                    self.backend
                        .execute(std::slice::from_ref(&stmt), 0, self.write_limit())
                })
                .await;
            match attempt.result {
                Ok(Some(_)) => {}
                Ok(None) => return Err(Error::Interrupted),
                Err(e) if is_duplicate::<B>(&e) && attempt.replayed => self.counters.recovered(),
                Err(e) => return Err(e),
            }
            self.counters
                .wrote(fields.iter().map(|(_, v)| v.as_slice()));
        }
        Ok(true)
    }

    async fn save(&self, key: &StoreKey, changes: &Changes, at: Validity) -> Result<Saved> {
        // The common write (a request that read the session and changed
        // fields it found) is one plain UPDATE. Anything short of one row
        // per field falls through to the general path, which creates a
        // field removed meanwhile or reports the session gone.
        let only_updates = changes.upsert_existing
            && changes.expect.is_empty()
            && changes.rename.is_none()
            && changes.expiry.is_none()
            && !changes.clear
            && changes.remove.is_empty()
            && changes.index.is_empty();
        if only_updates {
            let n = changes.upsert.len() as u64;
            let stmt = self.sql.update(key, &changes.upsert, at);
            if let Some(affected) = self.write(std::slice::from_ref(&stmt), 0).await? {
                if affected.first() == Some(&n) {
                    self.counters
                        .wrote(changes.upsert.iter().map(|(_, v)| v.as_slice()));
                    return Ok(Saved::Saved);
                }
            }
        }
        // A regenerate goes first, so everything after it names the new key.
        // The expiry update comes before the upsert: it takes the session
        // row's exclusive lock before the upsert takes its shared one. The
        // other order lets two saves of one session each hold the shared
        // lock and wait for the exclusive one: a deadlock (seen in the
        // benchmark's 1-session `bump` run). Each of the three matches only
        // a live session, so whichever comes first tells whether it is gone.
        let mut stmts = Vec::with_capacity(4 + changes.expect.len());
        let nonce = if changes.expect.is_empty() {
            Nonce([0; 8])
        } else {
            Nonce::generate()?
        };
        let mut current = key;
        if let Some(rename) = &changes.rename {
            stmts.extend(self.sql.rename(key, &rename.to, rename.previous_until, at));
            current = &rename.to;
        }
        if let Some(update) = changes.expiry {
            stmts.push(self.sql.expiry(current, update, at));
        }
        // Versioned fields: one compare-and-set each, right after the
        // statements above and before anything else, all required to
        // match one row (each also checks liveness). Under a `clear`, a
        // present field is only checked here and written after the clear.
        let value = |name: &str| {
            changes
                .upsert
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.as_slice())
        };
        for expect in &changes.expect {
            match (value(expect.name), expect.version) {
                (Some(bytes), Some(v)) if !changes.clear => {
                    stmts.push(
                        self.sql
                            .cas_update(current, expect.name, bytes, v, &nonce, at),
                    );
                }
                (Some(bytes), None) if !changes.clear => {
                    stmts.push(
                        self.sql
                            .cas_insert(current, expect.name, bytes, 1, &nonce, at),
                    );
                }
                (None, Some(v)) => {
                    let check_only = changes.clear;
                    stmts.push(self.sql.cas_delete(current, expect.name, v, at, check_only));
                }
                (Some(_), Some(v)) => {
                    stmts.push(self.sql.cas_delete(current, expect.name, v, at, true));
                }
                // Under a clear, an absent field needs no check; removing
                // an absent field is not planned.
                (_, None) => {}
            }
        }
        let checked = stmts.len();
        if changes.clear {
            if stmts.is_empty() {
                // A clear's DELETE cannot tell a dead session from an empty
                // one: check liveness first.
                stmts.push(self.sql.alive(current, at));
            }
            stmts.push(self.sql.clear(current));
            stmts.push(self.sql.index_clear(current));
            for expect in &changes.expect {
                if let Some(bytes) = value(expect.name) {
                    stmts.push(self.sql.cas_insert(
                        current,
                        expect.name,
                        bytes,
                        expect.next(),
                        &nonce,
                        at,
                    ));
                }
            }
        }
        // The unversioned fields: the versioned ones went above.
        let plain = || {
            changes
                .upsert
                .iter()
                .filter(|(n, _)| changes.expectation(n).is_none())
        };
        let has_plain = plain().next().is_some();
        if has_plain {
            stmts.push(self.sql.upsert(current, plain(), at));
        }
        let remove: Vec<&'static str> = changes
            .remove
            .iter()
            .copied()
            .filter(|n| changes.expectation(n).is_none())
            .collect();
        if !remove.is_empty() {
            stmts.push(self.sql.remove(current, &remove));
        }
        // Index entries last, the ones set first: a save of index entries
        // alone (after a create) tells by its first statement whether the
        // session is alive.
        let sets_index = changes.index.iter().any(|u| u.tag.is_some());
        for update in &changes.index {
            if let Some(tag) = &update.tag {
                stmts.push(self.sql.index_set(current, update.name, tag, at));
            }
        }
        for update in changes.index.iter().filter(|u| u.tag.is_none()) {
            stmts.push(self.sql.index_unset(current, update.name));
        }
        if stmts.is_empty() {
            return Ok(Saved::Saved);
        }
        // A removal alone cannot resurrect anything, so it need not match;
        // otherwise the first statement tells whether the session is alive,
        // and every compare-and-set must match.
        let must_match = if changes.rename.is_some()
            || changes.clear
            || has_plain
            || changes.expiry.is_some()
            || sets_index
        {
            checked.max(1)
        } else {
            checked
        };
        // How to tell, should the reply be lost, whether this save was
        // applied: it is all or nothing, so one of its writes tells.
        let landed = match (&changes.rename, changes.expect.first()) {
            (Some(rename), _) => Landed::Moved(&rename.to),
            (None, Some(expect)) => match value(expect.name) {
                Some(_) => Landed::Wrote {
                    key: current,
                    name: expect.name,
                    version: expect.next(),
                    nonce: &nonce,
                },
                None => Landed::Removed {
                    key: current,
                    name: expect.name,
                },
            },
            (None, None) => Landed::Never,
        };
        let written = match self.write_once(&stmts, must_match, &landed).await {
            Ok(written) => written,
            // A compare-and-set insert found the field there: it appeared
            // since this request loaded.
            Err(e) if !changes.expect.is_empty() && is_duplicate::<B>(&e) => {
                return Ok(Saved::Conflict)
            }
            Err(e) => return Err(e),
        };
        match written {
            Some(_) => {
                self.counters
                    .wrote(changes.upsert.iter().map(|(_, v)| v.as_slice()));
                Ok(Saved::Saved)
            }
            // Only on this failure path: a version moved, or the session
            // went (was its key just regenerated away?).
            None => {
                if !changes.expect.is_empty()
                    && self.write(&[self.sql.alive(key, at)], 1).await?.is_some()
                {
                    return Ok(Saved::Conflict);
                }
                Ok(if self.is_previous_key(key, at.now).await? {
                    Saved::Moved
                } else {
                    Saved::Gone
                })
            }
        }
    }

    async fn is_previous_key(&self, key: &StoreKey, now: Timestamp) -> Result<bool> {
        let pks = self
            .read(|| async move { self.backend.fetch_ints(&self.sql.moved(key, now)).await })
            .await?;
        Ok(!pks.is_empty())
    }

    async fn destroy(&self, key: &StoreKey, now: Timestamp) -> Result<()> {
        self.write(&[self.sql.destroy(key, now)], 0).await.map(drop)
    }

    async fn delete_expired(&self, at: Validity, batch: u32) -> Result<u64> {
        // Pick a batch of dead sessions, then delete them by primary key,
        // re-checking they are dead in case a request touched one in
        // between. Small batches keep locks short; several instances may
        // run this at once, at worst deleting the same rows twice (a no-op).
        let pks = self
            .read(|| async move { self.backend.fetch_ints(&self.sql.expired(at, batch)).await })
            .await?;
        if pks.len() < batch as usize {
            // The round's last batch: also forget the replaced keys of
            // live sessions whose grace is over (a dead session's went
            // with it).
            self.write(&[self.sql.prune_previous(at.now)], 0).await?;
        }
        if pks.is_empty() {
            return Ok(0);
        }
        let affected = self.write(&[self.sql.delete(&pks, at)], 0).await?;
        Ok(affected.and_then(|a| a.first().copied()).unwrap_or(0))
    }

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
    ) -> Result<u64> {
        if tags.is_empty() {
            return Ok(0);
        }
        // No token hashes to 32 zero bytes.
        let except = except.map_or([0; 32], |k| *k.as_bytes());
        let stmt = self.sql.destroy_found(name, tags, &except);
        let affected = self.write(std::slice::from_ref(&stmt), 0).await?;
        Ok(affected.and_then(|a| a.first().copied()).unwrap_or(0))
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
