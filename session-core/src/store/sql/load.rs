//! How a SQL store reads a session: the session's row (its document of
//! small fields) and, in the same statement, the rows of the fields it is
//! known to keep apart; a second statement only for a field the document
//! marks and the store did not know of (see [`doc`](super::doc)).

use super::backend::{Backend, SessionRow};
use super::doc::{self, Doc, Entry};
use super::SqlStore;
use crate::error::{Error, Result};
use crate::store::{Record, Validity, LIFETIME_PREFIX};
use crate::token::StoreKey;

/// Which fields a load returns.
#[derive(Clone, Copy)]
pub(super) enum Want<'a> {
    /// Every field but these (the deferred ones).
    AllBut(&'a [&'a str]),
    /// Only these.
    Only(&'a [&'a str]),
}

/// Which field rows a statement of a load returns with the session's row.
#[derive(Clone, Copy)]
enum Rows<'a> {
    /// These (none: the session's row alone).
    Only(&'a [String]),
    /// Every field row but these.
    AllBut(&'a [&'a str]),
}

impl Want<'_> {
    fn wants(&self, name: &str) -> bool {
        match self {
            Want::AllBut(skip) => !skip.contains(&name),
            Want::Only(only) => only.contains(&name),
        }
    }
}

impl<B: Backend> SqlStore<B> {
    /// A load: the session's row, with the rows of the wanted fields known
    /// to be in rows of their own; then, only when the row's document
    /// marks a wanted field this store did not know to be in a row (or the
    /// row has no document yet), those rows by a second statement.
    pub(super) async fn fetch(
        &self,
        key: &StoreKey,
        want: Want<'_>,
        at: Validity,
    ) -> Result<Option<Record>> {
        let hinted: Vec<String> = self
            .in_rows
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .filter(|n| want.wants(n))
            .cloned()
            .collect();
        let Some(mut rows) = self.fetch_rows(key, Rows::Only(&hinted), at).await? else {
            return Ok(None);
        };
        let data = rows[0].data.take();
        let doc = document(data.as_deref())?;
        let missing: Vec<&str> = match &doc {
            // A row from before the document: every field is a row.
            None => match want {
                Want::AllBut(skip) => {
                    let Some(all) = self.fetch_rows(key, Rows::AllBut(skip), at).await? else {
                        return Ok(None);
                    };
                    rows = all;
                    Vec::new()
                }
                Want::Only(only) => only
                    .iter()
                    .copied()
                    .filter(|n| !hinted.iter().any(|h| h == n))
                    .collect(),
            },
            Some(doc) => doc
                .in_rows()
                .filter(|n| want.wants(n) && !hinted.iter().any(|h| h == n))
                .collect(),
        };
        if !missing.is_empty() {
            if doc.is_some() {
                self.learn(&missing);
            }
            let names: Vec<String> = missing.iter().map(|n| (*n).to_string()).collect();
            let Some(more) = self.fetch_rows(key, Rows::Only(&names), at).await? else {
                return Ok(None);
            };
            rows.extend(more.into_iter().filter(|r| r.field.is_some()));
        }
        let record =
            record(rows, doc.as_ref(), want, at.now).map_err(|e| Error::Backend(e.into()))?;
        self.counters.loaded(record.fields.len());
        Ok(Some(record))
    }

    /// One field (a deferred one): most likely large, so in a row of its
    /// own, whose row the one statement asks for with the session's.
    pub(super) async fn fetch_field(
        &self,
        key: &StoreKey,
        name: &str,
        at: Validity,
    ) -> Result<Option<Vec<u8>>> {
        let names = [name.to_string()];
        let Some(mut rows) = self.fetch_rows(key, Rows::Only(&names), at).await? else {
            return Ok(None);
        };
        let data = rows[0].data.take();
        let doc = document(data.as_deref())?;
        let only = [name];
        let record = record(rows, doc.as_ref(), Want::Only(&only), at.now)
            .map_err(|e| Error::Backend(e.into()))?;
        let value = record.fields.into_iter().next().map(|(_, v)| v);
        self.counters.loaded(usize::from(value.is_some()));
        Ok(value)
    }

