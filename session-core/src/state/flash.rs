//! `#[session(flash)]`: a value set for the next request, taken once.
//!
//! Taking removes the field at once with a compare-and-set of the version
//! it was read at, so of two requests taking it at the same time exactly
//! one gets it, whatever the store. A flash field is versioned for that
//! reason: its writes bump its version, so a take never removes a message
//! set after it read.

use crate::codec::{Codec, Storable};
use crate::error::{Error, Result};
use crate::state::{Change, SessionState, Stage};
use crate::store::{Changes, Expect, Saved};

/// How many times a take tries when the field keeps changing under it (a
/// new message set each time it is about to remove one).
const ATTEMPTS: u32 = 16;

impl SessionState {
    /// Takes flash field `index` from the store: `None` when it is absent
    /// (or the request has no session), else its value, removed by this
    /// call. A value that no longer decodes is removed too and taken as
    /// `None` (under `on_decode_error = "default"`, with the warning).
    pub(crate) async fn take_flash<C: Codec, T: Storable>(
        &mut self,
        index: usize,
        default: fn() -> T,
    ) -> Result<Option<T>> {
        let name = self.schema[index].name;
        for _ in 0..ATTEMPTS {
            if self.bytes(index).await?.is_none() {
                return Ok(None);
            }
            let key = match &self.request.life().stage {
                Stage::Live { key, .. } | Stage::Followed { key } => *key,
                Stage::Destroyed => return Err(Error::WriteAfterDestroy { field: name }),
                Stage::Ended => return Err(Error::Interrupted),
                _ => return Ok(None),
            };
            let (value, origin) = self.decode::<C, T>(index, default).await?;
            // Its lifetime entry goes with it, if it has one.
            let entry = self.schema[index].lifetime.map(|l| l.entry);
            let changes = Changes {
                remove: std::iter::once(name).chain(entry).collect(),
                expect: vec![Expect {
                    name,
                    version: self.version(index).unwrap_or(None),
                }],
                ..Changes::default()
            };
            let store = self.request.store().clone();
            let at = self.request.validity();
            match self
                .request
                .call("save", store.save(&key, &changes, at))
                .await?
            {
                Saved::Saved => {
                    self.set_written(index, None);
                    self.set_version(index, None);
                    self.mark(index, Change::Clean);
                    return Ok((origin != super::Origin::FellBack).then_some(value));
                }
                // Another request took it, or set a new one: look again.
                Saved::Conflict => self.reload(index).await?,
                // A token rotated meanwhile: the session under its new key.
                Saved::Moved if self.rotates() => {
                    if !matches!(
                        self.after_miss(key).await?,
                        super::rotation::Miss::Follow(_)
                    ) {
                        self.request.life().stage = Stage::Ended;
                        return Err(Error::Interrupted);
                    }
                    self.reload(index).await?;
                }
                Saved::Gone | Saved::Moved => {
                    self.request.life().stage = Stage::Ended;
                    return Err(Error::Interrupted);
                }
            }
        }
        tracing::warn!(
            field = name,
            attempts = ATTEMPTS,
            "a flash field kept changing while it was taken; giving up"
        );
        Err(Error::Conflict { field: name })
    }
}
