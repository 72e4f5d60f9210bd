//! `Session<T>`: the request guard, and the request-local registry the
//! fairing flushes from.

use std::fmt;
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::sync::{Arc, Mutex as StdMutex};

use rocket::http::Status;
use rocket::request::{FromRequest, Outcome, Request};
use rocket::{Ignite, Rocket, Sentinel};
use session_core::flush;
use session_core::state::{CookieAction, Outcome as Flushed};
use session_core::{RequestSession, SessionData, SessionHandle};
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::error::SessionError;
use crate::state::SessionsState;

/// A typed session for one request; `T` is a struct with
/// `#[derive(Session)]`.
///
/// Taking the guard is free: it reads the cookie and never the store. The
/// store is read the first time a handler reads a field, and only the
/// fields that changed are written back, by the [`Sessions`](crate::Sessions)
/// fairing after the handler returns.
///
/// `Session<T>` derefs to the generated handle (`ShopSession` for `Shop`),
/// which has the field accessors and derefs in turn to
/// [`SessionState`](session_core::SessionState) for
/// [`regenerate`](session_core::SessionState::regenerate),
/// [`is_new`](session_core::SessionState::is_new),
/// [`set_expiry`](session_core::SessionState::set_expiry) and
/// [`id`](session_core::SessionState::id).
///
/// Several `Session<T>` guards in one request (a `User` guard built on the
/// session, then the handler's own) share one state, so the store is read at
/// most once per request. Guards of different session types on one request
/// (`Session<Shop>` and `Session<Prefs>`) share one session: one token, one
/// cookie, and every type's changes are kept. A stored name used by two
/// types is one field, so give such fields the same type.
///
/// A guard must not outlive its handler (moved into a spawned task or a
/// streaming body): its changes could not be saved, so such a response
/// becomes a 500 with the cause in the log, never a silent success. They must not be alive at the same time: the
/// second fails with [`SessionError::AlreadyBorrowed`] (a 500) instead of
/// deadlocking. Rocket evaluates guards in parameter order, so list a guard
/// built on the session before the handler's own `Session<T>`:
/// `fn cart(user: User, session: Session<Shop>)`, not the reverse.
///
/// ```
/// # use session_rocket::{Session, SessionError};
/// # #[derive(Session, Default)]
/// # struct Shop { visits: u32 }
/// #[rocket::post("/visit")]
/// async fn visit(mut session: Session<Shop>) -> Result<String, SessionError> {
///     let visits = session.visits_mut().await?;
///     *visits += 1;
///     Ok(format!("{visits} visits"))
/// }
/// ```
pub struct Session<T: SessionData> {
    handle: OwnedMutexGuard<T::Handle>,
}

impl<T: SessionData> Session<T> {
    /// Deletes the session in the store now and removes the cookie: call it
    /// on logout. Changes made in this request are dropped, and no slower
    /// concurrent request can bring the session back.
    ///
    /// # Errors
    /// The store's error (a 503 when it is unreachable); the session is then
    /// left as it was.
    pub async fn destroy(mut self) -> Result<(), SessionError> {
        SessionHandle::state_mut(&mut *self.handle)
            .destroy()
            .await
            .map_err(SessionError::from)
    }

    /// Writes this request's changes now instead of after the handler, for
    /// handlers that must know the write succeeded before they answer. The
    /// fairing then has nothing left to write (the cookie is still sent by
    /// it).
    ///
    /// # Errors
    /// The store's error; [`Error::Interrupted`](session_core::Error::Interrupted)
    /// when a concurrent request destroyed the session;
    /// [`Error::Conflict`](session_core::Error::Conflict) when a
    /// `#[session(versioned)]` field written here was changed by a
    /// concurrent request since it was read (nothing of this request was
    /// written). Both answer 409 through `?`.
    pub async fn save(&mut self) -> Result<(), SessionError> {
        match flush(&mut *self.handle).await? {
            Flushed::Interrupted => Err(session_core::Error::Interrupted.into()),
            _ => Ok(()),
        }
    }
}

impl<T: SessionData> Deref for Session<T> {
    type Target = T::Handle;

    fn deref(&self) -> &T::Handle {
        &self.handle
    }
}

impl<T: SessionData> DerefMut for Session<T> {
    fn deref_mut(&mut self) -> &mut T::Handle {
        &mut self.handle
    }
}

impl<T: SessionData> fmt::Debug for Session<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("type", &std::any::type_name::<T>())
            .field("state", SessionHandle::state(&*self.handle))
            .finish()
    }
}

/// The request-local home of one session type's handle: guards lock it,
/// the fairing flushes it.
struct SessionSlot<T: SessionData>(Arc<Mutex<T::Handle>>);