    /// The session's row and the field rows `rows` names; `None` when
    /// the session is not alive.
    async fn fetch_rows(
        &self,
        key: &StoreKey,
        rows: Rows<'_>,
        at: Validity,
    ) -> Result<Option<Vec<SessionRow>>> {
        let names: Vec<&str>;
        let stmt = match rows {
            Rows::Only([]) => self.sql.load_row(key, at),
            Rows::Only(only) => {
                names = only.iter().map(String::as_str).collect();
                self.sql.load_only(key, &names, at)
            }
            Rows::AllBut(skip) => self.sql.load(key, skip, at),
        };
        let rows = self.read(|| self.backend.fetch_session(&stmt)).await?;
        Ok((!rows.is_empty()).then_some(rows))
    }

    /// Whether field `name` was found in a row of its own.
    pub(super) fn is_known_in_rows(&self, name: &str) -> bool {
        self.in_rows
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .any(|n| n == name)
    }

    /// Remembers fields found in rows of their own.
    pub(super) fn learn(&self, names: &[&str]) {
        // Every save of a large or versioned field names them again: the
        // shared lock answers that, the exclusive one only adds.
        if names.iter().all(|n| self.is_known_in_rows(n)) {
            return;
        }
        let mut known = self
            .in_rows
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for name in names {
            // Bounded: names come from the app's session types.
            if known.len() < 1024 && !known.iter().any(|k| k == name) {
                known.push((*name).to_string());
            }
        }
    }
}

/// A session row's document, parsed; `None` for a row from before the
/// column.
fn document(data: Option<&str>) -> Result<Option<Doc<'_>>> {
    data.map(Doc::parse)
        .transpose()
        .map_err(|e| Error::Backend(e.into()))
}

/// The session a load's rows and its row's document describe: the
/// document's values of the wanted fields, and the wanted field rows the
/// document does not override with a value of its own; never a field
/// whose own lifetime is over at `now` (its `@ttl:` entry, in the
/// document, says when).
pub(super) fn record(
    rows: Vec<SessionRow>,
    doc: Option<&Doc<'_>>,
    want: Want<'_>,
    now: i64,
) -> Result<Record, String> {
    let mut expired: Vec<&str> = Vec::new();
    if let Some(doc) = doc {
        for (name, entry) in &doc.0 {
            let (Some(field), Entry::Value(value)) = (name.strip_prefix(LIFETIME_PREFIX), entry)
            else {
                continue;
            };
            let until = doc::decode(name, value)?;
            let until: Option<i64> = std::str::from_utf8(&until)
                .ok()
                .and_then(|t| t.parse().ok());
            if until.is_some_and(|until| until <= now) {
                expired.push(field);
            }
        }
    }
    let live = |name: &str| want.wants(name) && !expired.contains(&name);
    let first = rows.first().ok_or("no session row")?;
    let (created_at, expires_at, idle_timeout, persistent) = (
        first.created_at,
        first.expires_at,
        first.idle_timeout,
        first.persistent,
    );
    let mut fields = Vec::new();
    let mut versions = Vec::new();
    if let Some(doc) = doc {
        for (name, entry) in &doc.0 {
            if let Entry::Value(value) = entry {
                if live(name) {
                    fields.push((name.to_string(), doc::decode(name, value)?));
                }
            }
        }
    }
    for row in rows {
        let Some((name, value)) = row.field else {
            continue;
        };
        let overridden = doc.is_some_and(|d| matches!(d.get(&name), Some(Entry::Value(_))));
        if overridden || !want.wants(&name) || fields.iter().any(|(n, _)| *n == name) {
            continue;
        }
        let version = row.version.and_then(|v| u64::try_from(v).ok());
        if !live(&name) {
            // Expired: never returned; its version is, for its next write.
            versions.extend(version.map(|v| (name, v)));
            continue;
        }
        if let Some(version) = version {
            versions.push((name.clone(), version));
        }
        fields.push((name, value));
    }
    Ok(Record {
        created_at,
        expires_at,
        idle_timeout,
        persistent,
        fields,
        versions,
    })
}
