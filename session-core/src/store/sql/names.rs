//! The store's table names, checked once, and the DDL for them.

use crate::config::validate_prefix;
use crate::error::Result;

/// The table names, checked once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableNames {
    prefix: String,
    pub(crate) sessions: String,
    pub(crate) fields: String,
    pub(crate) index: String,
    pub(crate) previous: String,
}

impl TableNames {
    /// Names with a prefix of ASCII letters, digits and `_`.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) for any other prefix.
    pub fn new(prefix: &str) -> Result<Self> {
        validate_prefix(prefix)?;
        Ok(TableNames {
            prefix: prefix.to_string(),
            sessions: format!("{prefix}sessions"),
            fields: format!("{prefix}session_fields"),
            index: format!("{prefix}session_index"),
            previous: format!("{prefix}session_previous"),
        })
    }

    /// The prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The sessions table's name, unquoted.
    pub fn sessions(&self) -> &str {
        &self.sessions
    }

    /// The fields table's name, unquoted.
    pub fn fields(&self) -> &str {
        &self.fields
    }

    /// The index table's name (`#[session(index)]` fields), unquoted.
    pub fn index(&self) -> &str {
        &self.index
    }

    /// The table of regenerated sessions' replaced keys, unquoted.
    pub fn previous(&self) -> &str {
        &self.previous
    }

    /// The DDL for these names, split into statements: every table, index
    /// and constraint name in the shipped schema starts with `` `sessions``,
    /// `` `session_fields``, `` `session_index`` or `` `session_previous``,
    /// so the prefix goes right after the backquote.
    pub(crate) fn ddl(&self, schema: &str) -> Vec<String> {
        // Comments go first: they may contain `;`.
        let code: String = schema
            .lines()
            .filter(|l| !l.trim_start().starts_with("--"))
            .map(|l| format!("{l}\n"))
            .collect();
        let p = &self.prefix;
        code.replace("`sessions", &format!("`{p}sessions"))
            .replace("`session_fields", &format!("`{p}session_fields"))
            .replace("`session_index", &format!("`{p}session_index"))
            .replace("`session_previous", &format!("`{p}session_previous"))
            .split(';')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    }
}
