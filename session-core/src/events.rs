//! Lifecycle events: a session was created, regenerated, destroyed,
//! expired, or lost a race, reported once each to the handlers the
//! application registers (an audit log: "signed in", "all devices signed
//! out", "session expired").
//!
//! # Where an event comes from
//! Each event is reported by the step that made it happen, so it fires
//! once per cause even with several instances of the application:
//!
//! | event | reported by | once because |
//! |---|---|---|
//! | `Created` | the insert of a new session | a key is inserted once |
//! | `Regenerated` | the save that moved the session to a new token | the move needs the old key alive |
//! | `Rotated` | the save that moved the session to a new token at `rotate_after` | the move needs the old key alive (racing rotations: one moves, the others follow it) |
//! | `Destroyed { Request }` | `destroy()` | of racing deletes, one deletes the row |
//! | `Destroyed { Everywhere }` | `destroy_sessions_by_x()` | the statement that deletes returns what it deleted |
//! | `Destroyed { Revoked }`, `{ Limit }` | `destroy_session_by_x()`, a login past `max_sessions` | the same |
//! | `Destroyed { TheftSuspected }` | the request that presented a rotated token after its grace | of racing deletes, one deletes the row |
//! | `Expired` | the cleanup task | the statement that deletes returns what it deleted (`DELETE … RETURNING`, a claim in one transaction, the Redis script) |
//! | `Conflict` | a save refused on a versioned field (409) | per request |
//!
//! An event names the session by its [`SessionId`] and, when the session's
//! type has `#[session(index)]` fields, carries their values
//! ([`SessionEvent::indexed`]): whose session it was. Requests take them
//! from what they read or wrote, loading them (one more statement) only
//! when handlers are registered and the request did not read them;
//! cleanup takes them from the row it deletes (SQL stores: fields of up to
//! 1 KB, which an id is; Redis: every field).
//!
//! # Delivery
//! Events go through a bounded queue ([`Events::queue`], 1,024 by
//! default; `Sessions::fairing().event_queue(n)` in Rocket) to one thread
//! of their own, which calls the handlers in registration order, one
//! event at a time. A request only enqueues: a slow handler
//! delays later events, never a response; a handler that panics is
//! logged and the next event is delivered. When the queue is full, a
//! request's event is dropped (counted in
//! `session_events_dropped_total`, warned at most once a second); the
//! cleanup task waits for room instead, since the sessions it reports are
//! already deleted. At shutdown the queue is drained within Rocket's
//! grace. Events of requests whose reply from the store was lost after it
//! committed are not reported (the request answers 503 and cannot know).
//!
//! ```
//! use session_core::events::{EventKind, Events, SessionEvent};
//!
//! let events = Events::new().on(|event: &SessionEvent| {
//!     if let EventKind::Destroyed { cause } = &event.kind {
//!         println!("session {} ended: {cause:?}", event.session);
//!     }
//! });
//! # drop(events);
//! ```

use std::fmt;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use serde::de::DeserializeOwned;

use crate::token::SessionId;

/// What happened to a session.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventKind {
    /// A request stored a new session (its first write).
    Created,
    /// A request moved the session to a new token (`regenerate()`, at
    /// login); [`SessionEvent::session`] is its new id.
    Regenerated {
        /// The id the session had before.
        previous: SessionId,
    },
    /// A request moved the session to a new token because its token was
    /// older than `rotate_after`; [`SessionEvent::session`] is its new id.
    Rotated {
        /// The id the session had before.
        previous: SessionId,
    },
    /// The session was deleted before its time.
    Destroyed {
        /// By what.
        cause: DestroyCause,
    },
    /// The cleanup task deleted the session after it expired (idle past
    /// its timeout, or past `max_lifetime`).
    Expired,
    /// A request's save was refused because another request changed one
    /// of its `#[session(versioned)]` fields first: the request answered
    /// 409 and wrote nothing.
    Conflict,
}

/// Why a session was destroyed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DestroyCause {
    /// A request of this session called `destroy()` (a logout).
    Request,
    /// Another request ended every session of one indexed value ("log out
    /// everywhere": `destroy_sessions_by_x()`).
    Everywhere,
    /// Another request of the same indexed value ended this one session by
    /// its id ("sign out this device": `destroy_session_by_x()`).
    Revoked,
    /// A newer session took the same value of a
    /// `#[session(index, max_sessions = N)]` field, and this one was the
    /// oldest past the limit.
    Limit,
    /// A token that a rotation replaced was presented after its grace
    /// (`rotation_grace`): two parties held it, so the session ended for
    /// both (see `rotate_after`). The event names the session's id at
    /// that moment.
    TheftSuspected,
}

