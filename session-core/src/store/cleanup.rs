//! The expired-session cleanup loop, shared by every store.

use std::sync::Arc;
use std::time::Duration;

use crate::manager::now;
use crate::store::SessionStore;

/// Deletes expired sessions every `interval`, `batch` at a time, until a
/// batch comes back short. Errors are logged and the loop keeps going: a
/// database restart must not end cleanup for the life of the process.
/// Reads never return expired sessions anyway, so cleanup is only about
/// space. Run it with `tokio::spawn` and abort the task at shutdown.
pub async fn run(store: Arc<dyn SessionStore>, interval: Duration, batch: u32) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let mut total = 0u64;
        loop {
            match store.delete_expired(now(), batch).await {
                Ok(n) => {
                    total += n;
                    if n < u64::from(batch) {
                        break;
                    }
                    // Give requests a turn between full batches.
                    tokio::task::yield_now().await;
                }
                Err(error) => {
                    tracing::warn!(error = %error, source = ?std::error::Error::source(&error), "expired-session cleanup failed; retrying next interval");
                    break;
                }
            }
        }
        if total > 0 {
            tracing::info!(deleted = total, "expired sessions cleaned up");
        }
    }
}
