//! One field's decoded value, materialised on first use.

use std::fmt;
use std::sync::OnceLock;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::codec::Codec;
use crate::error::{BoxError, Result};
use crate::state::{Change, Known, SessionState};

/// The decoded value of one field. The generated handle holds one per field
/// and passes its index; all logic lives here.
///
/// A `OnceLock` lets `x(&self)` decode through a shared reference (the
/// handle is shared across `.await`s of one handler), while `x_mut` and
/// `set_x` get plain `&mut` access.
pub struct Slot<T> {
    value: OnceLock<T>,
}

impl<T> Slot<T> {
    /// An empty slot: nothing decoded yet.
    pub const fn new() -> Self {
        Slot {
            value: OnceLock::new(),
        }
    }
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Slot::new()
    }
}

impl<T> fmt::Debug for Slot<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Slot")
            .field("decoded", &self.value.get().is_some())
            .finish()
    }
}

impl<T> Slot<T>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
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
        let value = state.decode::<C, T>(index, default).await?;
        Ok(self.value.get_or_init(|| value))
    }

    /// The value, mutably: loads and decodes like [`get`](Self::get), then
    /// marks the field written. Flush compares the bytes, so a borrow that
    /// changes nothing writes nothing.
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
            let value = state.decode::<C, T>(index, default).await?;
            self.value = OnceLock::from(value);
        }
        if state.change(index) == Change::Clean {
            if let (Known::Absent, Some(value)) = (state.known(index), self.value.get()) {
                if let Ok(bytes) = C::encode(value) {
                    state.set_baseline(index, bytes);
                }
            }
        }
        state.mark(index, Change::Written);
        Ok(self.filled())
    }

    /// Replaces the value without loading anything (a blind write).
    pub fn set(&mut self, state: &mut SessionState, index: usize, value: T) {
        self.value = OnceLock::from(value);
        state.mark(index, Change::Written);
    }

    /// Resets the value to `default` and deletes the stored field at flush.
    pub fn remove(&mut self, state: &mut SessionState, index: usize, default: fn() -> T) {
        self.value = OnceLock::from(default());
        state.mark(index, Change::Removed);
    }

    /// The value's bytes, if it was materialised in this request.
    pub fn encode<C: Codec>(&self) -> Option<Result<Vec<u8>, BoxError>> {
        self.value.get().map(|v| C::encode(v))
    }

    fn filled(&mut self) -> &mut T {
        match self.value.get_mut() {
            Some(value) => value,
            // `get_mut` above always fills the cell before calling this.
            None => unreachable!("session slot read before it was filled"),
        }
    }
}
