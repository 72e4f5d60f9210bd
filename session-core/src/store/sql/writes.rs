//! How a SQL store's writes reach the server: retried whole on deadlocks
//! and cluster conflicts, sent again once on a fresh connection when the
//! connection was lost, and, for the writes that must not land twice (a
//! compare-and-set, a regenerate's move, a login's inserts), recognised
//! when the lost connection took the reply of a write the server had
//! applied. A write waits for the server at most the statement timeout
//! plus a margin once it holds a connection; the server applies the same
//! limit itself (see the dialects' `connect`).

use std::time::Duration;

use super::backend::{Affected, Backend, ErrorClass, Stmt};
use super::statements::Nonce;
use super::{map_error, SqlStore, DEFAULT_TIMEOUT};
use crate::error::{Error, Result};
use crate::token::StoreKey;

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

/// How many times a write that must not land twice is sent when each
/// time its connection is lost and it is found not applied.
const SEND_ROUNDS: u32 = 3;

/// How much longer than the statement timeout a write waits for the
/// server's answer (see `write_limit`): the server's own limit ends a
/// statement that long after it began, and its error or answer travels
/// back within this margin.
const WRITE_MARGIN: Duration = Duration::from_millis(250);

impl<B: Backend> SqlStore<B> {
    /// Runs a write that is safe to apply twice (an upsert of plain
    /// fields, a delete, an expiry touch), retrying it whole on deadlock /
    /// busy errors, and on a fresh connection when the connection was lost
    /// (its first attempt may have been applied: harmless here), up to
    /// [`SEND_ROUNDS`] times when the fresh connection is lost too. A
    /// foreign-key miss (see [`ErrorClass::Gone`]) is `Ok(None)`, like a
    /// first statement that matched nothing.
    pub(super) async fn write(&self, stmts: &[Stmt<'_>], must_match: usize) -> Result<Affected> {
        let mut round = 1;
        loop {
            let attempt = self
                .retried(stmts.len(), || {
                    self.backend.execute(stmts, must_match, self.write_limit())
                })
                .await;
            match attempt.result {
                Err(e) if attempt.replayed && e.is_unavailable() && round < SEND_ROUNDS => {
                    round += 1;
                }
                result => return result.map(Option::flatten),
            }
        }
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
    pub(super) async fn write_once(
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
    pub(super) async fn landed(&self, landed: &Landed<'_>) -> Result<Option<bool>> {
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
    pub(super) async fn retried<T, F, Fut>(&self, statements: usize, run: F) -> Attempt<T>
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
                    crate::observe::metric::retry(B::NAME, "conflict");
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

    /// Deletes what `claim` names and returns what it deleted (see
    /// `Backend::take`), retried whole on deadlocks and cluster conflicts
    /// (a rolled-back claim reported nothing) and once on a fresh
    /// connection when the connection was lost. A claim whose reply was
    /// lost after the server committed it took its sessions with it:
    /// they are not reported (their events are lost; never doubled).
    pub(super) async fn take(
        &self,
        claim: &Stmt<'_>,
        delete: &(dyn for<'p> Fn(&'p [i64]) -> Stmt<'static> + Send + Sync),
    ) -> Result<Vec<super::Taken>> {
        let statements = if self.sql.returning() { 1 } else { 2 };
        let attempt = self
            .retried(statements, || {
                self.backend.take(claim, delete, self.write_limit())
            })
            .await;
        attempt.result.map(Option::unwrap_or_default)
    }

    /// A connection was lost: the idle ones went with it, most likely.
    pub(super) fn lost(&self, error: &sqlx::Error) {
        tracing::warn!(%error, "session store connection lost; retrying once on a fresh connection");
        crate::observe::metric::retry(B::NAME, "lost");
        self.backend.purge_idle();
    }

    /// How long a write waits for the server once it holds a connection:
    /// the statement timeout, which the server applies to each statement
    /// itself where it can (see the dialects' `connect`), and a little
    /// more, so that a write the store gave up on was ended by the server
    /// first, not left to commit after a 503.
    pub(super) fn write_limit(&self) -> Option<Duration> {
        self.timeout.map(|t| t + WRITE_MARGIN)
    }
}

/// What a write call came to, and whether it was sent more than once.
pub(super) struct Attempt<T> {
    pub(super) result: Result<Option<T>>,
    /// Sent again after a lost connection: the first attempt may have
    /// been applied, its reply lost.
    pub(super) replayed: bool,
}

/// How to tell, after a lost reply, whether a write was applied.
pub(super) enum Landed<'a> {
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
pub(super) fn is_duplicate<B: Backend>(error: &Error) -> bool {
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
