//! What a SQL store sends for a login (a new session) and for a request's
//! changes to an existing one: the statements, how many must match, and
//! how each write is recognised should its reply be lost.

use super::backend::Backend;
use super::doc::{self, RowEdit};
use super::statements::Nonce;
use super::writes::{is_duplicate, Landed};
use super::SqlStore;
use crate::error::{Error, Result};
use crate::store::{Changes, NewSession, Saved, Validity};
use crate::token::StoreKey;

impl<B: Backend> SqlStore<B> {
    pub(super) async fn insert_session(
        &self,
        key: &StoreKey,
        session: NewSession,
        fields: &[(&'static str, Vec<u8>)],
    ) -> Result<bool> {
        // The small fields go in the session's row (its document); the
        // others, if any, in a second autocommit statement, not a
        // transaction: BEGIN and COMMIT would double a login's round
        // trips, and all a failed second statement can leave is a session
        // row whose token nobody ever received (the request fails, so no
        // cookie is sent); cleanup deletes it when it expires. The token is
        // known to no one else yet, so those fields go in by the new row's
        // key with a plain multi-row insert.
        let data = doc::document(fields);
        let insert = self.sql.insert(key, session, &data);
        let attempt = self
            .retried(1, || self.backend.insert(&insert, self.write_limit()))
            .await;
        let pk = match attempt.result {
            Ok(Some(pk)) => pk,
            // No foreign key to miss: cannot happen, and would mean the
            // row is not there.
            Ok(None) => return Err(Error::Interrupted),
            // The key is taken. After a lost reply, by this very insert
            // (a 256-bit random key is taken by no one else): its row.
            Err(e) if is_duplicate::<B>(&e) && attempt.replayed => {
                let stmt = self.sql.pk_of(key);
                let pks = self.read(|| self.backend.fetch_ints(&stmt)).await?;
                match pks.first() {
                    Some(&pk) => {
                        self.counters.recovered();
                        pk
                    }
                    None => return Err(Error::Interrupted),
                }
            }
            Err(e) if is_duplicate::<B>(&e) => return Ok(false),
            Err(e) => return Err(e),
        };
        let rows: Vec<(&'static str, Vec<u8>)> = fields
            .iter()
            .filter(|(_, v)| !doc::in_row(v))
            .cloned()
            .collect();
        if !rows.is_empty() {
            // A foreign-key miss here means the new row went already (a
            // destroy by a key no one has yet cannot): never report the
            // fields saved when they were not. A duplicate after a lost
            // reply: the one multi-row insert was applied, whole.
            let stmt = self.sql.insert_fields(pk, &rows);
            let attempt = self
                .retried(1, || {
                    self.backend
                        .execute(std::slice::from_ref(&stmt), 0, self.write_limit())
                })
                .await;
            match attempt.result {
                Ok(Some(_)) => {}
                Ok(None) => return Err(Error::Interrupted),
                Err(e) if is_duplicate::<B>(&e) && attempt.replayed => self.counters.recovered(),
                Err(e) => return Err(e),
            }
        }
        self.counters
            .wrote(fields.iter().map(|(_, v)| v.as_slice()));
        Ok(true)
    }

    pub(super) async fn save_changes(
        &self,
        key: &StoreKey,
        changes: &Changes,
        at: Validity,
    ) -> Result<Saved> {
        // A regenerate goes first, so everything after it names the new key.
        // The session row's update (expiry and document) comes before any
        // field row: it takes the row's exclusive lock before a field
        // row's statement takes its shared one. The other order lets two
        // saves of one session each hold the shared lock and wait for the
        // exclusive one: a deadlock (seen in the benchmark's 1-session
        // `bump` run). Each matches only a live session, so whichever comes
        // first tells whether it is gone. The common write (a `bump`: small
        // fields, maybe a touch) is that one `UPDATE` alone.
        let mut stmts = Vec::with_capacity(4 + changes.expect.len());
        let nonce = if changes.expect.is_empty() {
            Nonce([0; 8])
        } else {
            Nonce::generate()?
        };
        let mut current = key;
        if let Some(rename) = &changes.rename {
            let rotated = rename.reason == crate::store::Replaced::Rotated;
            stmts.extend(
                self.sql
                    .rename(key, &rename.to, rename.previous_until, rotated, at),
            );
            current = &rename.to;
        }
        // Fields that go to rows of their own: later loads of this store
        // ask for their rows with the session's.
        let rows: Vec<&str> = changes
            .upsert
            .iter()
            .filter(|(n, v)| changes.expectation(n).is_some() || !doc::in_row(v))
            .map(|(n, _)| *n)
            .collect();
        if !rows.is_empty() {
            self.learn(&rows);
        }
        let edit = self.row_edit(changes);
        // An edit that only removes keys cannot resurrect anything, so it
        // need not match: it goes right after the statements that must
        // (see below), still before the field rows' statements.
        let removes_only = !edit.clear && edit.set.is_empty() && changes.expiry.is_none();
        if !removes_only {
            stmts.extend(self.sql.row_update(current, changes.expiry, &edit, at));
        }
        // Versioned fields: one compare-and-set each, right after the
        // statements above and before anything else, all required to
        // match one row (each also checks liveness). Under a `clear`, a
        // present field is only checked here and written after the clear.
        let value = |name: &str| {
            changes
                .upsert
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.as_slice())
        };
        // A write of a versioned field at version 0 (stored without an
        // expectation: in a row of its own with no version, or as a value
        // in the document, as an earlier unversioned type left it) goes
        // after these: its row, if any, is deleted and the field inserted
        // at version 1; a row of a later version makes the insert a
        // duplicate key, a conflict.
        let mut at_zero = Vec::new();
        for expect in &changes.expect {
            match (value(expect.name), expect.version) {
                (Some(bytes), Some(0)) if !changes.clear => at_zero.push((expect.name, bytes)),
                (Some(bytes), Some(v)) if !changes.clear => {
                    stmts.push(
                        self.sql
                            .cas_update(current, expect.name, bytes, v, &nonce, at),
                    );
                }
                (Some(bytes), None) if !changes.clear => {
                    stmts.push(
                        self.sql
                            .cas_insert(current, expect.name, bytes, 1, &nonce, at),
                    );
                }
                (None, Some(v)) => {
                    let check_only = changes.clear;
                    stmts.push(self.sql.cas_delete(current, expect.name, v, at, check_only));
                }
                (Some(_), Some(v)) => {
                    stmts.push(self.sql.cas_delete(current, expect.name, v, at, true));
                }
                // Under a clear, an absent field needs no check; removing
                // an absent field is not planned.
                (_, None) => {}
            }
        }
        let checked = stmts.len();
        if removes_only {
            stmts.extend(self.sql.row_update(current, None, &edit, at));
        }
        for (name, bytes) in at_zero {
            stmts.push(self.sql.cas_delete(current, name, 0, at, false));
            stmts.push(self.sql.cas_insert(current, name, bytes, 1, &nonce, at));
        }
        if changes.clear {
            if stmts.is_empty() {
                // A clear's DELETE cannot tell a dead session from an empty
                // one: check liveness first.
                stmts.push(self.sql.alive(current, at));
            }
            stmts.push(self.sql.clear(current));
            stmts.push(self.sql.index_clear(current));
            for expect in &changes.expect {
                if let Some(bytes) = value(expect.name) {
                    stmts.push(self.sql.cas_insert(
                        current,
                        expect.name,
                        bytes,
                        expect.next(),
                        &nonce,
                        at,
                    ));
                }
            }
        }
        // The unversioned fields: the versioned ones went above.
        let plain = || {
            changes
                .upsert
                .iter()
                .filter(|(n, _)| changes.expectation(n).is_none())
        };
        let has_plain = plain().next().is_some();
        let large = || plain().filter(|(n, v)| self.in_own_row(n, v));
        if large().next().is_some() {
            stmts.push(self.sql.upsert(current, large(), at));
        }
        let remove: Vec<&'static str> = changes
            .remove
            .iter()
            .copied()
            .filter(|n| changes.expectation(n).is_none())
            .collect();
        if !remove.is_empty() {
            stmts.push(self.sql.remove(current, &remove));
        }
        // Index entries last, the ones set first: a save of index entries
        // alone (after a create) tells by its first statement whether the
        // session is alive.
        let sets_index = changes.index.iter().any(|u| u.tag.is_some());
        for update in &changes.index {
            if let Some(tag) = &update.tag {
                stmts.push(self.sql.index_set(current, update.name, tag, at));
            }
        }
        for update in changes.index.iter().filter(|u| u.tag.is_none()) {
            stmts.push(self.sql.index_unset(current, update.name));
        }
        if stmts.is_empty() {
            return Ok(Saved::Saved);
        }
        // A removal alone cannot resurrect anything, so it need not match;
        // otherwise the first statement tells whether the session is alive,
        // and every compare-and-set must match.
        let must_match = if changes.rename.is_some()
            || changes.clear
            || has_plain
            || changes.expiry.is_some()
            || sets_index
        {
            checked.max(1)
        } else {
            checked
        };
        // How to tell, should the reply be lost, whether this save was
        // applied: it is all or nothing, so one of its writes tells.
        let landed = match (&changes.rename, changes.expect.first()) {
            (Some(rename), _) => Landed::Moved(&rename.to),
            (None, Some(expect)) => match value(expect.name) {
                Some(_) => Landed::Wrote {
                    key: current,
                    name: expect.name,
                    version: expect.next(),
                    nonce: &nonce,
                },
                None => Landed::Removed {
                    key: current,
                    name: expect.name,
                },
            },
            (None, None) => Landed::Never,
        };
        let written = match self.write_once(&stmts, must_match, &landed).await {
            Ok(written) => written,
            // A compare-and-set insert found the field there: it appeared
            // since this request loaded.
            Err(e) if !changes.expect.is_empty() && is_duplicate::<B>(&e) => {
                return Ok(Saved::Conflict)
            }
            Err(e) => return Err(e),
        };
        match written {
            Some(_) => {
                self.counters
                    .wrote(changes.upsert.iter().map(|(_, v)| v.as_slice()));
                Ok(Saved::Saved)
            }
            // Only on this failure path: a version moved, or the session
            // went (was its key just regenerated away?).
            None => {
                if !changes.expect.is_empty()
                    && self.write(&[self.sql.alive(key, at)], 1).await?.is_some()
                {
                    return Ok(Saved::Conflict);
                }
                Ok(if self.is_moved(key, at.now).await? {
                    Saved::Moved
                } else {
                    Saved::Gone
                })
            }
        }
    }

    /// Whether `key` was replaced by a rename whose grace still runs: a
    /// save with it is refused as `Moved`.
    async fn is_moved(&self, key: &StoreKey, now: i64) -> Result<bool> {
        let pks = self
            .read(|| async move { self.backend.fetch_ints(&self.sql.moved(key, now)).await })
            .await?;
        Ok(!pks.is_empty())
    }

    /// Whether an unversioned field's value is written to a row of its
    /// own: a large one, or one of a field this store found in rows (a
    /// versioned field written without an expectation keeps its version
    /// there; any other is found either way, as a value in the document
    /// wins over a row).
    fn in_own_row(&self, name: &str, value: &[u8]) -> bool {
        !doc::in_row(value) || self.is_known_in_rows(name)
    }

    /// What a save changes in the session row's document: each small
    /// unversioned field's value, a mark for each field that goes to a
    /// row of its own (a large one, or a versioned one created), and the
    /// removed fields' keys.
    fn row_edit(&self, changes: &Changes) -> RowEdit {
        use base64::Engine as _;
        let mut edit = RowEdit {
            clear: changes.clear,
            ..RowEdit::default()
        };
        for (name, value) in &changes.upsert {
            let entry = match changes.expectation(name) {
                // A versioned field lives in its row; the document marks
                // it when the row is created (or recreated after a clear).
                Some(expect) if expect.version.is_some_and(|v| v > 0) && !changes.clear => continue,
                Some(_) => None,
                None if !self.in_own_row(name, value) => {
                    Some(base64::engine::general_purpose::STANDARD.encode(value))
                }
                None => None,
            };
            edit.set.push((self.sql.doc_key(name), entry));
        }
        if !changes.clear {
            for name in &changes.remove {
                edit.remove.push(self.sql.doc_key(name));
            }
        }
        edit
    }
}
