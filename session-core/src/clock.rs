//! The wall clock, in the seconds every timestamp of the crate uses.

/// The current time in seconds since the Unix epoch.
pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}
