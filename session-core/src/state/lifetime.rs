//! Fields with a lifetime of their own (`#[session(ttl = "10m")]`): each
//! write stores, beside the value and in the same save, when it expires
//! (the reserved field [`LIFETIME_PREFIX`]`name`, in the clear); stores
//! never return a value past it, and this layer never uses one either. A
//! `sliding` field's clock restarts when a request reads it, at most once
//! per half its lifetime.

use crate::state::{Change, FieldDef, SessionState};
use crate::store::{Changes, Timestamp, LIFETIME_PREFIX};

/// One empty slot per field when the type has a field with a lifetime,
/// none otherwise.
pub(super) fn slots(schema: &[FieldDef]) -> Box<[Option<Timestamp>]> {
    if schema.iter().any(|f| f.lifetime.is_some()) {
        vec![None; schema.len()].into_boxed_slice()
    } else {
        Box::default()
    }
}

/// Records a loaded lifetime entry `name` = `value` in `lifetimes`.
pub(super) fn note(
    schema: &[FieldDef],
    lifetimes: &mut [Option<Timestamp>],
    name: &str,
    value: &[u8],
) {
    if !name.starts_with(LIFETIME_PREFIX) {
        return;
    }
    let Some(index) = schema
        .iter()
        .position(|f| f.lifetime.is_some_and(|l| l.entry == name))
    else {
        return;
    };
    lifetimes[index] = std::str::from_utf8(value).ok().and_then(|t| t.parse().ok());
}

/// Forgets the loaded values whose lifetime is over at `now`.
pub(super) fn drop_expired(
    values: &mut [Option<Vec<u8>>],
    lifetimes: &[Option<Timestamp>],
    now: Timestamp,
) {
    for (value, until) in values.iter_mut().zip(lifetimes) {
        if until.is_some_and(|until| until <= now) {
            *value = None;
        }
    }
}

impl SessionState {
    /// When field `index` expires as loaded in this request, if it has a
    /// lifetime entry.
    fn loaded_lifetime(&self, index: usize) -> Option<Timestamp> {
        let lifetimes = |loaded: &super::Loaded| {
            loaded
                .as_ref()
                .and_then(|f| f.lifetimes.get(index).copied().flatten())
        };
        match self.record.get()? {
            Some(fields) if !fields.has(index) => self.rest.get().and_then(lifetimes),
            record => lifetimes(record),
        }
    }

    /// The stored version of a field that reads as absent because its
    /// lifetime is over: its next write must expect that version (the
    /// store still holds it); `None` for a field truly absent.
    pub(super) fn expired_version(&self, index: usize) -> Option<u64> {
        if self.fields.get(index).is_some_and(|f| f.written.is_some()) {
            return None;
        }
        let (_, version) = self.loaded(index)?;
        let expired = self
            .loaded_lifetime(index)
            .is_some_and(|until| until <= self.request.now());
        (expired && version > 0).then_some(version)
    }

    /// Notes a read of field `index`: a `sliding` one's clock restarts.
    pub(super) fn note_read(&self, index: usize) {
        if self.schema[index].lifetime.is_some_and(|l| l.sliding) {
            super::note_once(&self.slid, index);
        }
    }

    /// Adds to a plan's `changes` what the fields' lifetimes need: for each
    /// field with one that `current` says this request wrote, its new
    /// expiry (any write restarts the clock, one of the same value
    /// included); for one it removed, the removal of its entry; for a
    /// `sliding` one it read with less than half its lifetime left, a new
    /// expiry alone. `removed`: the fields whose removal the plan holds.
    pub(super) fn plan_lifetimes(
        &self,
        changes: &mut Changes,
        current: impl Fn(usize) -> Change,
        removed: &[usize],
    ) {
        let now = self.request.now();
        let slid = self
            .slid
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        for (index, field) in self.schema.iter().enumerate() {
            let Some(lifetime) = field.lifetime else {
                continue;
            };
            let seconds = i64::try_from(lifetime.seconds).unwrap_or(i64::MAX / 4);
            let until = || now.saturating_add(seconds).to_string().into_bytes();
            match current(index) {
                Change::Written => changes.upsert.push((lifetime.entry, until())),
                Change::Removed if removed.contains(&index) => changes.remove.push(lifetime.entry),
                Change::Removed => {}
                Change::Clean => {
                    let present = matches!(self.known(index), super::Known::Bytes(_));
                    let half_gone = self
                        .loaded_lifetime(index)
                        .is_none_or(|t| t - now < seconds / 2);
                    if slid.contains(&index) && present && half_gone {
                        changes.upsert.push((lifetime.entry, until()));
                    }
                }
            }
        }
    }
}
