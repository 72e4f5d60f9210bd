//! The SQL text of every statement, built once per set of table names.
//!
//! The session-is-alive predicate is [`alive`]; every statement that reads
//! or writes a session through its token hash includes it, so no statement
//! can see or revive a session past its idle expiry or its `max_lifetime`.
//!
//! One builder per statement, kept in one file (long, on purpose) so that
//! the liveness predicate is visibly part of every statement that names a
//! session by its hash.
//!
//! MySQL connections from sqlx set `CLIENT_FOUND_ROWS`, so an `UPDATE` that
//! matches a row but leaves it unchanged (a touch to the same second) still
//! reports one row: "matched", not "changed", is what the store tests.

use std::borrow::Cow;

use crate::store::{ExpiryUpdate, IndexTag, Validity};
use crate::token::StoreKey;

use super::backend::{Arg, Backend, JsonDialect, Stmt};
use super::doc::RowEdit;
use super::names::TableNames;

/// The columns the store needs, per table.
pub(crate) const SESSIONS_COLUMNS: &[&str] = &[
    "pk",
    "token_hash",
    "created_at",
    "expires_at",
    "idle_timeout",
    "persistent",
    "data",
];
/// See [`SESSIONS_COLUMNS`].
pub(crate) const FIELDS_COLUMNS: &[&str] = &["session_pk", "name", "value", "version", "writers"];
/// See [`SESSIONS_COLUMNS`].
pub(crate) const PREVIOUS_COLUMNS: &[&str] =
    &["token_hash", "session_pk", "valid_until", "rotated"];

/// How many of a versioned field's last writers its `writers` column
/// remembers (see [`Nonce`]).
pub(crate) const WRITERS_KEPT: i64 = 16;

/// A per-save random tag stored with every versioned field the save
/// writes, in the field's `writers` column (the last [`WRITERS_KEPT`]
/// writers, newest first). A save whose reply was lost (the connection
/// dropped after the server committed) recognises its own write by it, so
/// it is neither applied twice nor reported as a conflict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Nonce(pub(crate) [u8; 8]);

impl Nonce {
    /// A fresh random nonce.
    pub(crate) fn generate() -> crate::error::Result<Nonce> {
        let mut bytes = [0u8; 8];
        getrandom::getrandom(&mut bytes).map_err(|e| crate::error::Error::Backend(Box::new(e)))?;
        Ok(Nonce(bytes))
    }
}

/// The session-is-alive predicate on the sessions table under `alias`
/// (`"s."` or `""`), with its two arguments.
fn alive(alias: &str) -> String {
    format!("{alias}expires_at > ? AND {alias}created_at > ?")
}

fn alive_args<'a>(at: Validity) -> [Arg<'a>; 2] {
    [Arg::Int(at.now), Arg::Int(at.created_after)]
}

