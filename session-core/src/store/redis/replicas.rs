//! Waiting for a replica: a destroy is acknowledged only once a replica
//! holds it, when the primary (every primary, on a cluster) has one, so a
//! failover right after a logout cannot bring the session back (Redis
//! replicates asynchronously: a write the primary acknowledged can be lost
//! with it).

use super::RedisStore;
use crate::error::{Error, Result};

/// How long a destroy waits for a replica to confirm it (milliseconds).
const REPLICA_WAIT_MS: u64 = 1000;

impl RedisStore {
    /// Waits until a replica holds the writes sent to the primary of `key`
    /// (every primary: `None`), when there are replicas to wait for.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when no replica confirmed within a second:
    /// the deletion is on the primary, but a failover could undo it, so it
    /// is not reported done.
    pub(super) async fn confirm(&self, key: Option<&str>) -> Result<()> {
        if !self.replicated {
            return Ok(());
        }
        let wait = redis::cmd("WAIT").arg(1).arg(REPLICA_WAIT_MS).clone();
        let acked: i64 = match key {
            Some(key) => {
                self.counters.statement();
                let reply = self.conn.to_primary_of(key, &wait).await;
                redis::from_redis_value(reply.map_err(super::map_error)?)
                    .map_err(|e| super::map_error(e.into()))?
            }
            None => self.run(&wait).await?,
        };
        if acked < 1 {
            return Err(Error::Unavailable(
                "the session was deleted on its Redis primary, but no replica confirmed it within \
                 1 s: a failover now could bring it back; try again"
                    .into(),
            ));
        }
        Ok(())
    }
}
