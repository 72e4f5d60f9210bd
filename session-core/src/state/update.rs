//! `update_x`: a versioned field changed by a closure and written at once
//! with a compare-and-set, retried on conflict.
//!
//! The closure runs on the value as stored; the write succeeds only if the
//! field's version is still the one that value came with. On a conflict the
//! field alone is reloaded and the closure runs again on the fresh value, so
//! concurrent updates of one field all take effect, in some order, whatever
//! the store (each store's compare-and-set is atomic).

use std::time::Duration;

use crate::codec::{Codec, Storable};
use crate::error::{Error, Result};
use crate::state::sealed;
use crate::state::{index_tags, Change, Known, SessionState, Stage};
use crate::store::{Changes, Expect, IndexUpdate, Saved};

/// How many times `update_x` tries before it reports the conflict.
const ATTEMPTS: u32 = 64;

/// The longest pause between two tries. The pause is random, in a window
/// that doubles with each conflict up to this (binary exponential
/// backoff): requests racing on one field spread out until they stop
/// colliding, so 32 requests updating one field at once all get through
/// (tested over HTTP).
const MAX_PAUSE_MS: u64 = 64;

impl SessionState {
    /// Runs `change` on field `index` and writes the result at once if the
    /// field's version is still the one it was read at; on a conflict,
    /// reloads the field and runs `change` again (up to [`ATTEMPTS`]).
    /// Returns the value as written and what the last run of `change`
    /// returned.
    ///
    /// Outside a live session (none yet, a regenerate pending), there is no
    /// one to race: the change is made in memory and written by the flush,
    /// which checks the version. After a `clear()` in this request, too:
    /// the save that stores the clear deletes every field first, so a
    /// write made now would be lost; the change starts from the cleared
    /// field's default and goes with the clear.
    pub(crate) async fn update<C: Codec, T: Storable, R>(
        &mut self,
        index: usize,
        default: fn() -> T,
        change: &mut (dyn FnMut(&mut T) -> R + Send),
    ) -> Result<(T, R)> {
        let name = self.schema[index].name;
        // Load once: it settles whether there is a live session.
        self.bytes(index).await?;
        let key = match &self.request.life().stage {
            Stage::Live { key, .. } | Stage::Followed { key } => Some(*key),
            Stage::Destroyed => return Err(Error::WriteAfterDestroy { field: name }),
            Stage::Ended => return Err(Error::Interrupted),
            _ => None,
        };
        let key = key.filter(|_| !self.request.life().clear);
        let Some(key) = key else {
            let (mut value, _) = self.decode::<C, T>(index, default).await?;
            let out = change(&mut value);
            self.mark(index, Change::Written);
            return Ok((value, out));
        };
        let manager = self.request.manager().clone();
        let store = self.request.store().clone();
        // This process's updates of the field take turns; other processes
        // race through the compare-and-set. After waiting for the turn,
        // the value loaded before is likely stale: reload it first rather
        // than spend a write on a sure conflict.
        let turn = manager.lock_field(key, name).await;
        if turn.waited() {
            self.reload(index).await?;
        }
        let mut seed = jitter_seed(&key.as_bytes()[..8]);
        for attempt in 0..ATTEMPTS {
            let (mut value, origin) = self.decode::<C, T>(index, default).await?;
            let out = change(&mut value);
            let bytes = value.encode_with::<C>().map_err(|source| Error::Encode {
                field: name,
                source,
            })?;
            let stored = match self.known(index) {
                Known::Bytes(b) => Some(b == bytes.as_slice()),
                _ => None,
            };
            if stored == Some(true) && !origin.is_not_stored() {
                // Nothing to write: the value is as stored.
                return Ok((value, out));
            }
            self.check_field_size(name, bytes.len())?;
            let version = self.version(index).unwrap_or(None);
            let expect = Expect { name, version };
            let entry = if self.schema[index].indexed {
                let sealer = self.request.manager().sealer();
                vec![IndexUpdate {
                    name,
                    tag: index_tags(sealer, name, &bytes).into_iter().next(),
                }]
            } else {
                Vec::new()
            };
            let mut changes = Changes {
                upsert: vec![(name, bytes)],
                expect: vec![expect],
                index: entry,
                ..Changes::default()
            };
            // A value read from an old name moves to the stored one.
            self.move_aliases(&mut changes, &[index]);
            // A write restarts the field's lifetime.
            if let Some(lifetime) = self.schema[index].lifetime {
                let seconds = i64::try_from(lifetime.seconds).unwrap_or(i64::MAX / 4);
                let until = self.request.now().saturating_add(seconds);
                changes
                    .upsert
                    .push((lifetime.entry, until.to_string().into_bytes()));
            }
            let at = self.request.validity();
            let sealed = self.seal_changes(&key, &changes, super::sealed::SealFor::Loaded)?;
            match self
                .request
                .call(
                    "save",
                    store.save(&key, sealed.as_ref().unwrap_or(&changes), at),
                )
                .await?
            {
                Saved::Saved => {
                    let (_, bytes) = changes.upsert.swap_remove(0);
                    self.set_written(index, Some(bytes));
                    self.set_version(index, Some(expect.next()));
                    // What the handler changed before is now stored.
                    if self.change(index) == Change::Written {
                        self.mark(index, Change::Clean);
                    }
                    return Ok((value, out));
                }
                Saved::Gone | Saved::Moved => {
                    self.request.life().stage = Stage::Ended;
                    return Err(Error::Interrupted);
                }
                Saved::Conflict => {
                    tracing::debug!(
                        field = name,
                        attempt,
                        "versioned field changed meanwhile; reloading it"
                    );
                    self.reload(index).await?;
                    // The first retry goes at once (the reload took a round
                    // trip already); later ones back off.
                    if attempt > 0 {
                        let window = (1u64 << attempt.min(6)).min(MAX_PAUSE_MS) + 1;
                        let pause = next_jitter(&mut seed) % window;
                        tokio::time::sleep(Duration::from_millis(pause)).await;
                    }
                }
            }
        }
        tracing::warn!(
            field = name,
            attempts = ATTEMPTS,
            "versioned field kept changing; giving up"
        );
        Err(Error::Conflict { field: name })
    }

