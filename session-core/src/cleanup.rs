//! The expired-session cleanup loop, shared by every store, and the
//! reports of what it deleted: the `sessions_expired_total` counter, an
//! `Expired` event per session, and the `sessions_live` gauge.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::now;
use crate::context::Context;
use crate::events::{EventKind, IndexedValue, SessionEvent};
use crate::state::sealed;
use crate::store::{Ended, SessionStore, Validity};

/// Deletes expired sessions every `interval`, `batch` at a time, until a
/// batch comes back short. Errors are logged and the loop keeps going: a
/// database restart must not end cleanup for the life of the process.
/// Reads never return expired sessions anyway, so cleanup is about space
/// and about reporting expiries. Run it with `tokio::spawn` and abort the
/// task at shutdown. Sessions past `max_lifetime` (seconds) are deleted
/// too, whatever their idle expiry.
pub(crate) async fn run(
    ctx: Arc<Context>,
    store: Arc<dyn SessionStore>,
    interval: Duration,
    batch: u32,
    max_lifetime: u64,
) {
    let max_lifetime = i64::try_from(max_lifetime).unwrap_or(i64::MAX / 2);
    // The first pass waits one interval: a fleet restarting at once does not
    // hit the database with cleanups on top of its warm-up traffic.
    let start = tokio::time::Instant::now() + interval;
    let mut ticker = tokio::time::interval_at(start, interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let at = || {
        let now = now();
        Validity {
            now,
            created_after: now.saturating_sub(max_lifetime),
        }
    };
    loop {
        ticker.tick().await;
        let mut total = 0usize;
        loop {
            match store.delete_expired(at(), batch).await {
                Ok(ended) => {
                    let n = ended.len();
                    total += n;
                    report(&ctx, store.name(), ended).await;
                    if n < batch as usize {
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
        match store.count_live(at()).await {
            Ok(Some(live)) => crate::observe::live(store.name(), live),
            Ok(None) => {}
            Err(error) => tracing::debug!(%error, "could not count live sessions"),
        }
    }
}

/// Counts and reports the sessions one cleanup batch deleted: an
/// `Expired` event each, waiting for room in the event queue (they are
/// deleted already; dropping their events would lose them).
async fn report(ctx: &Context, store: &'static str, ended: Vec<Ended>) {
    crate::observe::expired(store, ended.len() as u64);
    let Some(hub) = ctx.events() else {
        return;
    };
    let indexed = hub.indexed();
    for session in ended {
        let values = describe(ctx, &indexed, &session);
        let event = SessionEvent::new(EventKind::Expired, session.key.id(), values);
        hub.emit_waiting(event).await;
    }
}

/// The indexed values among an ended session's fields, opened when
/// values are encrypted.
fn describe(ctx: &Context, indexed: &[&'static str], session: &Ended) -> Vec<IndexedValue> {
    if indexed.is_empty() {
        return Vec::new();
    }
    let sealer = ctx.sealer();
    let previous = sealed::record_keys(sealer, &session.key, &session.fields);
    let seals = sealer.map(|s| sealed::seals(s, &session.key, &previous));
    let opened: Vec<(&str, Vec<u8>)> = session
        .fields
        .iter()
        .filter(|(name, _)| indexed.contains(&name.as_str()))
        .filter_map(|(name, bytes)| {
            let plain = match &seals {
                Some(seals) => sealed::open(seals, name, bytes)?,
                None => bytes.clone(),
            };
            Some((name.as_str(), plain))
        })
        .collect();
    crate::events::indexed_values(indexed, opened.iter().map(|(n, b)| (*n, b.as_slice())))
}

#[cfg(all(test, feature = "memory"))]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use crate::clock::now;
    use crate::store::memory::MemoryStore;
    use crate::store::{NewSession, SessionStore};
    use crate::token::Token;

    fn new(created_at: i64, expires_at: i64) -> NewSession {
        NewSession {
            created_at,
            expires_at,
            idle_timeout: 60,
            persistent: None,
        }
    }

    #[tokio::test]
    async fn cleanup_deletes_expired_sessions_in_batches_and_keeps_live_ones() {
        let store = Arc::new(MemoryStore::new());
        let t = now();
        for _ in 0..7 {
            let key = Token::generate().unwrap().store_key();
            store.create(&key, new(t - 10, t - 1), &[]).await.unwrap();
        }
        // Past `max_lifetime` (100 s) although its idle expiry is ahead.
        let too_old = Token::generate().unwrap().store_key();
        store
            .create(&too_old, new(t - 500, t + 3600), &[])
            .await
            .unwrap();
        let live = Token::generate().unwrap().store_key();
        store.create(&live, new(t, t + 3600), &[]).await.unwrap();
        let manager = crate::SessionManager::new(store.clone(), crate::Config::default()).unwrap();
        let task = tokio::spawn(super::run(
            manager.context(),
            store.clone(),
            Duration::from_millis(5),
            2,
            100,
        ));
        // bounded wait for the first pass: behaviour, not timing, is asserted
        for _ in 0..200 {
            if store.len() == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        task.abort();
        assert_eq!(
            store.len(),
            1,
            "every expired session is gone, in batches of 2, the one past max_lifetime too"
        );
        let at = crate::store::Validity {
            now: t,
            created_after: t - 100,
        };
        assert!(store.load(&live, &[], at).await.unwrap().is_some());
    }
}
