//! `SessionError`: what handlers return with `?`, and how it becomes a
//! status code.

use rocket::http::Status;
use rocket::request::Request;
use rocket::response::{self, Responder};

/// The error handlers see. It implements [`Responder`], so `?` works in a
/// handler returning `Result<_, SessionError>`:
///
/// | cause | status |
/// |---|---|
/// | the store is unreachable, or did not answer within `statement_timeout` ([`Error::Unavailable`](session_core::Error::Unavailable)) | 503 |
/// | a concurrent request ended the session ([`Error::Interrupted`](session_core::Error::Interrupted)) or changed a versioned field this request read ([`Error::Conflict`](session_core::Error::Conflict)): nothing of the save was written | 409 |
/// | anything else (a failing store, a field over the size limit, an undecodable field under `on_decode_error = "error"`) | 500 |
///
/// The cause is logged with its whole source chain; the client sees only
/// the status.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// An error from the session model or its store.
    #[error(transparent)]
    Session(#[from] session_core::Error),

    /// `Session<T>` was requested, but the `Sessions` fairing is not attached.
    /// The guard's sentinel refuses launch in that case, so this is seen only
    /// by apps that disable sentinels.
    #[error("the `Sessions` fairing is not attached: add `.attach(Sessions::fairing())`")]
    NotAttached,

    /// A second `Session<T>` of the same type was requested while the first
    /// is still alive in the same request (a guard that keeps the session
    /// inside itself, say). Drop the first before taking the second.
    #[error("`Session<{0}>` is already borrowed in this request")]
    AlreadyBorrowed(&'static str),
}

impl SessionError {
    /// The status this error answers with: 503 when the store is
    /// unreachable, 409 when a concurrent request ended the session or
    /// changed a versioned field, 500 otherwise.
    pub fn status(&self) -> Status {
        match self {
            SessionError::Session(e) if e.is_unavailable() => Status::ServiceUnavailable,
            SessionError::Session(e) if e.is_conflict() => Status::Conflict,
            _ => Status::InternalServerError,
        }
    }
}

/// For handlers that return `Result<T, Status>`: `?` on an accessor answers
/// with the error's status (the cause is logged).
impl From<SessionError> for Status {
    fn from(error: SessionError) -> Status {
        log_error("session error", &error);
        error.status()
    }
}

impl<'r, 'o: 'r> Responder<'r, 'o> for SessionError {
    fn respond_to(self, _: &'r Request<'_>) -> response::Result<'o> {
        log_error("session error", &self);
        Err(self.status())
    }
}

/// Logs an error with its whole source chain.
pub(crate) fn log_error(context: &str, error: &(dyn std::error::Error + 'static)) {
    rocket::error!("{context}: {}", chain(error));
}

/// An error and its sources, `: `-separated; a cause whose text the message
/// already holds (drivers often repeat their source's message) is said once.
pub(crate) fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    #[derive(Debug, thiserror::Error)]
    #[error("error returned from database: 1045 (28000): Access denied for user 'x'")]
    struct Driver(#[source] Server);

    #[derive(Debug, thiserror::Error)]
    #[error("1045 (28000): Access denied for user 'x'")]
    struct Server;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot open the session store at mysql://x@h/db")]
    struct Open(#[source] Driver);

    #[test]
    fn a_cause_is_said_once() {
        let text = super::chain(&Open(Driver(Server)));
        assert_eq!(
            text,
            "cannot open the session store at mysql://x@h/db: error returned from database: \
             1045 (28000): Access denied for user 'x'"
        );
        assert_eq!(text.matches("Access denied").count(), 1);
    }
}
