//! Reading the Redis store's replies and writing its key names.

use redis::Value;

use crate::error::{Error, Result};
use crate::store::Record;
use crate::token::StoreKey;

/// Lowercase hex of bytes.
pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bytes of a reply item.
fn bytes(value: &Value) -> Option<&[u8]> {
    match value {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.as_bytes()),
        _ => None,
    }
}

fn number(value: &[u8]) -> Option<i64> {
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// A session from the pairs of its hash.
pub(super) fn record(pairs: &[Value]) -> Result<Record> {
    let corrupt = || Error::Backend("a Redis session hash is malformed".into());
    let mut record = Record::default();
    for pair in pairs.chunks(2) {
        let [name, value] = pair else {
            return Err(corrupt());
        };
        let (name, value) = (
            bytes(name).ok_or_else(corrupt)?,
            bytes(value).ok_or_else(corrupt)?,
        );
        let text = |n: &[u8]| String::from_utf8(n.to_vec()).map_err(|_| corrupt());
        match name {
            b"_c" => record.created_at = number(value).ok_or_else(corrupt)?,
            b"_e" => record.expires_at = number(value).ok_or_else(corrupt)?,
            b"_i" => record.idle_timeout = number(value).ok_or_else(corrupt)?,
            b"_p" => record.persistent = Some(value == b"t"),
            _ => match name.split_at_checked(2) {
                Some((b"f:", n)) => record.fields.push((text(n)?, value.to_vec())),
                Some((b"v:", n)) => {
                    let version =
                        u64::try_from(number(value).ok_or_else(corrupt)?).map_err(|_| corrupt())?;
                    record.versions.push((text(n)?, version));
                }
                _ => {}
            },
        }
    }
    // A version is reported only for a present field.
    let present: Vec<String> = record.fields.iter().map(|(n, _)| n.clone()).collect();
    record.versions.retain(|(n, _)| present.contains(n));
    Ok(record)
}

pub(super) fn flag(persistent: Option<bool>) -> &'static str {
    match persistent {
        Some(true) => "t",
        Some(false) => "f",
        None => "",
    }
}

pub(super) fn parse_hex(text: &str) -> Option<StoreKey> {
    let mut out = [0u8; 32];
    if text.len() != 64 {
        return None;
    }
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(StoreKey::from_bytes(out))
}
