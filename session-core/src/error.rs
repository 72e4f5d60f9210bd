//! The one error type of the crate.

use std::error::Error as StdError;

/// A boxed error from a codec or a store backend, kept as a source so the
/// whole chain (a pool timeout, a constraint violation, a serde message)
/// stays available to whoever logs it.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong with a session.
///
/// Messages are lowercase and name the field or the setting involved; causes
/// are kept as [`source`](std::error::Error::source)s, never flattened into
/// strings.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A field's value could not be turned into bytes by the codec.
    #[error("failed to encode session field `{field}`")]
    Encode {
        /// The field's stored name.
        field: &'static str,
        /// What the codec reported, without the value (serde_json's
        /// category and position: its own message may quote the stored
        /// value).
        #[source]
        source: BoxError,
    },

    /// A stored field no longer decodes into its type and
    /// `on_decode_error = "error"` is configured.
    #[error("failed to decode session field `{field}` (set `on_decode_error = \"default\"` to fall back to the field's default)")]
    Decode {
        /// The field's stored name.
        field: &'static str,
        /// The codec's error.
        #[source]
        source: BoxError,
    },

    /// An encoded field is larger than `max_field_bytes`; nothing was written.
    #[error(
        "session field `{field}` is {size} bytes, over the `max_field_bytes` limit of {limit}"
    )]
    FieldTooLarge {
        /// The field's stored name.
        field: &'static str,
        /// The encoded size.
        size: usize,
        /// The configured limit.
        limit: usize,
    },

    /// The session's known fields add up to more than `max_session_bytes`;
    /// nothing was written.
    #[error("session is {size} bytes, over the `max_session_bytes` limit of {limit}")]
    SessionTooLarge {
        /// The encoded size of every known field after this request's changes.
        size: usize,
        /// The configured limit.
        limit: usize,
    },

    /// The session would not fit in its cookie (sessions kept in cookies,
    /// `url = "cookie"`: the whole session is sealed into the cookie, and browsers keep about
    /// 4 KB per cookie); nothing was saved and the browser keeps its
    /// previous cookie. Keep less in the session, or use a server-side
    /// store.
    #[error(
        "the session needs a {size}-byte cookie, over the browsers' limit of {limit} bytes per \
         cookie (the cookie store keeps the whole session in it): keep less in the session, or \
         use a server-side store"
    )]
    CookieTooLarge {
        /// The cookie's size (name, `=` and sealed value) after this
        /// request's changes.
        size: usize,
        /// The limit, [`COOKIE_LIMIT`](crate::carrier::COOKIE_LIMIT).
        limit: usize,
    },

    /// The store could not be reached or did not answer in time (connection
    /// refused, pool timeout, lock wait timeout after retries). Maps to
    /// `503 Service Unavailable`.
    #[error("session store is unavailable")]
    Unavailable(#[source] BoxError),

    /// The store answered with an error that retrying will not fix (a
    /// missing table, a permission error). Maps to `500 Internal Server Error`.
    #[error("session store failed")]
    Backend(#[source] BoxError),

    /// The session was destroyed by a concurrent request (a logout) while this
    /// request ran; its changes were dropped so the logout stays in force.
    #[error("session was destroyed by a concurrent request; its changes were not saved")]
    Interrupted,

    /// A versioned field (`#[session(versioned)]`) was changed by a
    /// concurrent request since this one read it; nothing of this
    /// request's save was written (its other fields included). Maps to
    /// `409 Conflict`. `update_x` retries on its own and reports this only
    /// when its retries run out.
    #[error("session field `{field}` was changed by a concurrent request; nothing was saved")]
    Conflict {
        /// The versioned field's stored name (the first one, when the save
        /// wrote several).
        field: &'static str,
    },

    /// The session took a value of a `#[session(index, max_sessions = N,
    /// when_full = "refuse")]` field that already had its `max` live
    /// sessions: the session was ended (its cookie is removed). Maps to
    /// `409 Conflict`.
    #[error("session field `{field}` already has its {max} live sessions; this one was refused")]
    TooManySessions {
        /// The indexed field's stored name.
        field: &'static str,
        /// Its `max_sessions`.
        max: u32,
    },

    /// The store could not be opened or prepared at startup; the message
    /// names where (password masked) and what failed.
    #[error("{0}")]
    Open(String, #[source] BoxError),

    /// A field was written after `destroy()` in the same request: there is
    /// no session left to write it to. Use `start_over()` to end the
    /// session and go on with a fresh one.
    #[error("session field `{field}` was written after destroy(): use start_over() to end the session and continue on a fresh one")]
    WriteAfterDestroy {
        /// The field's stored name.
        field: &'static str,
    },

    /// A configuration value is invalid.
    #[error("invalid session configuration: {0}")]
    Config(String),

    /// The operating system's random source failed.
    #[error("the operating system's random number source failed")]
    Random(#[source] getrandom::Error),
}

impl Error {
    /// Whether this error means the store is unreachable, so the right answer
    /// is `503 Service Unavailable` rather than `500`.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Error::Unavailable(_))
    }

    /// Whether a concurrent request is the cause (the session ended, or a
    /// versioned field changed): the right answer is `409 Conflict`.
    pub fn is_conflict(&self) -> bool {
        matches!(
            self,
            Error::Interrupted | Error::Conflict { .. } | Error::TooManySessions { .. }
        )
    }

    #[doc(hidden)]
    pub fn config(message: impl Into<String>) -> Self {
        Error::Config(message.into())
    }
}