/// The value of one `#[session(index)]` field of the session an event is
/// about: whose session it was.
#[derive(Clone, PartialEq, Eq)]
pub struct IndexedValue {
    /// The field's stored name.
    pub field: &'static str,
    /// Its encoded value: JSON text with the default codec (`42`,
    /// `"alice"`).
    pub value: String,
}

impl IndexedValue {
    /// The value decoded as JSON (the default codec), `None` when it is
    /// not `T`.
    ///
    /// ```
    /// use session_core::events::IndexedValue;
    ///
    /// let v = IndexedValue { field: "user_id", value: "42".into() };
    /// assert_eq!(v.decode::<u64>(), Some(42));
    /// ```
    pub fn decode<T: DeserializeOwned>(&self) -> Option<T> {
        serde_json::from_str(&self.value).ok()
    }
}

impl fmt::Debug for IndexedValue {
    // An indexed value names a user: it is for the app's handler, not for
    // a log line written by `{:?}` of an event.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IndexedValue")
            .field("field", &self.field)
            .field("value", &format_args!("<{} bytes>", self.value.len()))
            .finish()
    }
}

/// One lifecycle event.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionEvent {
    /// What happened.
    pub kind: EventKind,
    /// Which session (its id after the event, for a regenerate).
    pub session: SessionId,
    /// When it happened.
    pub at: SystemTime,
    /// The session's `#[session(index)]` field values, when its type has
    /// any and they were known (see the module docs).
    pub indexed: Vec<IndexedValue>,
}

impl SessionEvent {
    pub(crate) fn new(kind: EventKind, session: SessionId, indexed: Vec<IndexedValue>) -> Self {
        SessionEvent {
            kind,
            session,
            at: SystemTime::now(),
            indexed,
        }
    }

    /// The value of the indexed field `field`, decoded as JSON.
    pub fn value<T: DeserializeOwned>(&self, field: &str) -> Option<T> {
        self.indexed.iter().find(|v| v.field == field)?.decode()
    }
}

/// An event handler.
pub type Handler = Arc<dyn Fn(&SessionEvent) + Send + Sync>;

/// How many events wait for the handlers before a request's are dropped,
/// unless set with [`Events::queue`].
pub const DEFAULT_QUEUE: usize = 1024;

/// The handlers an application registers, and the queue they are fed
/// from (see the module docs for delivery).
#[derive(Clone)]
pub struct Events {
    handlers: Vec<Handler>,
    queue: usize,
}

impl Default for Events {
    fn default() -> Self {
        Events::new()
    }
}

impl fmt::Debug for Events {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Events")
            .field("handlers", &self.handlers.len())
            .field("queue", &self.queue)
            .finish()
    }
}

impl Events {
    /// No handlers, a queue of [`DEFAULT_QUEUE`].
    pub fn new() -> Self {
        Events {
            handlers: Vec::new(),
            queue: DEFAULT_QUEUE,
        }
    }

    /// Adds a handler, called for every event after those added before
    /// it.
    pub fn on(mut self, handler: impl Fn(&SessionEvent) + Send + Sync + 'static) -> Self {
        self.handlers.push(Arc::new(handler));
        self
    }

    /// Sets how many events may wait for the handlers (at least 1).
    pub fn queue(mut self, capacity: usize) -> Self {
        self.queue = capacity.max(1);
        self
    }

    /// Whether any handler is registered.
    pub fn is_empty(&self) -> bool {
        self.handlers.is_empty()
    }

    /// How many handlers are registered.
    pub fn handlers(&self) -> usize {
        self.handlers.len()
    }
}

/// The running delivery: the queue's sending side and the thread that
/// calls the handlers.
pub(crate) struct Hub {
    sender: tokio::sync::mpsc::Sender<SessionEvent>,
    /// Events sent and not yet handled.
    pending: Arc<AtomicUsize>,
    /// The second of the last "queue full" warning.
    warned: AtomicI64,
    /// The indexed fields of every session type in use, by stored name:
    /// what the cleanup task describes an expired session by.
    indexed: RwLock<Vec<&'static str>>,
}

impl fmt::Debug for Hub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hub")
            .field("pending", &self.pending.load(Relaxed))
            .finish_non_exhaustive()
    }
}

impl Hub {
    /// Starts the thread that delivers `events`.
    pub(crate) fn start(events: Events) -> std::io::Result<Hub> {
        let (sender, mut receiver) = tokio::sync::mpsc::channel::<SessionEvent>(events.queue);
        let pending = Arc::new(AtomicUsize::new(0));
        let handled = pending.clone();
        let handlers = events.handlers;
        // The thread ends when the queue's sender (the manager) is gone.
        std::thread::Builder::new()
            .name("session-events".into())
            .spawn(move || {
                while let Some(event) = receiver.blocking_recv() {
                    for handler in &handlers {
                        let call = std::panic::AssertUnwindSafe(|| handler(&event));
                        if std::panic::catch_unwind(call).is_err() {
                            tracing::error!(
                                kind = ?event.kind,
                                "a session event handler panicked; the next events are still delivered"
                            );
                        }
                    }
                    handled.fetch_sub(1, Relaxed);
                }
            })?;
        Ok(Hub {
            sender,
            pending,
            warned: AtomicI64::new(0),
            indexed: RwLock::default(),
        })
    }

