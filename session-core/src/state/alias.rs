//! Old stored names (`#[session(alias = "old")]`): a field whose stored
//! name is absent reads the value stored under one of its old names
//! (opened with that name, the one it was sealed under), and its next
//! write or removal deletes the old name in the same save (with a
//! compare-and-set of the old name's version for a versioned field), so
//! the value moves exactly once and the stored name wins from then on.

use crate::sealing::SessionSeal;
use crate::state::{FieldDef, SessionState};
use crate::store::{Changes, Expect, IndexUpdate};

/// One empty slot per field when the type has a field with an alias, none
/// otherwise.
pub(super) fn slots(schema: &[FieldDef]) -> Box<[Option<(&'static str, u64)>]> {
    if schema.iter().any(|f| !f.aliases.is_empty()) {
        vec![None; schema.len()].into_boxed_slice()
    } else {
        Box::default()
    }
}

impl SessionState {
    /// Fills, from the loaded entries `old` that are not fields of this
    /// type, each field whose stored name was absent and one of whose
    /// aliases is there (the first in the attribute's order).
    pub(super) fn take_aliases(
        &self,
        values: &mut [Option<Vec<u8>>],
        aliased: &mut [Option<(&'static str, u64)>],
        mut old: Vec<(String, Vec<u8>)>,
        versions: &[(String, u64)],
        seals: Option<&[SessionSeal<'_>]>,
    ) {
        for (index, field) in self.schema.iter().enumerate() {
            if values[index].is_some() {
                continue;
            }
            for &alias in field.aliases {
                let Some(at) = old.iter().position(|(name, _)| name == alias) else {
                    continue;
                };
                let (_, bytes) = old.swap_remove(at);
                let value = match seals {
                    Some(seals) => self.open_value_as(seals, index, alias, bytes),
                    None => bytes,
                };
                let version = versions
                    .iter()
                    .find(|(name, _)| name == alias)
                    .map_or(0, |(_, v)| *v);
                values[index] = Some(value);
                aliased[index] = Some((alias, version));
                break;
            }
        }
    }

    /// The old name field `index`'s value was read from in this request,
    /// and its version; `None` once the request wrote the field (or when
    /// it was read under its stored name).
    pub(crate) fn aliased(&self, index: usize) -> Option<(&'static str, u64)> {
        if let Some(field) = self.fields.get(index).filter(|f| f.written.is_some()) {
            return field.alias;
        }
        let loaded = |l: &super::Loaded| {
            l.as_ref()
                .and_then(|f| f.aliased.get(index).copied().flatten())
        };
        match self.record.get()? {
            Some(fields) if !fields.has(index) => self.rest.get().and_then(loaded),
            record => loaded(record),
        }
    }

    /// Adds to `changes` the removal of the old name each field in
    /// `moved` was read from (a versioned field's at its version): the
    /// value now lives under its stored name.
    pub(super) fn move_aliases(&self, changes: &mut Changes, moved: &[usize]) {
        for &index in moved {
            let field = self.schema[index];
            let Some((alias, version)) = self.aliased(index) else {
                if !field.aliases.is_empty() && self.known(index) == super::Known::Unknown {
                    // A blind write: whether an old name holds a value is
                    // not known; none may outlive the write (an indexed
                    // one would still be found by its old value).
                    for &alias in field.aliases {
                        changes.remove.push(alias);
                        if field.indexed {
                            changes.index.push(IndexUpdate {
                                name: alias,
                                tag: None,
                            });
                        }
                    }
                }
                continue;
            };
            changes.remove.push(alias);
            if self.schema[index].indexed {
                // Its entry under the old name goes with it.
                changes.index.push(IndexUpdate {
                    name: alias,
                    tag: None,
                });
            }
            if self.schema[index].versioned {
                changes.expect.push(Expect {
                    name: alias,
                    version: Some(version),
                });
            }
        }
    }

    /// After a reload that found field `index` absent under its stored
    /// name, takes it from an alias in `record`, as a load does.
    pub(super) fn reload_alias(&mut self, index: usize, record: &crate::store::Record) {
        let field = self.schema[index];
        for &alias in field.aliases {
            let Some((_, bytes)) = record.fields.iter().find(|(n, _)| n == alias) else {
                continue;
            };
            let key = self.request.read_key();
            let plain = match (self.request.manager().sealer(), key) {
                (Some(sealer), Some(key)) => {
                    let keys = super::sealed::record_keys(Some(sealer), &key, &record.fields);
                    let seals = super::sealed::seals(sealer, &key, &keys);
                    super::sealed::open(&seals, alias, bytes)
                }
                _ => Some(bytes.clone()),
            };
            let Some(plain) = plain else { continue };
            let version = record
                .versions
                .iter()
                .find(|(n, _)| n == alias)
                .map_or(0, |(_, v)| *v);
            self.set_written(index, Some(plain));
            self.set_version(index, None);
            self.field_mut(index).alias = Some((alias, version));
            return;
        }
    }
}
