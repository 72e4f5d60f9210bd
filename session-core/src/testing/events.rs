//! Checks of lifecycle events: each fires once for its cause, names the
//! session by its id and carries its indexed values.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;
use crate::events::{DestroyCause, EventKind, Events, SessionEvent};
use crate::token::Token;

/// Events as a handler received them.
#[derive(Debug, Clone, Default)]
pub struct EventLog(Arc<Mutex<Vec<SessionEvent>>>);

impl EventLog {
    /// Handlers that record into this log.
    pub fn events(&self) -> Events {
        let log = self.0.clone();
        Events::new().on(move |event| log.lock().unwrap().push(event.clone()))
    }

    /// The events handled so far, after waiting until `manager` has none
    /// queued; the log is emptied.
    pub async fn take(&self, manager: &SessionManager) -> Vec<SessionEvent> {
        for _ in 0..1000 {
            if manager.pending_events() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        assert_eq!(manager.pending_events(), 0, "events were delivered");
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// The id of the session a cookie value names.
pub fn id_of(cookie: &str) -> crate::SessionId {
    Token::parse(cookie)
        .expect("a cookie with a token")
        .store_key()
        .id()
}

/// `manager` over `store` with events recorded into a new log.
fn observed(store: Arc<dyn SessionStore>) -> (SessionManager, EventLog) {
    let log = EventLog::default();
    let manager = SessionManager::new(store, Config::default())
        .unwrap()
        .with_events(log.events())
        .unwrap();
    manager.supports::<Account>().unwrap();
    manager.supports::<Counter>().unwrap();
    (manager, log)
}

fn user(event: &SessionEvent) -> Option<u64> {
    event.value("user_id")
}

/// Created, regenerated, destroyed (by a request, by "log out
/// everywhere") and conflict each fire once for their cause, with the
/// session's id and its indexed value; racing logouts of one session
/// report it once.
pub async fn lifecycle_events_fire_once_each(store: Arc<dyn SessionStore>) {
    let (m, log) = observed(store);

    // Created, with the indexed value the request wrote.
    let mut login = m.open::<Account>(None);
    login.set_user_id(42);
    login.set_device("laptop".into());
    assert_eq!(flush(&mut login).await.unwrap(), Outcome::Created);
    let first = cookie_token(&mut login);
    let events = log.take(&m).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].kind, EventKind::Created);
    assert_eq!(events[0].session, id_of(&first));
    assert_eq!(user(&events[0]), Some(42));

    // Regenerated: the old id and the new one; the value read from the store.
    let mut again = m.open::<Account>(Some(&first));
    again.regenerate();
    again.set_device("laptop, again".into());
    assert_eq!(flush(&mut again).await.unwrap(), Outcome::Saved);
    let second = cookie_token(&mut again);
    let events = log.take(&m).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        events[0].kind,
        EventKind::Regenerated {
            previous: id_of(&first)
        }
    );
    assert_eq!(events[0].session, id_of(&second));
    assert_eq!(user(&events[0]), Some(42));

    // A request that reads nothing changes nothing and reports nothing.
    let mut idle = m.open::<Account>(Some(&second));
    assert_eq!(flush(&mut idle).await.unwrap(), Outcome::Unchanged);
    assert!(log.take(&m).await.is_empty());

    // Two logouts of one session racing: one event.
    let mut a = m.open::<Account>(Some(&second));
    let mut b = m.open::<Account>(Some(&second));
    let (ra, rb) = tokio::join!(a.destroy(), b.destroy());
    ra.unwrap();
    rb.unwrap();
    let events = log.take(&m).await;
    assert_eq!(events.len(), 1, "one session ended once: {events:?}");
    assert_eq!(
        events[0].kind,
        EventKind::Destroyed {
            cause: DestroyCause::Request
        }
    );
    assert_eq!(events[0].session, id_of(&second));
    assert_eq!(user(&events[0]), Some(42), "read before the delete");