    /// Queues a request's event; drops it when the queue is full.
    pub(crate) fn emit(&self, event: SessionEvent) {
        self.pending.fetch_add(1, Relaxed);
        if self.sender.try_send(event).is_err() {
            self.pending.fetch_sub(1, Relaxed);
            crate::observe::event_dropped();
            let now = crate::clock::now();
            if self.warned.swap(now, Relaxed) != now {
                tracing::warn!(
                    "the session event queue is full: an event was dropped (handlers are slower \
                     than events arrive; raise the queue (`event_queue`) or make the handlers faster)"
                );
            }
        }
    }

    /// Queues an event of the cleanup task, waiting for room.
    pub(crate) async fn emit_waiting(&self, event: SessionEvent) {
        self.pending.fetch_add(1, Relaxed);
        if self.sender.send(event).await.is_err() {
            self.pending.fetch_sub(1, Relaxed);
        }
    }

    /// Events queued and not yet handled.
    pub(crate) fn pending(&self) -> usize {
        self.pending.load(Relaxed)
    }

    /// Waits until every queued event was handled, at most `grace`.
    pub(crate) async fn drain(&self, grace: std::time::Duration) {
        let deadline = tokio::time::Instant::now() + grace;
        while self.pending() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        if self.pending() > 0 {
            tracing::warn!(
                pending = self.pending(),
                "session events still queued at shutdown were not delivered"
            );
        }
    }

    /// Notes a session type's indexed fields.
    pub(crate) fn register_indexed(&self, names: impl IntoIterator<Item = &'static str>) {
        let mut indexed = self
            .indexed
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for name in names {
            if !indexed.contains(&name) {
                indexed.push(name);
            }
        }
    }

    /// The indexed fields of the session types in use.
    pub(crate) fn indexed(&self) -> Vec<&'static str> {
        self.indexed
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// The values of `indexed` among a session's plain (opened) fields.
pub(crate) fn indexed_values<'a>(
    indexed: &[&'static str],
    fields: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) -> Vec<IndexedValue> {
    let mut values = Vec::new();
    for (name, bytes) in fields {
        if let Some(field) = indexed.iter().find(|n| **n == name) {
            if values.iter().any(|v: &IndexedValue| v.field == *field) {
                continue;
            }
            values.push(IndexedValue {
                field,
                value: String::from_utf8_lossy(bytes).into_owned(),
            });
        }
    }
    values
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::*;
    use crate::token::Token;

    fn event(kind: EventKind) -> SessionEvent {
        SessionEvent::new(
            kind,
            Token::generate().unwrap().store_key().id(),
            Vec::new(),
        )
    }

    /// A handler that blocks and then panics stalls no request: emitting
    /// never waits for it, a full queue drops the request's event, and
    /// after the panic the next events are still delivered.
    #[test]
    fn a_slow_or_panicking_handler_never_stalls_a_request() {
        let (release, blocked) = mpsc::channel::<()>();
        let blocked = Mutex::new(blocked);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let hub = Hub::start(Events::new().queue(2).on(move |e| {
            if e.kind == EventKind::Created {
                // The first event holds the handler until the test lets go.
                blocked.lock().unwrap().recv().unwrap();
                panic!("a handler that fails");
            }
            log.lock().unwrap().push(e.kind.clone());
        }))
        .unwrap();
        // The request side, on a thread of its own: if emitting waited for
        // the blocked handler, it would never finish.
        let (done, finished) = mpsc::channel();
        let emitter = std::thread::spawn({
            let hub = Arc::new(hub);
            let emitting = hub.clone();
            move || {
                emitting.emit(event(EventKind::Created));
                // Wait until the handler holds the first event.
                while emitting.sender.capacity() < 2 {
                    std::thread::yield_now();
                }
                for _ in 0..10 {
                    emitting.emit(event(EventKind::Expired));
                }
                done.send(()).unwrap();
                hub
            }
        });
        finished
            .recv_timeout(Duration::from_secs(10))
            .expect("emitting never waits for a blocked handler");
        let hub = emitter.join().unwrap();
        // The handler holds one event and the queue two: the rest dropped.
        assert_eq!(hub.pending(), 3);
        release.send(()).unwrap();
        for _ in 0..1000 {
            if hub.pending() == 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        assert_eq!(hub.pending(), 0);
        assert_eq!(
            *seen.lock().unwrap(),
            [EventKind::Expired, EventKind::Expired],
            "after the panic, the queued events are delivered"
        );
    }
}
