//! What operators see: metrics through the [`metrics`] facade and tracing
//! spans, both free when nothing listens (no recorder installed, no
//! subscriber interested in the level).
//!
//! The library never installs a recorder; the application picks its
//! exporter. Names follow Prometheus practice (`_total` counters, base
//! units in the name); labels are low-cardinality only: `store`,
//! `operation`, `outcome`, `cause`, `reason`. No label, span field or log
//! line carries a token, a store key, a field value or a user: sessions
//! are named by their [`SessionId`](crate::SessionId) at most.
//! The README's "Operating" section lists every name.

use std::future::Future;
use std::time::Instant;

use metrics::histogram;

use crate::error::Result;
use crate::store::{Record, Saved};

pub(crate) mod metric;

pub use metric::*;

/// A decode error as a log may show it: serde_json's category and
/// position, never its message, which quotes the stored value
/// (`invalid type: string "alice", expected u64`).
pub(crate) fn redacted(error: &(dyn std::error::Error + 'static)) -> String {
    match error.downcast_ref::<serde_json::Error>() {
        Some(e) => format!(
            "{:?} error at line {} column {}",
            e.classify(),
            e.line(),
            e.column()
        ),
        None => "the codec refused the stored bytes".into(),
    }
}

/// What a store call's result says for its span and its metrics.
pub(crate) trait CallOutcome {
    /// `outcome` label and field.
    fn outcome(&self) -> &'static str;
    /// Bytes of field values it returned, if it returns values.
    fn bytes(&self) -> Option<usize> {
        None
    }
}

impl CallOutcome for Option<Record> {
    fn outcome(&self) -> &'static str {
        if self.is_some() {
            "found"
        } else {
            "missing"
        }
    }
    fn bytes(&self) -> Option<usize> {
        self.as_ref()
            .map(|r| r.fields.iter().map(|(_, v)| v.len()).sum())
    }
}

impl CallOutcome for Option<crate::store::PreviousKey> {
    fn outcome(&self) -> &'static str {
        match self {
            None => "missing",
            Some(p) if p.within_grace => "found",
            Some(_) => "past_grace",
        }
    }
}

impl CallOutcome for Option<Vec<u8>> {
    fn outcome(&self) -> &'static str {
        if self.is_some() {
            "found"
        } else {
            "missing"
        }
    }
    fn bytes(&self) -> Option<usize> {
        self.as_ref().map(Vec::len)
    }
}

impl CallOutcome for Saved {
    fn outcome(&self) -> &'static str {
        match self {
            Saved::Saved => "saved",
            Saved::Gone => "gone",
            Saved::Moved => "moved",
            Saved::Conflict => "conflict",
        }
    }
}

impl CallOutcome for bool {
    fn outcome(&self) -> &'static str {
        if *self {
            "done"
        } else {
            "none"
        }
    }
}

impl<T> CallOutcome for Vec<T> {
    fn outcome(&self) -> &'static str {
        "done"
    }
}

/// Runs one store call observed: a `session.store` span (debug level:
/// store, operation, statements, bytes, outcome), its latency in
/// [`STORE_DURATION`], the session's size for loads, and its statements
/// added to `tally` (the request's count). A warning when it took longer
/// than `slow` (`slow_store_call_ms`).
pub(crate) async fn store_call<T: CallOutcome>(
    store: &'static str,
    operation: &'static str,
    slow: Option<std::time::Duration>,
    tally: &std::sync::atomic::AtomicU32,
    call: impl Future<Output = Result<T>>,
) -> Result<T> {
    let span = tracing::debug_span!(
        "session.store",
        db.system.name = store,
        db.operation.name = operation,
        statements = tracing::field::Empty,
        bytes = tracing::field::Empty,
        outcome = tracing::field::Empty,
    );
    let started = Instant::now();
    let (result, statements) =
        crate::store::counting_statements(tracing::Instrument::instrument(call, span.clone()))
            .await;
    let elapsed = started.elapsed();
    tally.fetch_add(statements, std::sync::atomic::Ordering::Relaxed);
    let outcome = match &result {
        Ok(value) => value.outcome(),
        Err(e) if e.is_unavailable() => "unavailable",
        Err(_) => "error",
    };
    let bytes = result.as_ref().ok().and_then(CallOutcome::bytes);
    histogram!(STORE_DURATION, "store" => store, "operation" => operation, "outcome" => outcome)
        .record(elapsed.as_secs_f64());
    if let (Some(bytes), "found", "load" | "load_only") = (bytes, outcome, operation) {
        histogram!(SESSION_SIZE, "store" => store).record(bytes as f64);
    }
    if !span.is_disabled() {
        span.record("statements", statements);
        span.record("outcome", outcome);
        if let Some(bytes) = bytes {
            span.record("bytes", bytes);
        }
    }
    if slow.is_some_and(|slow| elapsed >= slow) {
        tracing::warn!(
            store,
            operation,
            outcome,
            elapsed_ms = elapsed.as_millis() as u64,
            "slow session store call (over `slow_store_call_ms`)"
        );
    }
    result
}