    /// Reloads field `index` alone (bytes and version) after a conflict.
    pub(super) async fn reload(&mut self, index: usize) -> Result<()> {
        let Some(key) = self.request.read_key() else {
            return Ok(());
        };
        let skip: Vec<&str> = self
            .schema
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != index)
            .map(|(_, f)| f.name)
            .collect();
        let at = self.request.validity();
        let store = self.request.store().clone();
        match self
            .request
            .call("load", store.load(&key, &skip, at))
            .await?
        {
            Some(record) => {
                let name = self.schema[index].name;
                let stored = record.versions.iter().find(|(n, _)| n == name);
                let version = stored.map_or(0, |(_, v)| *v);
                // A field past its lifetime is not returned, but its
                // version is: a write of it expects that version.
                let expired = stored.is_some() && !record.fields.iter().any(|(n, _)| n == name);
                let manager = self.request.manager().clone();
                let sealer = manager.sealer();
                let previous = sealed::record_keys(sealer, &key, &record.fields);
                let bytes = record
                    .fields
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone());
                let present = bytes.is_some();
                self.set_written(index, bytes);
                if !present && !self.schema[index].aliases.is_empty() {
                    self.reload_alias(index, &record);
                    if self.aliased(index).is_some() {
                        return Ok(());
                    }
                }
                if let Some(sealer) = sealer {
                    if let Some(Some(stored)) = self.fields[index].written.take() {
                        let seals = sealed::seals(sealer, &key, &previous);
                        let plain = self.open_value(&seals, index, stored);
                        self.fields[index].written = Some(Some(plain));
                    }
                }
                self.set_version(index, (present || expired).then_some(version));
                Ok(())
            }
            None => {
                self.request.life().stage = Stage::Ended;
                Err(Error::Interrupted)
            }
        }
    }
}

/// A seed for the retry pauses: requests racing on one field must not
/// pause in step. Not secret; the clock and the session key suffice.
fn jitter_seed(key: &[u8]) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    key.iter().fold(u64::from(nanos) | 1, |a, &b| {
        a.rotate_left(8) ^ u64::from(b)
    })
}

/// xorshift64: the next pause's randomness.
fn next_jitter(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}
