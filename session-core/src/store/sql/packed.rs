//! The packed form of a one-row load (see
//! [`Backend::PACK_FIELDS`](super::Backend::PACK_FIELDS)).

/// One field of a packed load: name, bytes and version (when it has one).
pub(crate) type Packed = (String, Vec<u8>, Option<i64>);

/// Splits the packed fields of a one-row load (see
/// [`Backend::PACK_FIELDS`](super::Backend::PACK_FIELDS)): entries
/// `<name bytes>,<value bytes>[,<version>]:<name><value>` back to back.
/// The lengths say where each name and value ends, so no byte of a value
/// can be mistaken for a separator; `None` (no field rows) is an empty
/// list. Anything that does not end exactly at the last entry's end is an
/// error, never a shorter session.
pub(crate) fn unpack(packed: Option<&[u8]>) -> Result<Vec<Packed>, String> {
    let whole = packed.unwrap_or_default();
    let mut rest = whole;
    let mut fields = Vec::new();
    while !rest.is_empty() {
        let bad = || {
            format!(
                "malformed packed fields at byte {}",
                whole.len() - rest.len()
            )
        };
        let colon = rest.iter().position(|&b| b == b':').ok_or_else(bad)?;
        let head = std::str::from_utf8(&rest[..colon]).map_err(|_| bad())?;
        let mut numbers = head.split(',');
        let mut next = || -> Option<Option<u64>> { numbers.next().map(|n| n.parse().ok()) };
        let (Some(Some(name_len)), Some(Some(value_len))) = (next(), next()) else {
            return Err(bad());
        };
        let version = match next() {
            None => None,
            Some(Some(v)) => Some(i64::try_from(v).map_err(|_| bad())?),
            Some(None) => return Err(bad()),
        };
        if next().is_some() {
            return Err(bad());
        }
        let (name_len, value_len) = (
            usize::try_from(name_len).map_err(|_| bad())?,
            usize::try_from(value_len).map_err(|_| bad())?,
        );
        let body = &rest[colon + 1..];
        if body.len() < name_len.saturating_add(value_len) {
            return Err(bad());
        }
        let (name, body) = body.split_at(name_len);
        let (value, body) = body.split_at(value_len);
        let name =
            String::from_utf8(name.to_vec()).map_err(|e| format!("packed field name: {e}"))?;
        fields.push((name, value.to_vec(), version));
        rest = body;
    }
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::unpack;

    #[test]
    fn unpack_reads_what_the_aggregate_packs() {
        assert_eq!(unpack(None), Ok(vec![]));
        assert_eq!(unpack(Some(b"")), Ok(vec![]));
        let packed = b"1,3:a,:;2,0,7:\xc3\xa9";
        assert_eq!(
            unpack(Some(packed)),
            Ok(vec![
                ("a".into(), b",:;".to_vec(), None),
                ("\u{e9}".into(), vec![], Some(7))
            ])
        );
    }

    #[test]
    fn unpack_refuses_anything_short_or_malformed() {
        // A truncated value, a missing length, a length that is not a
        // number, trailing bytes: errors, never a shorter session.
        for bad in [
            &b"1,3:a,:"[..],
            b"1:ab",
            b"x,1:ab",
            b"1,1:ab1",
            b"1,1:a",
            b"1,1,x:ab",
            b"1,1,2,3:ab",
        ] {
            assert!(
                unpack(Some(bad)).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
