//! The connection pool the SQL stores open for themselves.
//!
//! Why not `sqlx::Pool`: sqlx 0.8 pings every connection when it goes back
//! to the pool (`PoolConnection`'s drop spawns `return_to_pool`, which calls
//! `ping()` whatever `test_before_acquire` says). For a session store that
//! is one extra round trip and server command per statement: the benchmark
//! counted exactly one `COM_PING` per statement, on every route (see
//! `BENCHMARKS.md`). This pool returns a connection as it is and tests it
//! only when it has sat idle long enough for the server to have dropped it.
//!
//! What it keeps from sqlx's pool: a bound on open connections
//! (`max_connections`), a bounded wait for one (`connect_timeout`, reported
//! as `PoolTimedOut`, which the stores map to 503), lazy opening, and
//! dropping a connection that failed. A lease dropped before its work
//! finished (the request was cancelled mid-statement) drops its connection
//! too: closing it makes the server roll back at once, where a connection
//! parked in the pool would keep a cancelled transaction's locks until its
//! next use.

use std::ops::{Deref, DerefMut};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use sqlx::Connection;
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::Instant;

/// A connection idle this long is pinged before it is handed out: servers
/// close idle connections (`wait_timeout`, 8 h by default; proxies much
/// sooner), and a dead one would fail a request with 503.
const TEST_AFTER_IDLE: Duration = Duration::from_secs(30);

/// What a new connection runs before its first use (`SET SESSION …`).
pub type Init<C> = Box<
    dyn for<'c> Fn(
            &'c mut C,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<(), sqlx::Error>> + Send + 'c>,
        > + Send
        + Sync,
>;

/// Connections to one database, opened on demand.
pub struct ConnPool<C: Connection> {
    options: <C as Connection>::Options,
    idle: Mutex<Vec<(C, Instant)>>,
    permits: Semaphore,
    acquire_timeout: Duration,
    init: std::sync::OnceLock<Init<C>>,
}

impl<C: Connection> std::fmt::Debug for ConnPool<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnPool")
            .field("idle", &self.idle_count())
            .field("available", &self.permits.available_permits())
            .finish()
    }
}

impl<C: Connection> ConnPool<C> {
    /// A pool of at most `max_connections`, opening none yet.
    pub fn new(
        options: <C as Connection>::Options,
        max_connections: u32,
        acquire_timeout: Duration,
    ) -> Self {
        ConnPool {
            options,
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(max_connections.max(1) as usize),
            acquire_timeout,
            init: std::sync::OnceLock::new(),
        }
    }

    /// Sets what every new connection runs before its first use, and drops
    /// the idle ones opened without it. Set once, at startup.
    pub fn set_init(&self, init: Init<C>) {
        let _ = self.init.set(init);
        self.purge_idle();
    }

    /// A pool sized and timed by `config` (`max_connections`,
    /// `connect_timeout`), after one real round trip: an unreachable
    /// database is reported now, not on the first request. The first
    /// connection stays open for reuse.
    ///
    /// # Errors
    /// [`Error::Unavailable`](crate::Error::Unavailable) with the driver's
    /// error.
    pub async fn open(
        options: <C as Connection>::Options,
        config: &crate::Config,
    ) -> crate::error::Result<Self> {
        let pool = Self::new(
            options,
            config.max_connections,
            Duration::from_secs(config.connect_timeout),
        );
        pool.acquire()
            .await
            .map_err(|e| crate::error::Error::Unavailable(Box::new(e)))?
            .finish();
        Ok(pool)
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<(C, Instant)>> {
        // Every critical section is one push or pop: a poisoned lock holds
        // a consistent vector.
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Connections open and idle now.
    pub fn idle_count(&self) -> usize {
        self.idle().len()
    }

    /// A connection: an idle one (tested first if it idled long), or a new
    /// one. Waits at most the acquire timeout for a free slot and for the
    /// connection to open.
    ///
    /// # Errors
    /// `PoolTimedOut` when no slot frees up in time or the server does not
    /// answer in time; the driver's error when connecting fails.
    pub async fn acquire(&self) -> Result<Lease<'_, C>, sqlx::Error> {
        let deadline = Instant::now() + self.acquire_timeout;
        let permit = tokio::time::timeout_at(deadline, self.permits.acquire())
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)?
            .map_err(|_| sqlx::Error::PoolClosed)?;
        loop {
            let next = self.idle().pop();
            let Some((mut conn, since)) = next else { break };
            if since.elapsed() < TEST_AFTER_IDLE {
                return Ok(self.lease(conn, permit));
            }
            match tokio::time::timeout_at(deadline, conn.ping()).await {
                Ok(Ok(())) => return Ok(self.lease(conn, permit)),
                // A dead connection: drop it and try the next one.
                _ => drop(conn),
            }
        }
        let mut conn = tokio::time::timeout_at(deadline, C::connect_with(&self.options))
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)??;
        if let Some(init) = self.init.get() {
            tokio::time::timeout_at(deadline, init(&mut conn))
                .await
                .map_err(|_| sqlx::Error::PoolTimedOut)??;
        }
        Ok(self.lease(conn, permit))
    }

    fn lease<'a>(&'a self, conn: C, permit: SemaphorePermit<'a>) -> Lease<'a, C> {
        Lease {
            conn: Some(conn),
            pool: self,
            _permit: permit,
            broken: false,
            finished: false,
        }
    }

    /// Drops every idle connection: after one was found dead (a server
    /// restart, a failover, `KILL CONNECTION`), the others most likely are
    /// too, and each would otherwise fail a request to find out.
    pub fn purge_idle(&self) {
        let idle = std::mem::take(&mut *self.idle());
        drop(idle);
    }

    /// Closes the idle connections and refuses new leases.
    pub async fn close(&self) {
        self.permits.close();
        let idle = std::mem::take(&mut *self.idle());
        for (conn, _) in idle {
            let _ = conn.close().await;
        }
    }
}

