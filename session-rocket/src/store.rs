//! The stores compiled in, for an app that builds one in code
//! ([`Sessions::with_store`](crate::Sessions::with_store)), and the store
//! contract, for whoever writes one.
//!
//! A store is a type implementing [`SessionStore`]: a small, field-level,
//! object-safe trait. A new store is its own module plus one row in
//! session-core's registry of URL schemes; nothing in this crate names it.
//! Run session-core's behaviour suite against it (the
//! `store_conformance_tests!` macro, feature `testing`), as every store
//! here does.

pub use session_core::async_trait;
pub use session_core::store::{
    Changes, Ended, Expect, ExpiryUpdate, IndexTag, IndexUpdate, NewSession, PreviousKey, Record,
    Rename, Replaced, Saved, SessionIndexes, SessionStore, StoreStats, Timestamp, Validity,
    LIFETIME_PREFIX, PREVIOUS_KEY_GRACE,
};
pub use session_core::{BoxError, Error, Result, StoreKey};

#[cfg(any(feature = "mysql", feature = "sqlite", feature = "postgres"))]
pub use session_core::store::{SqlStore, TableNames};

#[cfg(feature = "memory")]
#[cfg_attr(docsrs, doc(cfg(feature = "memory")))]
pub use session_core::store::memory;
#[cfg(feature = "mysql")]
#[cfg_attr(docsrs, doc(cfg(feature = "mysql")))]
pub use session_core::store::mysql;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use session_core::store::postgres;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use session_core::store::redis;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use session_core::store::sqlite;
