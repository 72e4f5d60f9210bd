//! Work counters every store keeps, readable by the app and by tests.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// A snapshot of a store's work since it was built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Statements sent to the backend (for the memory store: operations).
    pub statements: u64,
    /// Field rows written (inserted or updated).
    pub rows_written: u64,
    /// Bytes of field values sent to the backend.
    pub bytes_written: u64,
    /// Writes run again whole after the database refused them for a
    /// concurrent one: a deadlock, a lock wait timeout, or on a
    /// multi-primary cluster (Galera) a certification conflict with a
    /// write committed on another node (all MySQL error 1213 / 1205).
    /// Their statements are counted in `statements` too.
    pub retries: u64,
    /// Writes whose reply was lost with their connection after the server
    /// had applied them, recognised as applied (and reported saved)
    /// instead of being sent again.
    pub recovered: u64,
    /// Field values returned by loads (a session's first load, the rest
    /// of it, a deferred field): how much of each session its requests
    /// fetch.
    pub fields_loaded: u64,
}

impl std::ops::Sub for StoreStats {
    type Output = StoreStats;

    fn sub(self, earlier: StoreStats) -> StoreStats {
        StoreStats {
            statements: self.statements - earlier.statements,
            rows_written: self.rows_written - earlier.rows_written,
            bytes_written: self.bytes_written - earlier.bytes_written,
            retries: self.retries - earlier.retries,
            recovered: self.recovered - earlier.recovered,
            fields_loaded: self.fields_loaded - earlier.fields_loaded,
        }
    }
}

tokio::task_local! {
    /// Statements the store call in progress on this task has sent.
    static STATEMENTS_IN_CALL: std::cell::Cell<u32>;
}

/// Runs one store call and counts the statements it sends (each counted
/// by [`Counters::statement`] on this task): what the call's span and the
/// request's statement histogram report.
pub(crate) async fn counting_statements<T>(call: impl std::future::Future<Output = T>) -> (T, u32) {
    STATEMENTS_IN_CALL
        .scope(std::cell::Cell::new(0), async {
            let result = call.await;
            (result, STATEMENTS_IN_CALL.with(std::cell::Cell::get))
        })
        .await
}

/// Lock-free counters behind [`StoreStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    statements: AtomicU64,
    rows_written: AtomicU64,
    bytes_written: AtomicU64,
    retries: AtomicU64,
    recovered: AtomicU64,
    fields_loaded: AtomicU64,
}

impl Counters {
    /// Counts one statement.
    pub(crate) fn statement(&self) {
        self.statements.fetch_add(1, Relaxed);
        let _ = STATEMENTS_IN_CALL.try_with(|n| n.set(n.get() + 1));
    }

    /// Counts a write run again after a conflict.
    pub(crate) fn retry(&self) {
        self.retries.fetch_add(1, Relaxed);
    }

    /// Counts a write found applied after its reply was lost.
    pub(crate) fn recovered(&self) {
        self.recovered.fetch_add(1, Relaxed);
    }

    /// Counts field values a load returned.
    pub(crate) fn loaded(&self, fields: usize) {
        self.fields_loaded.fetch_add(fields as u64, Relaxed);
    }

    /// Counts written field rows and their bytes.
    pub(crate) fn wrote<'a>(&self, fields: impl IntoIterator<Item = &'a [u8]>) {
        let (rows, bytes) = fields
            .into_iter()
            .fold((0, 0), |(r, b), v| (r + 1, b + v.len() as u64));
        self.rows_written.fetch_add(rows, Relaxed);
        self.bytes_written.fetch_add(bytes, Relaxed);
    }

    /// The current values.
    pub(crate) fn snapshot(&self) -> StoreStats {
        StoreStats {
            statements: self.statements.load(Relaxed),
            rows_written: self.rows_written.load(Relaxed),
            bytes_written: self.bytes_written.load(Relaxed),
            retries: self.retries.load(Relaxed),
            recovered: self.recovered.load(Relaxed),
            fields_loaded: self.fields_loaded.load(Relaxed),
        }
    }
}
