//! Table-name checks, shared by every SQL store.

use crate::error::{Error, Result};

/// The longest prefix we accept: MySQL identifiers are at most 64
/// characters, and the longest table name we append is `session_fields`
/// plus a constraint suffix.
const MAX_PREFIX: usize = 32;

/// Accepts a table prefix made of ASCII letters, digits and `_` that does not
/// start with a digit, so it can be spliced into SQL without quoting
/// surprises.
///
/// # Errors
/// [`Error::Config`] naming `table_prefix` and the rule.
pub(crate) fn validate_prefix(prefix: &str) -> Result<()> {
    let ok = prefix.len() <= MAX_PREFIX
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !prefix.starts_with(|c: char| c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(Error::config(format!(
            "`table_prefix` must be at most {MAX_PREFIX} ASCII letters, digits or `_` and not start with a digit, got {prefix:?}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::validate_prefix;

    #[test]
    fn prefixes_are_identifiers() {
        assert!(validate_prefix("app_").is_ok());
        assert!(validate_prefix("").is_ok());
        assert!(validate_prefix("x`; DROP TABLE users; --").is_err());
        assert!(validate_prefix("1app").is_err());
    }
}
