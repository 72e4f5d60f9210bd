//! The session row's document: the small fields of a session, kept in
//! its `sessions` row as one JSON object, so that reading a session is one
//! lookup in one table (measured: BENCHMARKS.md, ninth run).
//!
//! Each key is a field's stored name. Its value is the base64 of the
//! field's bytes when they are at most [`ROW_VALUE_BYTES`]; `0` when the
//! field is in a row of its own in `session_fields` (larger values, and
//! versioned fields, whose version and writers live there). A save edits
//! the document on the server (`JSON_SET`, `||`, `json_set`) key by key
//! under the row's lock, so two requests that change different fields of
//! one session both keep their change, and only what changed is sent.
//!
//! A row written before the column existed has no document (`NULL`): all
//! its fields are rows, and its first write marks them in a new document
//! (see `Statements::row_update`). A field row whose key the document does
//! not hold (written by an earlier release into a session that has a
//! document) still counts; a key with a value wins over a stale row.
//!
//! A versioned field's value is always in its row: the typed layer writes
//! such a field only with its expectation, which a save turns into a
//! compare-and-set of the row and the field's `0` in the document. A
//! plain write (no expectation) of a field the store knows to be in a row
//! goes to the row too and keeps its version; a store that never saw the
//! field puts a plain write in the document, where it wins over the row
//! (its version then reads as 0). Only a caller of the store API who
//! writes a versioned field without its expectation can do that.

use std::borrow::Cow;
use std::fmt;

use base64::Engine as _;
use serde::de::{self, Deserializer, MapAccess, Visitor};

/// The largest field value (its stored bytes) kept in the session's own
/// row; a larger one gets a row of its own in `session_fields`, so that a
/// write of a small field never rewrites it and a load that does not need
/// it never reads it. Measured (BENCHMARKS.md, ninth run): a load that is
/// one lookup in one table runs at the floor, and `JSON_SET` on a 58 KB
/// document costs the server twice a 4 KB one.
pub(crate) const ROW_VALUE_BYTES: usize = 1024;

/// Whether a field's value is kept in the session's row (see
/// [`ROW_VALUE_BYTES`]).
pub(crate) fn in_row(value: &[u8]) -> bool {
    value.len() <= ROW_VALUE_BYTES
}

/// One key of a loaded document.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Entry<'a> {
    /// The base64 of the field's bytes.
    Value(Cow<'a, str>),
    /// The field is in a row of its own.
    Row,
}

/// A loaded document, borrowed from the column's text: only the entries a
/// load needs are decoded from base64.
#[derive(Debug, Default)]
pub(crate) struct Doc<'a>(pub(crate) Vec<(Cow<'a, str>, Entry<'a>)>);

impl<'a> Doc<'a> {
    /// Parses a document; an error names what is wrong, never a shorter
    /// session.
    pub(crate) fn parse(text: &'a str) -> Result<Doc<'a>, String> {
        let mut de = serde_json::Deserializer::from_str(text);
        let doc = de
            .deserialize_map(DocVisitor)
            .and_then(|doc| de.end().map(|()| doc))
            .map_err(|e| format!("the session row's document does not parse: {e}"))?;
        Ok(doc)
    }

    /// The entry of field `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&Entry<'a>> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, e)| e)
    }

    /// The names of the fields in rows of their own.
    pub(crate) fn in_rows(&self) -> impl Iterator<Item = &str> {
        self.0
            .iter()
            .filter(|(_, e)| *e == Entry::Row)
            .map(|(n, _)| n.as_ref())
    }
}

/// The bytes of an entry's value.
pub(crate) fn decode(name: &str, value: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::STANDARD
        .decode(value)
        .map_err(|e| format!("field `{name}` in the session row's document is not base64: {e}"))
}

struct DocVisitor;

impl<'de> Visitor<'de> for DocVisitor {
    type Value = Doc<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object of base64 strings and zeros")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Doc<'de>, A::Error> {
        let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(8));
        while let Some(key) = map.next_key::<CowStr<'de>>()? {
            let entry = map.next_value::<EntrySeed<'de>>()?;
            entries.push((key.0, entry.0));
        }
        Ok(Doc(entries))
    }
}

/// A string borrowed from the text where it has no escapes.
struct CowStr<'a>(Cow<'a, str>);

impl<'de> de::Deserialize<'de> for CowStr<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(StrVisitor).map(CowStr)
    }
}

struct StrVisitor;

impl<'de> Visitor<'de> for StrVisitor {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_string()))
    }
}

struct EntrySeed<'a>(Entry<'a>);

impl<'de> de::Deserialize<'de> for EntrySeed<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(EntryVisitor).map(EntrySeed)
    }
}

struct EntryVisitor;

impl<'de> Visitor<'de> for EntryVisitor {
    type Value = Entry<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a base64 string or 0")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Entry::Value(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Entry::Value(Cow::Owned(v.to_string())))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        if v == 0 {
            Ok(Entry::Row)
        } else {
            Err(E::custom(format!("unexpected number {v}")))
        }
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        self.visit_u64(u64::try_from(v).map_err(|_| E::custom(format!("unexpected number {v}")))?)
    }
}

/// The edits of a session row's document of small fields one save makes:
/// keys set to a value (base64 of the field's bytes) or to `0` (the field
/// is in a row of its own), keys removed, and whether the document starts
/// empty (a `clear`). Keys are in the dialect's form (see
/// `Statements::doc_key`).
#[derive(Debug, Default)]
pub(crate) struct RowEdit {
    pub(crate) clear: bool,
    pub(crate) set: Vec<(String, Option<String>)>,
    pub(crate) remove: Vec<String>,
}

impl RowEdit {
    pub(crate) fn is_empty(&self) -> bool {
        !self.clear && self.set.is_empty() && self.remove.is_empty()
    }
}

/// A new session's document: its small fields' values, and a `0` for
/// each field that goes to a row of its own.
pub(crate) fn document(fields: &[(&'static str, Vec<u8>)]) -> String {
    let map: serde_json::Map<String, serde_json::Value> = fields
        .iter()
        .map(|(name, value)| {
            let entry = if in_row(value) {
                serde_json::Value::String(base64::engine::general_purpose::STANDARD.encode(value))
            } else {
                serde_json::Value::from(0)
            };
            ((*name).to_string(), entry)
        })
        .collect();
    serde_json::Value::Object(map).to_string()
}

#[cfg(test)]
mod tests {
    use super::{document, Doc, Entry};

    #[test]
    fn a_document_reads_back_what_a_new_session_writes() {
        let big = vec![7u8; super::ROW_VALUE_BYTES + 1];
        let text = document(&[("a", b"1".to_vec()), ("big", big), ("e", Vec::new())]);
        let doc = Doc::parse(&text).unwrap();
        assert_eq!(doc.get("a"), Some(&Entry::Value("MQ==".into())));
        assert_eq!(doc.get("big"), Some(&Entry::Row));
        assert_eq!(doc.get("e"), Some(&Entry::Value("".into())));
        assert_eq!(doc.in_rows().collect::<Vec<_>>(), ["big"]);
        assert_eq!(super::decode("a", "MQ==").unwrap(), b"1");
    }

    #[test]
    fn a_malformed_document_is_an_error() {
        for bad in [
            "",
            "[]",
            "{\"a\": 1}",
            "{\"a\": true}",
            "{\"a\": \"x\"} x",
            "{\"a\"",
        ] {
            assert!(Doc::parse(bad).is_err(), "{bad}");
        }
        assert!(super::decode("a", "!!").is_err());
    }
}