/// A connection on loan; back to the pool when dropped, unless marked
/// broken.
pub struct Lease<'a, C: Connection> {
    conn: Option<C>,
    pool: &'a ConnPool<C>,
    _permit: SemaphorePermit<'a>,
    broken: bool,
    finished: bool,
}

impl<C: Connection> std::fmt::Debug for Lease<'_, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("broken", &self.broken)
            .finish()
    }
}

impl<C: Connection> Lease<'_, C> {
    /// Drops the connection instead of returning it (after an I/O error).
    pub fn discard(&mut self) {
        self.broken = true;
    }

    /// Marks the work done: the connection has nothing pending and may go
    /// back to the pool. A lease dropped without this (its future was
    /// cancelled mid-statement) closes its connection instead.
    pub fn finish(&mut self) {
        self.finished = true;
    }
}

impl<C: Connection> Deref for Lease<'_, C> {
    type Target = C;

    fn deref(&self) -> &C {
        match &self.conn {
            Some(conn) => conn,
            None => unreachable!("a lease holds its connection until dropped"),
        }
    }
}

impl<C: Connection> DerefMut for Lease<'_, C> {
    fn deref_mut(&mut self) -> &mut C {
        match &mut self.conn {
            Some(conn) => conn,
            None => unreachable!("a lease holds its connection until dropped"),
        }
    }
}

impl<C: Connection> Drop for Lease<'_, C> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            if self.finished && !self.broken {
                self.pool.idle().push((conn, Instant::now()));
            }
        }
    }
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use std::time::Duration;

    use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};

    use super::ConnPool;

    fn pool(max: u32) -> ConnPool<SqliteConnection> {
        let options: SqliteConnectOptions = "sqlite::memory:".parse().unwrap();
        ConnPool::new(options, max, Duration::from_millis(200))
    }

    #[tokio::test]
    async fn a_returned_connection_is_reused_as_is() {
        let pool = pool(2);
        assert_eq!(pool.idle_count(), 0, "nothing is opened up front");
        {
            let mut conn = pool.acquire().await.unwrap();
            sqlx::query("CREATE TABLE t (x)")
                .execute(&mut *conn)
                .await
                .unwrap();
            conn.finish();
        }
        assert_eq!(pool.idle_count(), 1);
        // An in-memory database lives as long as its connection: the table is
        // still there, so this is the same connection, not a new one.
        let mut conn = pool.acquire().await.unwrap();
        sqlx::query("INSERT INTO t VALUES (1)")
            .execute(&mut *conn)
            .await
            .unwrap();
        assert_eq!(pool.idle_count(), 0);
    }

    #[tokio::test]
    async fn the_pool_waits_at_most_the_timeout_for_a_free_connection() {
        let pool = pool(1);
        let mut held = pool.acquire().await.unwrap();
        let err = pool.acquire().await.unwrap_err();
        assert!(matches!(err, sqlx::Error::PoolTimedOut), "{err:?}");
        held.finish();
        drop(held);
        assert!(
            pool.acquire().await.is_ok(),
            "a returned connection frees the slot"
        );
    }

    #[tokio::test]
    async fn a_discarded_connection_is_not_reused() {
        let pool = pool(1);
        let mut conn = pool.acquire().await.unwrap();
        conn.finish();
        conn.discard();
        drop(conn);
        assert_eq!(pool.idle_count(), 0);
        assert!(
            pool.acquire().await.is_ok(),
            "the slot is free for a new connection"
        );
    }

    #[tokio::test]
    async fn a_lease_dropped_before_its_work_finished_closes_its_connection() {
        let pool = pool(1);
        drop(pool.acquire().await.unwrap());
        assert_eq!(
            pool.idle_count(),
            0,
            "unfinished work may hold locks: not reused"
        );
        assert!(pool.acquire().await.is_ok(), "the slot is free again");
    }

    #[tokio::test]
    async fn a_closed_pool_refuses_leases() {
        let pool = pool(1);
        let mut conn = pool.acquire().await.unwrap();
        conn.finish();
        drop(conn);
        assert_eq!(pool.idle_count(), 1);
        pool.close().await;
        assert_eq!(pool.idle_count(), 0);
        assert!(matches!(pool.acquire().await, Err(sqlx::Error::PoolClosed)));
    }
}