/// A version as the `BIGINT` it is stored in (versions count writes of
/// one field: far below 2^63).
fn version(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn placeholders(out: &mut String, n: usize) {
    for i in 0..n {
        out.push_str(if i == 0 { "?" } else { ", ?" });
    }
}

/// Every statement's fixed text for one set of table names and one dialect.
#[derive(Debug)]
pub(crate) struct Statements {
    json: JsonDialect,
    load_row: String,
    load_head: String,
    load_from: String,
    load_where: String,
    insert: String,
    insert_fields: String,
    upsert_head: String,
    upsert_tail: String,
    remove_head: String,
    row_update_head: String,
    row_update_tail: String,
    doc_base: String,
    doc_empty: &'static str,
    clear: String,
    cas_update: String,
    cas_insert: String,
    cas_delete: String,
    cas_check: String,
    cas_landed: String,
    pk_of: String,
    alive: String,
    rename: String,
    keep_previous: String,
    extend: String,
    set_expiry: String,
    moved: String,
    previous: String,
    destroy: String,
    expired: String,
    delete_head: String,
    probe: String,
    index_set: String,
    index_unset: String,
    index_clear: String,
    find: String,
    destroy_found: String,
    /// How `destroy_found`'s statement ends: its `RETURNING` clause, or
    /// the lock of a claim's `SELECT`.
    found_tail: String,
    /// Deletes one session if it holds an index entry (its `IN (` list
    /// and the closing brackets follow).
    destroy_one: String,
    /// Claims dead sessions: a `DELETE … RETURNING` where the database
    /// has it, else the head of a locking `SELECT` of picked keys.
    claim_expired: String,
    count_live: String,
    /// Whether claims are one `DELETE … RETURNING` (see `Backend::take`).
    returning: bool,
    prune_previous: String,
    drop: [String; 4],
}

impl Statements {
    pub(crate) fn new<B: Backend>(names: &TableNames) -> Self {
        let (s, f, i, p) = (
            format!("`{}`", names.sessions),
            format!("`{}`", names.fields),
            format!("`{}`", names.index),
            format!("`{}`", names.previous),
        );
        let (greatest, least) = (B::GREATEST, B::LEAST);
        let returning = B::DELETE_RETURNING;
        let data_text = match B::JSON {
            JsonDialect::Postgres => "data::text",
            JsonDialect::MySql | JsonDialect::Sqlite => "data",
        };
        // The session row's columns, `data` as text in every dialect.
        let head = format!(
            "SELECT s.created_at, s.expires_at, s.idle_timeout, s.persistent, {}",
            match B::JSON {
                JsonDialect::Postgres => "s.data::text",
                JsonDialect::MySql | JsonDialect::Sqlite => "s.data",
            }
        );
        // A row's document as it stands, or, for a row written before the
        // `data` column existed (NULL), a document marking every field row
        // it has: the first write of such a session keeps them all.
        let (aggregate, empty) = match B::JSON {
            JsonDialect::MySql => ("JSON_OBJECTAGG(f.name, 0)", "'{}'"),
            JsonDialect::Sqlite => ("json_group_object(f.name, 0)", "'{}'"),
            JsonDialect::Postgres => ("jsonb_object_agg(f.name, 0)", "'{}'::jsonb"),
        };
        Statements {
            json: B::JSON,
            load_row: format!(
                "{head} FROM {s} s WHERE s.token_hash = ? AND {}",
                alive("s.")
            ),
            load_head: match B::PACK_FIELDS {
                None => format!(
                    "{head}, {}, f.value, f.version FROM {s} s LEFT JOIN {f} f ON f.session_pk = s.pk",
                    B::NAME_BYTES
                ),
                Some(aggregate) => format!(
                    "{head}, (SELECT {aggregate} FROM {f} f WHERE f.session_pk = s.pk"
                ),
            },
            load_from: B::PACK_FIELDS.map_or(String::new(), |_| format!(") FROM {s} s")),
            load_where: format!(" WHERE s.token_hash = ? AND {}", alive("s.")),
            insert: format!(
                "INSERT INTO {s} (token_hash, created_at, expires_at, idle_timeout, persistent, data) VALUES (?, ?, ?, ?, ?, {}){}",
                match B::JSON {
                    JsonDialect::Postgres => "CAST(? AS jsonb)",
                    JsonDialect::MySql | JsonDialect::Sqlite => "?",
                },
                B::INSERT_RETURNING
            ),
            insert_fields: format!("INSERT INTO {f} (session_pk, name, value) VALUES "),
            upsert_head: format!(
                "INSERT INTO {f} (session_pk, name, value) SELECT s.pk, v.name, v.value FROM {s} s CROSS JOIN ("
            ),
            upsert_tail: format!(
                ") v WHERE s.token_hash = ? AND {} {}",
                alive("s."),
                B::UPSERT
            ),
            remove_head: format!(
                "DELETE FROM {f} WHERE session_pk = (SELECT pk FROM {s} WHERE token_hash = ?) AND name IN ("
            ),
            row_update_head: format!("UPDATE {s} AS s SET "),
            row_update_tail: format!(" WHERE s.token_hash = ? AND {}", alive("s.")),
            doc_base: format!(
                "COALESCE(s.data, (SELECT {aggregate} FROM {f} f WHERE f.session_pk = s.pk), {empty})"
            ),
            doc_empty: empty,
            clear: format!(
                "DELETE FROM {f} WHERE session_pk = (SELECT pk FROM {s} WHERE token_hash = ?)"
            ),
            // Compare-and-set of one versioned field: each matches one row
            // exactly when the session is alive and the field's version is
            // the expected one (a NULL version is 0).
            cas_update: format!(
                "UPDATE {f} SET value = ?, version = ?, writers = {} WHERE session_pk = (SELECT pk FROM {s} WHERE token_hash = ? AND {}) AND name = ? AND COALESCE(version, 0) = ?",
                B::PUSH_WRITER,
                alive("")
            ),
            // An existing row is a duplicate key: the field appeared
            // meanwhile (a conflict).
            cas_insert: format!(
                "INSERT INTO {f} (session_pk, name, value, version, writers) SELECT pk, ?, ?, ?, ? FROM {s} WHERE token_hash = ? AND {}",
                alive("")
            ),
            cas_delete: format!(
                "DELETE FROM {f} WHERE session_pk = (SELECT pk FROM {s} WHERE token_hash = ? AND {}) AND name = ? AND COALESCE(version, 0) = ?",
                alive("")
            ),
            cas_check: format!(
                "UPDATE {f} SET version = version WHERE session_pk = (SELECT pk FROM {s} WHERE token_hash = ? AND {}) AND name = ? AND COALESCE(version, 0) = ?",
                alive("")
            ),
            // Whether a compare-and-set whose reply was lost was applied:
            // 1 when the field's writers include the save's nonce, 0 when
            // they would include it but do not (or the field is still
            // below the version the save wrote), 2 when too many writes
            // came since to tell. No row: the field is absent. (Added to
            // the version times 0, so every dialect answers a BIGINT.)
            cas_landed: format!(
                "SELECT 0 * COALESCE(f.version, 0) + CASE WHEN {} THEN 1 WHEN COALESCE(f.version, 0) - ? < {WRITERS_KEPT} THEN 0 ELSE 2 END FROM {f} f WHERE f.session_pk = (SELECT pk FROM {s} WHERE token_hash = ?) AND f.name = ?",
                B::HAS_WRITER
            ),
            pk_of: format!("SELECT pk FROM {s} WHERE token_hash = ?"),
            // Matches a live session and changes nothing: the liveness check
            // of a save whose other statements cannot tell.
            alive: format!(
                "UPDATE {s} SET expires_at = expires_at WHERE token_hash = ? AND {}",
                alive("")
            ),
            // A regenerate: the session takes the new hash, and the old
            // one is kept beside it (`keep_previous`, in the same
            // transaction) for a logout during the grace.
            rename: format!(
                "UPDATE {s} SET token_hash = ? WHERE token_hash = ? AND {}",
                alive("")
            ),
            keep_previous: format!(
                "INSERT INTO {p} (token_hash, session_pk, valid_until, rotated) SELECT ?, pk, ?, ? FROM {s} WHERE token_hash = ?"
            ),
            extend: format!("expires_at = {least}({greatest}(expires_at, ?), created_at + ?)"),
            set_expiry: format!(
                "expires_at = {least}(?, created_at + ?), idle_timeout = ?, persistent = ?"
            ),
            moved: format!("SELECT session_pk FROM {p} WHERE token_hash = ? AND valid_until > ?"),
            // What a replaced key names now: the session row's hash is its
            // current key, however many renames came after.
            previous: format!(
                "SELECT s.token_hash, p.valid_until, p.rotated FROM {p} p JOIN {s} s ON s.pk = p.session_pk WHERE p.token_hash = ? AND s.expires_at > ?"
            ),
            // The scalar subquery runs once (a primary-key lookup), so the
            // delete finds its row by either index.
            destroy: format!(
                "DELETE FROM {s} WHERE token_hash = ? OR pk = (SELECT session_pk FROM {p} WHERE token_hash = ? AND valid_until > ?)"
            ),
            // A rotated key stays while its session lives (the foreign key
            // deletes it with the session).
            prune_previous: format!("DELETE FROM {p} WHERE valid_until <= ? AND COALESCE(rotated, 0) = 0"),
            expired: format!(
                "SELECT pk FROM {s} WHERE expires_at <= ? OR created_at <= ? LIMIT ?"
            ),
            delete_head: format!("DELETE FROM {s} WHERE pk IN ("),
            probe: format!(
                "SELECT s.pk FROM {s} s LEFT JOIN {f} f ON f.session_pk = s.pk AND f.name = '' AND f.writers IS NULL LEFT JOIN {i} i ON i.session_pk = s.pk AND i.tag = f.value LEFT JOIN {p} p ON p.session_pk = s.pk AND p.valid_until = 0 WHERE s.pk = 0 AND s.idle_timeout = 0 AND s.data IS NULL"
            ),
            // The fields' conflict clause, for the index's `tag` column.
            index_set: format!(
                "INSERT INTO {i} (session_pk, name, tag) SELECT s.pk, v.name, v.tag FROM {s} s CROSS JOIN (SELECT ? AS name, ? AS tag) v WHERE s.token_hash = ? AND {} {}",
                alive("s."),
                B::UPSERT.replace("value", "tag")
            ),
            index_unset: format!(
                "DELETE FROM {i} WHERE session_pk = (SELECT pk FROM {s} WHERE token_hash = ?) AND name = ?"
            ),
            index_clear: format!(
                "DELETE FROM {i} WHERE session_pk = (SELECT pk FROM {s} WHERE token_hash = ?)"
            ),
            find: format!(
                "SELECT s.token_hash FROM {i} i JOIN {s} s ON s.pk = i.session_pk WHERE i.name = ? AND {} AND i.tag IN (",
                alive("s.")
            ),
            destroy_found: if returning {
                format!("DELETE FROM {s} WHERE token_hash <> ? AND pk IN (SELECT session_pk FROM {i} WHERE name = ? AND tag IN (")
            } else {
                format!("SELECT token_hash, {data_text}, pk FROM {s} WHERE token_hash <> ? AND pk IN (SELECT session_pk FROM {i} WHERE name = ? AND tag IN (")
            },
            destroy_one: format!(
                "DELETE FROM {s} WHERE token_hash = ? AND pk IN (SELECT session_pk FROM {i} WHERE name = ? AND tag IN ("
            ),
            found_tail: if returning {
                format!(")) RETURNING token_hash, {data_text}")
            } else {
                ")) FOR UPDATE".into()
            },
            // Several cleanups at once each claim rows none of the others
            // holds: PostgreSQL skips the rows another claim locked, SQLite
            // runs one writer at a time, and MySQL's locking re-read of
            // the picked keys waits for a claim holding them and then
            // finds them deleted.
            claim_expired: if returning {
                format!(
                    "DELETE FROM {s} WHERE pk IN (SELECT pk FROM {s} WHERE expires_at <= ? OR created_at <= ? LIMIT ?{}) RETURNING token_hash, {data_text}",
                    if matches!(B::JSON, JsonDialect::Postgres) { " FOR UPDATE SKIP LOCKED" } else { "" }
                )
            } else {
                format!("SELECT token_hash, {data_text}, pk FROM {s} WHERE (expires_at <= ? OR created_at <= ?) AND pk IN (")
            },
            returning,
            count_live: format!("SELECT COUNT(*) FROM {s} WHERE {}", alive("")),
            drop: [
                format!("DROP TABLE IF EXISTS {p}"),
                format!("DROP TABLE IF EXISTS {i}"),
                format!("DROP TABLE IF EXISTS {f}"),
                format!("DROP TABLE IF EXISTS {s}"),
            ],
        }
    }

    pub(crate) fn load<'a>(
        &'a self,
        key: &'a StoreKey,
        skip: &'a [&str],
        at: Validity,
    ) -> Stmt<'a> {
        self.load_with(key, Names::AllBut(skip), at)
    }

    /// The load of only the fields named in `only` (see
    /// `SessionStore::load_only`): the same statement with `IN` for `NOT
    /// IN`, so the session row comes back even when none of them is stored.
    pub(crate) fn load_only<'a>(
        &'a self,
        key: &'a StoreKey,
        only: &'a [&str],
        at: Validity,
    ) -> Stmt<'a> {
        self.load_with(key, Names::Only(only), at)
    }

    /// The session's row alone: its timestamps and its document, one
    /// lookup in one table.
    pub(crate) fn load_row<'a>(&'a self, key: &'a StoreKey, at: Validity) -> Stmt<'a> {
        let mut args = vec![Arg::Bytes(key.as_bytes())];
        args.extend(alive_args(at));
        Stmt {
            sql: Cow::Borrowed(&self.load_row),
            args,
        }
    }

    fn load_with<'a>(&'a self, key: &'a StoreKey, names: Names<'a>, at: Validity) -> Stmt<'a> {
        let mut sql = self.load_head.clone();
        let (op, list) = match names {
            Names::AllBut(list) => (" AND f.name NOT IN (", list),
            Names::Only(list) => (" AND f.name IN (", list),
        };
        let mut args: Vec<Arg<'a>> = Vec::with_capacity(list.len() + 3);
        match (names, list.is_empty()) {
            (Names::AllBut(_), true) => {}
            (Names::Only(_), true) => sql.push_str(" AND 1 = 0"),
            (_, false) => {
                sql.push_str(op);
                placeholders(&mut sql, list.len());
                sql.push(')');
                args.extend(list.iter().map(|s| Arg::Text(s)));
            }
        }
        sql.push_str(&self.load_from);
        sql.push_str(&self.load_where);
        args.push(Arg::Bytes(key.as_bytes()));
        args.extend(alive_args(at));
        Stmt {
            sql: sql.into(),
            args,
        }
    }

    /// A new session's row, `data` its document of small fields (see
    /// [`document`]).
    pub(crate) fn insert<'a>(
        &'a self,
        key: &'a StoreKey,
        session: crate::store::NewSession,
        data: &'a str,
    ) -> Stmt<'a> {
        Stmt {
            sql: Cow::Borrowed(&self.insert),
            args: vec![
                Arg::Bytes(key.as_bytes()),
                Arg::Int(session.created_at),
                Arg::Int(session.expires_at),
                Arg::Int(session.idle_timeout),
                Arg::Flag(session.persistent),
                Arg::Text(data),
            ],
        }
    }

    /// The fields of a session just created, by its key: a plain
    /// multi-row insert (no lookup by token, no derived table).
    pub(crate) fn insert_fields<'a>(
        &'a self,
        pk: i64,
        fields: &'a [(&'static str, Vec<u8>)],
    ) -> Stmt<'a> {
        let mut sql = self.insert_fields.clone();
        let mut args = Vec::with_capacity(fields.len() * 3);
        for (i, (name, value)) in fields.iter().enumerate() {
            sql.push_str(if i == 0 { "(?, ?, ?)" } else { ", (?, ?, ?)" });
            args.extend([Arg::Int(pk), Arg::Text(name), Arg::Bytes(value)]);
        }
        Stmt {
            sql: sql.into(),
            args,
        }
    }

    /// The upsert of `fields` (borrowed: a save passes its unversioned
    /// ones without copying them). The statement has at least one field.
    pub(crate) fn upsert<'a>(
        &'a self,
        key: &'a StoreKey,
        fields: impl IntoIterator<Item = &'a (&'static str, Vec<u8>)>,
        at: Validity,
    ) -> Stmt<'a> {
        let mut sql = self.upsert_head.clone();
        let mut args = Vec::new();
        for (i, (name, value)) in fields.into_iter().enumerate() {
            sql.push_str(if i == 0 {
                "SELECT ? AS name, ? AS value"
            } else {
                " UNION ALL SELECT ?, ?"
            });
            args.push(Arg::Text(name));
            args.push(Arg::Bytes(value));
        }
        sql.push_str(&self.upsert_tail);
        args.push(Arg::Bytes(key.as_bytes()));
        args.extend(alive_args(at));
        Stmt {
            sql: sql.into(),
            args,
        }
    }

    pub(crate) fn remove<'a>(&'a self, key: &'a StoreKey, names: &'a [&'static str]) -> Stmt<'a> {
        let mut sql = self.remove_head.clone();
        placeholders(&mut sql, names.len());
        sql.push(')');
        let mut args = vec![Arg::Bytes(key.as_bytes())];
        args.extend(names.iter().map(|n| Arg::Text(n)));
        Stmt {
            sql: sql.into(),
            args,
        }
    }

    /// Writes a versioned field if its version is `expected`, adding
    /// `nonce` to its writers.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn cas_update<'a>(
        &'a self,
        key: &'a StoreKey,
        name: &'a str,
        value: &'a [u8],
        expected: u64,
        nonce: &'a Nonce,
        at: Validity,
    ) -> Stmt<'a> {
        let [now, created_after] = alive_args(at);
        Stmt {
            sql: Cow::Borrowed(&self.cas_update),
            args: vec![
                Arg::Bytes(value),
                Arg::Int(version(expected + 1)),
                Arg::Bytes(&nonce.0),
                Arg::Bytes(key.as_bytes()),
                now,
                created_after,
                Arg::Text(name),
                Arg::Int(version(expected)),
            ],
        }
    }

    /// Adds a versioned field with version `next`, written by `nonce`; a
    /// duplicate key if the field exists.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn cas_insert<'a>(
        &'a self,
        key: &'a StoreKey,
        name: &'a str,
        value: &'a [u8],
        next: u64,
        nonce: &'a Nonce,
        at: Validity,
    ) -> Stmt<'a> {
        let [now, created_after] = alive_args(at);
        Stmt {
            sql: Cow::Borrowed(&self.cas_insert),
            args: vec![
                Arg::Text(name),
                Arg::Bytes(value),
                Arg::Int(version(next)),
                Arg::Bytes(&nonce.0),
                Arg::Bytes(key.as_bytes()),
                now,
                created_after,
            ],
        }
    }

    /// Deletes a versioned field if its version is `expected`
    /// (`check_only`: matches it and changes nothing).
    pub(crate) fn cas_delete<'a>(
        &'a self,
        key: &'a StoreKey,
        name: &'a str,
        expected: u64,
        at: Validity,
        check_only: bool,
    ) -> Stmt<'a> {
        let [now, created_after] = alive_args(at);
        Stmt {
            sql: Cow::Borrowed(if check_only {
                &self.cas_check
            } else {
                &self.cas_delete
            }),
            args: vec![
                Arg::Bytes(key.as_bytes()),
                now,
                created_after,
                Arg::Text(name),
                Arg::Int(version(expected)),
            ],
        }
    }

    /// Whether the compare-and-set of field `name` that `nonce` wrote
    /// with version `wrote` was applied (see the statement).
    pub(crate) fn cas_landed<'a>(
        &'a self,
        key: &'a StoreKey,
        name: &'a str,
        wrote: u64,
        nonce: &'a Nonce,
    ) -> Stmt<'a> {
        Stmt {
            sql: Cow::Borrowed(&self.cas_landed),
            args: vec![
                Arg::Bytes(&nonce.0),
                Arg::Int(version(wrote)),
                Arg::Bytes(key.as_bytes()),
                Arg::Text(name),
            ],
        }
    }

    /// The primary key of the session under `key`, alive or not.
    pub(crate) fn pk_of<'a>(&'a self, key: &'a StoreKey) -> Stmt<'a> {
        Stmt {
            sql: Cow::Borrowed(&self.pk_of),
            args: vec![Arg::Bytes(key.as_bytes())],
        }
    }

    pub(crate) fn clear<'a>(&'a self, key: &'a StoreKey) -> Stmt<'a> {
        Stmt {
            sql: Cow::Borrowed(&self.clear),
            args: vec![Arg::Bytes(key.as_bytes())],
        }
    }

    pub(crate) fn alive<'a>(&'a self, key: &'a StoreKey, at: Validity) -> Stmt<'a> {
        let mut args = vec![Arg::Bytes(key.as_bytes())];
        args.extend(alive_args(at));
        Stmt {
            sql: Cow::Borrowed(&self.alive),
            args,
        }
    }

    /// A regenerate's or rotation's two statements: the move to `to`, then
    /// the record of `from` (see [`Replaced`](crate::store::Replaced)).
    pub(crate) fn rename<'a>(
        &'a self,
        from: &'a StoreKey,
        to: &'a StoreKey,
        previous_until: i64,
        rotated: bool,
        at: Validity,
    ) -> [Stmt<'a>; 2] {
        let mut args = vec![Arg::Bytes(to.as_bytes()), Arg::Bytes(from.as_bytes())];
        args.extend(alive_args(at));
        [
            Stmt {
                sql: Cow::Borrowed(&self.rename),
                args,
            },
            Stmt {
                sql: Cow::Borrowed(&self.keep_previous),
                args: vec![
                    Arg::Bytes(from.as_bytes()),
                    Arg::Int(previous_until),
                    Arg::Int(i64::from(rotated)),
                    Arg::Bytes(to.as_bytes()),
                ],
            },
        ]
    }

    /// Forgets the replaced keys whose grace is over.
    pub(crate) fn prune_previous(&self, now: i64) -> Stmt<'_> {
        Stmt {
            sql: Cow::Borrowed(&self.prune_previous),
            args: vec![Arg::Int(now)],
        }
    }

    /// The one `UPDATE` of a session's row a save sends: its expiry, and
    /// its document of small fields edited on the server (see [`RowEdit`]).
    /// Matches the row exactly when the session is alive. `None` when
    /// there is nothing to change.
    pub(crate) fn row_update<'a>(
        &'a self,
        key: &'a StoreKey,
        expiry: Option<ExpiryUpdate>,
        edit: &'a RowEdit,
        at: Validity,
    ) -> Option<Stmt<'a>> {
        if expiry.is_none() && edit.is_empty() {
            return None;
        }
        let mut sql = self.row_update_head.clone();
        let mut args = Vec::with_capacity(8 + edit.set.len() * 2 + edit.remove.len());
        match expiry {
            Some(ExpiryUpdate::Extend(t)) => {
                sql.push_str(&self.extend);
                args.extend([Arg::Int(t), Arg::Int(at.max_lifetime())]);
            }
            Some(ExpiryUpdate::Set {
                expires_at,
                idle_timeout,
                persistent,
            }) => {
                sql.push_str(&self.set_expiry);
                args.extend([
                    Arg::Int(expires_at),
                    Arg::Int(at.max_lifetime()),
                    Arg::Int(idle_timeout),
                    Arg::Flag(persistent),
                ]);
            }
            None => {}
        }
        if !edit.is_empty() {
            if expiry.is_some() {
                sql.push_str(", ");
            }
            sql.push_str("data = ");
            self.merge(&mut sql, &mut args, edit);
        }
        sql.push_str(&self.row_update_tail);
        args.push(Arg::Bytes(key.as_bytes()));
        args.extend(alive_args(at));
        Some(Stmt {
            sql: sql.into(),
            args,
        })
    }

    /// The edited document: the row's own (or an empty one for a
    /// `clear`), its removed keys dropped, its set keys written, in the
    /// dialect's functions.
    fn merge<'a>(&self, sql: &mut String, args: &mut Vec<Arg<'a>>, edit: &'a RowEdit) {
        let base = if edit.clear {
            self.doc_empty
        } else {
            self.doc_base.as_str()
        };
        // PostgreSQL's `jsonb_build_object` takes any type: say which.
        let (text, marker) = match self.json {
            JsonDialect::Postgres => ("?::text, ?::text", "?::text, 0"),
            JsonDialect::MySql | JsonDialect::Sqlite => ("?, ?", "?, 0"),
        };
        let set = |sql: &mut String, args: &mut Vec<Arg<'a>>| {
            for (i, (key, value)) in edit.set.iter().enumerate() {
                if i > 0 {
                    sql.push_str(", ");
                }
                args.push(Arg::Text(key));
                match value {
                    Some(value) => {
                        sql.push_str(text);
                        args.push(Arg::Text(value));
                    }
                    // A field in a row of its own: the document says so.
                    None => sql.push_str(marker),
                }
            }
        };
        match self.json {
            JsonDialect::MySql | JsonDialect::Sqlite => {
                if !edit.set.is_empty() {
                    sql.push_str("JSON_SET(");
                }
                if !edit.remove.is_empty() {
                    sql.push_str("JSON_REMOVE(");
                }
                sql.push_str(base);
                if !edit.remove.is_empty() {
                    for key in &edit.remove {
                        sql.push_str(", ?");
                        args.push(Arg::Text(key));
                    }
                    sql.push(')');
                }
                if !edit.set.is_empty() {
                    sql.push_str(", ");
                    set(sql, args);
                    sql.push(')');
                }
            }
            JsonDialect::Postgres => {
                sql.push('(');
                sql.push_str(base);
                for key in &edit.remove {
                    sql.push_str(" - ?::text");
                    args.push(Arg::Text(key));
                }
                sql.push(')');
                if !edit.set.is_empty() {
                    sql.push_str(" || jsonb_build_object(");
                    set(sql, args);
                    sql.push(')');
                }
            }
        }
    }

    /// The document key of field `name`: a path on MySQL and SQLite, the
    /// name itself on PostgreSQL.
    pub(crate) fn doc_key(&self, name: &str) -> String {
        match self.json {
            JsonDialect::Postgres => name.to_string(),
            JsonDialect::MySql | JsonDialect::Sqlite => {
                // Stored names are ASCII letters, digits, `_`, `-` and `.`
                // (checked by the derive); quoted, so a `.` is no step.
                let mut path = String::with_capacity(name.len() + 4);
                path.push_str("$.\"");
                for c in name.chars() {
                    if matches!(c, '"' | '\\') {
                        path.push('\\');
                    }
                    path.push(c);
                }
                path.push('"');
                path
            }
        }
    }

    /// What the replaced key `key` names now (see `SessionStore::previous`).
    pub(crate) fn previous<'a>(&'a self, key: &'a StoreKey, now: i64) -> Stmt<'a> {
        Stmt {
            sql: Cow::Borrowed(&self.previous),
            args: vec![Arg::Bytes(key.as_bytes()), Arg::Int(now)],
        }
    }

    pub(crate) fn moved<'a>(&'a self, key: &'a StoreKey, now: i64) -> Stmt<'a> {
        Stmt {
            sql: Cow::Borrowed(&self.moved),
            args: vec![Arg::Bytes(key.as_bytes()), Arg::Int(now)],
        }
    }

    pub(crate) fn destroy<'a>(&'a self, key: &'a StoreKey, now: i64) -> Stmt<'a> {
        Stmt {
            sql: Cow::Borrowed(&self.destroy),
            args: vec![
                Arg::Bytes(key.as_bytes()),
                Arg::Bytes(key.as_bytes()),
                Arg::Int(now),
            ],
        }
    }

    pub(crate) fn expired(&self, at: Validity, batch: u32) -> Stmt<'_> {
        Stmt {
            sql: Cow::Borrowed(&self.expired),
            args: vec![
                Arg::Int(at.now),
                Arg::Int(at.created_after),
                Arg::Int(i64::from(batch)),
            ],
        }
    }

    /// Deletes the picked sessions, re-checking they are dead in case a
    /// request touched one in between.
    pub(crate) fn delete(&self, pks: &[i64], at: Validity) -> Stmt<'static> {
        let mut sql = self.delete_head.clone();
        placeholders(&mut sql, pks.len());
        sql.push_str(") AND NOT (");
        sql.push_str(&alive(""));
        sql.push(')');
        let mut args: Vec<Arg<'_>> = pks.iter().map(|pk| Arg::Int(*pk)).collect();
        args.extend(alive_args(at));
        Stmt {
            sql: sql.into(),
            args,
        }
    }

    /// Whether claims are one `DELETE … RETURNING` (PostgreSQL, SQLite);
    /// else a locking `SELECT` then a delete, in one transaction (MySQL).
    pub(crate) fn returning(&self) -> bool {
        self.returning
    }

    /// Claims up to `batch` dead sessions (with `RETURNING`), or those of
    /// `picked` still dead (a locking `SELECT`, MySQL): either way their
    /// `token_hash, data`.
    pub(crate) fn claim_expired(&self, at: Validity, batch: u32, picked: &[i64]) -> Stmt<'static> {
        let mut args = vec![Arg::Int(at.now), Arg::Int(at.created_after)];
        if self.returning {
            args.push(Arg::Int(i64::from(batch)));
            return Stmt {
                sql: Cow::Owned(self.claim_expired.clone()),
                args,
            };
        }
        let mut sql = self.claim_expired.clone();
        placeholders(&mut sql, picked.len());
        sql.push_str(") FOR UPDATE");
        args.extend(picked.iter().map(|pk| Arg::Int(*pk)));
        Stmt {
            sql: sql.into(),
            args,
        }
    }

    /// How many sessions are alive.
    pub(crate) fn count_live(&self, at: Validity) -> Stmt<'_> {
        Stmt {
            sql: Cow::Borrowed(&self.count_live),
            args: alive_args(at).into(),
        }
    }

    /// Deletes sessions by primary key (what a claim's `SELECT` locked).
    pub(crate) fn delete_pks(&self, pks: &[i64]) -> Stmt<'static> {
        let mut sql = self.delete_head.clone();
        placeholders(&mut sql, pks.len());
        sql.push(')');
        Stmt {
            sql: sql.into(),
            args: pks.iter().map(|pk| Arg::Int(*pk)).collect(),
        }
    }

    /// One cheap query touching every column the store uses.
    pub(crate) fn probe(&self) -> Stmt<'_> {
        Stmt {
            sql: Cow::Borrowed(&self.probe),
            args: Vec::new(),
        }
    }

    pub(crate) fn drop(&self) -> &[String; 4] {
        &self.drop
    }

    /// Sets the session's entry in index `name`.
    pub(crate) fn index_set<'a>(
        &'a self,
        key: &'a StoreKey,
        name: &'a str,
        tag: &'a IndexTag,
        at: Validity,
    ) -> Stmt<'a> {
        let mut args = vec![
            Arg::Text(name),
            Arg::Bytes(&tag[..]),
            Arg::Bytes(key.as_bytes()),
        ];
        args.extend(alive_args(at));
        Stmt {
            sql: Cow::Borrowed(&self.index_set),
            args,
        }
    }

    /// Removes the session's entry in index `name`.
    pub(crate) fn index_unset<'a>(&'a self, key: &'a StoreKey, name: &'a str) -> Stmt<'a> {
        Stmt {
            sql: Cow::Borrowed(&self.index_unset),
            args: vec![Arg::Bytes(key.as_bytes()), Arg::Text(name)],
        }
    }

    /// Removes every index entry of the session (a `clear`).
    pub(crate) fn index_clear<'a>(&'a self, key: &'a StoreKey) -> Stmt<'a> {
        Stmt {
            sql: Cow::Borrowed(&self.index_clear),
            args: vec![Arg::Bytes(key.as_bytes())],
        }
    }

    /// The token hashes of the live sessions with one of `tags` in index
    /// `name`.
    pub(crate) fn find<'a>(
        &'a self,
        name: &'a str,
        tags: &'a [IndexTag],
        at: Validity,
    ) -> Stmt<'a> {
        let mut sql = self.find.clone();
        placeholders(&mut sql, tags.len());
        sql.push(')');
        let mut args = vec![Arg::Text(name)];
        args.extend(alive_args(at));
        args.extend(tags.iter().map(|t| Arg::Bytes(&t[..])));
        Stmt {
            sql: sql.into(),
            args,
        }
    }

    /// Deletes the sessions with one of `tags` in index `name`, but the
    /// one under `except` (a hash no token has when `None`).
    pub(crate) fn destroy_found<'a>(
        &'a self,
        name: &'a str,
        tags: &'a [IndexTag],
        except: &'a [u8; 32],
    ) -> Stmt<'a> {
        let mut sql = self.destroy_found.clone();
        placeholders(&mut sql, tags.len());
        sql.push_str(&self.found_tail);
        let mut args = vec![Arg::Bytes(&except[..]), Arg::Text(name)];
        args.extend(tags.iter().map(|t| Arg::Bytes(&t[..])));
        Stmt {
            sql: sql.into(),
            args,
        }
    }

    /// Deletes the session under `key` if its entry in index `name` is one
    /// of `tags`: one statement, so the check and the delete are one.
    pub(crate) fn destroy_one<'a>(
        &'a self,
        name: &'a str,
        tags: &'a [IndexTag],
        key: &'a StoreKey,
    ) -> Stmt<'a> {
        let mut sql = self.destroy_one.clone();
        placeholders(&mut sql, tags.len());
        sql.push_str("))");
        let mut args = vec![Arg::Bytes(&key.as_bytes()[..]), Arg::Text(name)];
        args.extend(tags.iter().map(|t| Arg::Bytes(&t[..])));
        Stmt {
            sql: sql.into(),
            args,
        }
    }
}

/// Which fields a load returns.
#[derive(Clone, Copy)]
enum Names<'a> {
    /// Every field but these (the deferred ones).
    AllBut(&'a [&'a str]),
    /// Only these.
    Only(&'a [&'a str]),
}