    // "Log out everywhere": one event per other session, with the value.
    let mut cookies = Vec::new();
    for device in ["desk", "phone", "tablet"] {
        let mut h = m.open::<Account>(None);
        h.set_user_id(7);
        h.set_device(device.into());
        flush(&mut h).await.unwrap();
        cookies.push(cookie_token(&mut h));
    }
    let mut other = m.open::<Account>(None);
    other.set_user_id(8);
    flush(&mut other).await.unwrap();
    assert_eq!(log.take(&m).await.len(), 4, "four sessions created");
    let mut desk = m.open::<Account>(Some(&cookies[0]));
    assert_eq!(desk.destroy_other_sessions_by_user_id(&7).await.unwrap(), 2);
    let events = log.take(&m).await;
    let mut ended: Vec<_> = events
        .iter()
        .map(|e| {
            assert_eq!(
                e.kind,
                EventKind::Destroyed {
                    cause: DestroyCause::Everywhere
                }
            );
            assert_eq!(user(e), Some(7));
            e.session
        })
        .collect();
    ended.sort();
    let mut expected = vec![id_of(&cookies[1]), id_of(&cookies[2])];
    expected.sort();
    assert_eq!(ended, expected, "exactly the other sessions, once each");

    // Conflict: a versioned field changed under a request (409).
    let mut counter = m.open::<Counter>(None);
    counter.set_hits(1);
    flush(&mut counter).await.unwrap();
    let cookie = cookie_token(&mut counter);
    assert_eq!(log.take(&m).await.len(), 1);
    let mut a = m.open::<Counter>(Some(&cookie));
    let mut b = m.open::<Counter>(Some(&cookie));
    *a.hits_mut().await.unwrap() += 1;
    *b.hits_mut().await.unwrap() += 1;
    assert_eq!(flush(&mut a).await.unwrap(), Outcome::Saved);
    assert!(flush(&mut b).await.is_err());
    let events = log.take(&m).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].kind, EventKind::Conflict);
    assert_eq!(events[0].session, id_of(&cookie));
}

/// Expired sessions, found by cleanups running at once on two managers
/// over one database (`a` and `b`: two app instances), are each reported
/// by exactly one `Expired` event, with their indexed value.
pub async fn expiry_events_fire_once_across_instances(
    a: Arc<dyn SessionStore>,
    b: Arc<dyn SessionStore>,
) {
    let config = Config {
        cleanup_interval: 1,
        cleanup_batch: 5,
        ..Config::default()
    };
    let log = EventLog::default();
    let manager = |store: Arc<dyn SessionStore>| {
        let m = SessionManager::new(store, config.clone())
            .unwrap()
            .with_events(log.events())
            .unwrap();
        m.supports::<Account>().unwrap();
        m
    };
    let (ma, mb) = (manager(a), manager(b));
    // Sessions created a day and a minute ago with a one-day ttl.
    // (Redis keeps a dead session's hash for an hour: within it.)
    let past = crate::clock::now() - 86_400 - 60;
    let mut expected = Vec::new();
    for i in 0..30u64 {
        let mut h = ma.open_at::<Account>(None, past);
        h.set_user_id(100 + i);
        flush(&mut h).await.unwrap();
        expected.push((id_of(&cookie_token(&mut h)), 100 + i));
    }
    let mut live = mb.open::<Account>(None);
    live.set_user_id(1);
    flush(&mut live).await.unwrap();
    let created = log.take(&ma).await.len() + log.take(&mb).await.len();
    assert_eq!(created, 31, "31 sessions created");

    let tasks = [ma.spawn_cleanup().unwrap(), mb.spawn_cleanup().unwrap()];
    let mut seen = Vec::new();
    for _ in 0..500 {
        seen.extend(log.take(&ma).await);
        seen.extend(log.take(&mb).await);
        if seen.len() >= expected.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // A pass more on each instance: nothing left to report twice.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    seen.extend(log.take(&ma).await);
    seen.extend(log.take(&mb).await);
    for task in tasks {
        task.abort();
    }
    let mut reported: Vec<_> = seen
        .iter()
        .map(|e| {
            assert_eq!(e.kind, EventKind::Expired);
            (
                e.session,
                user(e).expect("the indexed value of the expired session"),
            )
        })
        .collect();
    reported.sort();
    expected.sort();
    assert_eq!(
        reported, expected,
        "each expired session reported exactly once"
    );
}
