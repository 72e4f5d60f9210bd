//! One field's decoded value, materialised on first use.

use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering::Relaxed};
use std::sync::OnceLock;

use crate::codec::{Codec, Storable};
use crate::error::{BoxError, Result};
use crate::state::{Change, Known, Origin, SessionState};

/// The decoded value of one field. The generated handle holds one per field
/// and passes its index; all logic lives here.
///
/// A `OnceLock` lets `x(&self)` decode through a shared reference (the
/// handle is shared across `.await`s of one handler), while `x_mut` and
/// `set_x` get plain `&mut` access.
pub struct Slot<T> {
    value: OnceLock<T>,
    /// Where the value came from (an [`Origin`] as its `u8`): the fallback
    /// for stored bytes that did not decode, or bytes of an earlier type
    /// converted, are not what is stored.
    origin: AtomicU8,
}

const STORED: u8 = Origin::Stored as u8;
const FELL_BACK: u8 = Origin::FellBack as u8;

impl<T> Slot<T> {
    /// An empty slot: nothing decoded yet.
    pub const fn new() -> Self {
        Slot {
            value: OnceLock::new(),
            origin: AtomicU8::new(STORED),
        }
    }
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Slot::new()
    }
}

/// Never the value: `<redacted>` once it was decoded (or set) in this
/// request, `<not decoded>` before.
impl<T> fmt::Debug for Slot<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.value.get() {
            Some(_) => "<redacted>",
            None => "<not decoded>",
        })
    }
}

impl<T> Slot<T>
where
    T: Storable,
{
    /// The value, loading the session and decoding the field on first use.
    /// Never marks the field changed.
    ///
    /// # Errors
    /// A store error on the first load; [`Error::Decode`](crate::Error::Decode)
    /// under `on_decode_error = "error"`.
    pub async fn get<C: Codec>(
        &self,
        state: &SessionState,
        index: usize,
        default: fn() -> T,
    ) -> Result<&T> {
        if let Some(value) = self.value.get() {
            return Ok(value);
        }
        let (value, origin) = state.decode::<C, T>(index, default).await?;
        let value = self.value.get_or_init(|| value);
        if origin.is_not_stored() {
            self.origin.store(origin as u8, Relaxed);
        }
        Ok(value)
    }

    /// The value, mutably: loads and decodes like [`get`](Self::get), then
    /// marks the field written. Flush compares the bytes, so a borrow that
    /// changes nothing writes nothing; that includes a field whose stored
    /// bytes no longer decode, whose bytes stay as they are until the value
    /// really changes.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub async fn get_mut<C: Codec>(
        &mut self,
        state: &mut SessionState,
        index: usize,
        default: fn() -> T,
    ) -> Result<&mut T> {
        if self.value.get().is_none() {
            let (value, origin) = state.decode::<C, T>(index, default).await?;
            self.value = OnceLock::from(value);
            *self.origin.get_mut() = origin as u8;
        }
        let origin = *self.origin.get_mut();
        if origin == FELL_BACK {
            state.set_undecodable(index);
        }
        if state.change(index) == Change::Clean
            && (origin != STORED || state.known(index) == Known::Absent)
        {
            // The value this borrow starts from is not the stored bytes
            // (a default, a fallback, a value converted from an earlier
            // type): remember its encoding, so leaving it as it is writes
            // nothing.
            let baseline = self.value.get().and_then(|v| v.encode_with::<C>().ok());
            state.set_baseline(index, baseline);
        }
        state.mark(index, Change::Written);
        Ok(self.filled())
    }

    /// Changes a versioned field with `change` and writes it at once with a
    /// compare-and-set, rerunning `change` on the fresh value after a
    /// conflict (see `update_x`).
    ///
    /// # Errors
    /// As [`get`](Self::get); [`Error::Conflict`](crate::Error::Conflict)
    /// when the retries run out; [`Error::Interrupted`](crate::Error::Interrupted)
    /// when the session ended meanwhile.
    pub async fn update<C: Codec, R>(
        &mut self,
        state: &mut SessionState,
        index: usize,
        default: fn() -> T,
        mut change: impl FnMut(&mut T) -> R + Send,
    ) -> Result<R> {
        let (value, out) = state.update::<C, T, R>(index, default, &mut change).await?;
        self.value = OnceLock::from(value);
        *self.origin.get_mut() = STORED;
        Ok(out)
    }

    /// Takes a `#[session(flash)]` value: one set earlier in this request
    /// (then never stored; a stored one it replaced is removed at the
    /// flush), else the stored one, removed at once (see
    /// `SessionState::take_flash`). The slot holds the default afterwards.
    ///
    /// # Errors
    /// A store error; a decode error under `on_decode_error = "error"`;
    /// [`Error::Interrupted`](crate::Error::Interrupted) when the session
    /// ended meanwhile.
    pub async fn take<C: Codec>(
        &mut self,
        state: &mut SessionState,
        index: usize,
        default: fn() -> T,
    ) -> Result<Option<T>> {
        let pending = std::mem::replace(&mut self.value, OnceLock::from(default()));
        *self.origin.get_mut() = STORED;
        match state.change(index) {
            Change::Written => {
                state.mark(index, Change::Removed);
                Ok(pending.into_inner())
            }
            Change::Removed => Ok(None),
            Change::Clean => state.take_flash::<C, T>(index, default).await,
        }
    }

    /// Replaces the value without loading anything (a blind write).
    pub fn set(&mut self, state: &mut SessionState, index: usize, value: T) {
        self.value = OnceLock::from(value);
        *self.origin.get_mut() = STORED;
        // An explicit set is a change, even to the value a borrow started
        // from.
        state.set_baseline(index, None);
        state.mark(index, Change::Written);
    }

    /// Resets the value to `default` and deletes the stored field at flush.
    pub fn remove(&mut self, state: &mut SessionState, index: usize, default: fn() -> T) {
        self.value = OnceLock::from(default());
        *self.origin.get_mut() = STORED;
        state.mark(index, Change::Removed);
    }

    /// The value's bytes, if it was materialised in this request.
    pub fn encode<C: Codec>(&self) -> Option<Result<Vec<u8>, BoxError>> {
        self.value.get().map(|v| v.encode_with::<C>())
    }

    fn filled(&mut self) -> &mut T {
        match self.value.get_mut() {
            Some(value) => value,
            // `get_mut` above always fills the cell before calling this.
            None => unreachable!("session slot read before it was filled"),
        }
    }
}