#[rocket::async_trait]
impl<'r, T: SessionData> FromRequest<'r> for Session<T> {
    type Error = SessionError;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, SessionError> {
        let Some(sessions) = req.rocket().state::<SessionsState>() else {
            return Outcome::Error((Status::InternalServerError, SessionError::NotAttached));
        };
        // The sentinel refuses these at launch for route parameters; a
        // guard built on the session reaches here instead.
        if let Err(error) = sessions.manager().supports::<T>() {
            rocket::error!("{error}");
            return Outcome::Error((Status::InternalServerError, error.into()));
        }
        let registry = Registry::of(req);
        let slot = req.local_cache(|| {
            let request = registry.request(|| {
                sessions.request_started();
                let config = sessions.manager().config();
                let cookie = crate::cookie::read(req, &config.cookie_name);
                // The route's address stands for it: Rocket keeps its
                // routes in place while it runs.
                let request = match req.route() {
                    Some(route) => sessions
                        .manager()
                        .begin_for(cookie.as_deref(), route as *const _ as usize as u64),
                    None => sessions.manager().begin(cookie.as_deref()),
                };
                if config.device_info {
                    request.set_device(session_core::DeviceInfo::new(
                        req.headers().get_one("User-Agent"),
                        req.client_ip(),
                    ));
                }
                request
            });
            let cell = Arc::new(Mutex::new(request.open::<T>()));
            registry.register(cell.clone());
            SessionSlot::<T>(cell)
        });
        match slot.0.clone().try_lock_owned() {
            Ok(handle) => Outcome::Success(Session { handle }),
            Err(_) => {
                let error = SessionError::AlreadyBorrowed(std::any::type_name::<T>());
                rocket::error!(
                    "{error}: a guard built on the session (a `User` guard, say) must come before \
                     the handler's own `Session` parameter, and must not keep the session inside itself"
                );
                Outcome::Error((Status::InternalServerError, error))
            }
        }
    }
}

impl<T: SessionData> Sentinel for Session<T> {
    fn abort(rocket: &Rocket<Ignite>) -> bool {
        if rocket.state::<SessionsState>().is_none() {
            rocket::error!(
                "`Session<{}>` is used in a route, but the `Sessions` fairing is not attached",
                std::any::type_name::<T>()
            );
            rocket::info_!("add `.attach(Sessions::fairing())` to the Rocket builder");
            return true;
        }
        if let Some(Err(error)) = rocket
            .state::<SessionsState>()
            .map(|s| s.manager().supports::<T>())
        {
            rocket::error!("{error}");
            return true;
        }
        false
    }
}

type FinishFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Flushed, session_core::Error>> + Send + 'a>>;

/// One session type's state, seen by the fairing without its type.
trait Finish: Send + Sync {
    /// Flushes (when `persist`).
    fn finish(&self, persist: bool) -> FinishFuture<'_>;
}

impl<H: SessionHandle> Finish for Mutex<H> {
    fn finish(&self, persist: bool) -> FinishFuture<'_> {
        Box::pin(async move {
            let Ok(mut handle) = self.try_lock() else {
                return Err(session_core::Error::Backend(
                    "a `Session` guard outlived its handler (moved into a spawned task or a \
                     streaming body?): its changes cannot be saved; finish with the session \
                     before the handler returns"
                        .into(),
                ));
            };
            if persist {
                flush(&mut *handle).await
            } else {
                Ok(Flushed::Unchanged)
            }
        })
    }
}

/// What the fairing does with a request once every session type is
/// flushed.
pub(crate) struct Finished {
    /// The cookie the response needs.
    pub(crate) cookie: Option<CookieAction>,
    /// The first error.
    pub(crate) error: Option<session_core::Error>,
    /// A concurrent request ended the session and this request's changes
    /// were dropped.
    pub(crate) interrupted: bool,
}

/// Every session state opened in one request, and the request's session
/// they share.
#[derive(Default)]
pub(crate) struct Registry {
    request: std::sync::OnceLock<RequestSession>,
    entries: StdMutex<Vec<Arc<dyn Finish>>>,
}

impl Registry {
    fn request(&self, begin: impl FnOnce() -> RequestSession) -> &RequestSession {
        self.request.get_or_init(begin)
    }

    fn register(&self, entry: Arc<dyn Finish>) {
        self.lock().push(entry);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Arc<dyn Finish>>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Flushes every state; returns the cookie to send and the first error.
    pub(crate) async fn finish(&self, persist: bool) -> Finished {
        let entries = std::mem::take(&mut *self.lock());
        let mut finished = Finished {
            cookie: None,
            error: None,
            interrupted: false,
        };
        for entry in entries {
            match entry.finish(persist).await {
                Ok(outcome) => finished.interrupted |= outcome == Flushed::Interrupted,
                Err(error) => {
                    finished.error.get_or_insert(error);
                }
            }
        }
        finished.cookie = self
            .request
            .get()
            .and_then(RequestSession::take_cookie_action);
        finished
    }

    /// Whether a session was opened in this request.
    pub(crate) fn started(&self) -> bool {
        self.request.get().is_some()
    }

    /// The registry of this request.
    pub(crate) fn of<'r>(req: &'r Request<'_>) -> &'r Registry {
        req.local_cache(Registry::default)
    }
}
