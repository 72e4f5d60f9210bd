//! The layout check: tables that already exist under the store's names
//! must be the store's own, or launch stops with a message naming the table,
//! the columns found and the fix.

use crate::error::{Error, Result};

use super::backend::{Arg, Backend, Stmt};
use super::statements::{FIELDS_COLUMNS, PREVIOUS_COLUMNS, SESSIONS_COLUMNS};
use super::{map_error, SqlStore};

/// The columns of the first release's `sessions` table, which lacks the
/// columns added since.
const FIRST_LAYOUT: &[&str] = &["pk", "token_hash", "created_at", "expires_at"];

/// How many of each table's columns every layout the store can upgrade
/// has. The columns after them ([`SESSIONS_COLUMNS`]' `data`,
/// [`FIELDS_COLUMNS`]' `version` and `writers`) were added since, as
/// nullable columns at the end, which the store adds itself (instant on
/// MySQL 8, MariaDB 10.3+, PostgreSQL 11+ and SQLite).
const FIRST_SESSIONS: usize = 6;
/// See [`FIRST_SESSIONS`].
const FIRST_FIELDS: usize = 3;
/// See [`FIRST_SESSIONS`].
const FIRST_PREVIOUS: usize = 3;

impl<B: Backend> SqlStore<B> {
    /// Refuses tables that exist under the store's names with another
    /// layout; missing tables pass (creating them is the next step). With
    /// `migrate`, a fields table of the layout before versioned fields gets
    /// its `version` column; without, it is refused with the statement.
    pub(super) async fn check_layout(&self, migrate: bool) -> Result<()> {
        for (table, expected, first) in [
            (&self.names.sessions, SESSIONS_COLUMNS, FIRST_SESSIONS),
            (&self.names.fields, FIELDS_COLUMNS, FIRST_FIELDS),
            (&self.names.previous, PREVIOUS_COLUMNS, FIRST_PREVIOUS),
        ] {
            let stmt = Stmt {
                sql: B::COLUMNS.into(),
                args: vec![Arg::Text(table)],
            };
            let found: Vec<String> = self
                .backend
                .fetch_bytes(&stmt)
                .await
                .map_err(|e| map_error::<B>(e))?
                .into_iter()
                .map(|c| String::from_utf8_lossy(&c).to_ascii_lowercase())
                .collect();
            let missing: Vec<String> = expected
                .iter()
                .filter(|c| !found.iter().any(|f| f == *c))
                .map(|c| (*c).to_string())
                .collect();
            if found.is_empty() || missing.is_empty() {
                continue;
            }
            let added = &expected[found.len().min(expected.len())..];
            let is_older = found.len() >= first
                && found
                    .iter()
                    .map(String::as_str)
                    .eq(expected[..found.len()].iter().copied());
            if is_older {
                let alter: Vec<String> = added
                    .iter()
                    .map(|column| {
                        let ty = match *column {
                            "version" | "rotated" => B::VERSION_TYPE,
                            "writers" => B::WRITERS_TYPE,
                            _ => B::DATA_TYPE,
                        };
                        format!("ALTER TABLE `{table}` ADD COLUMN `{column}` {ty}")
                    })
                    .collect();
                if migrate {
                    tracing::info!(table = %table, columns = %added.join(", "), "adding the session table's newer columns");
                    self.backend
                        .run_ddl(&alter)
                        .await
                        .map_err(|e| map_error::<B>(e))?;
                    continue;
                }
                return Err(Error::config(format!(
                    "table `{table}` lacks the column(s) {} (it was created by an earlier \
                     session-rocket) and `create_tables = false`: run `{}` (or let the store \
                     add them with `create_tables = true`)",
                    added.join(", "),
                    alter.join("; ")
                )));
            }
            let hint = if found
                .iter()
                .map(String::as_str)
                .eq(FIRST_LAYOUT.iter().copied())
            {
                "it was created by session-rocket 0.1.0, before sessions kept their own idle \
                 timeout and cookie choice; add the columns with the statements of \
                 `schema_sql()` for this table (or drop the session tables, which logs \
                 everyone out)"
                    .to_string()
            } else {
                format!(
                    "it belongs to other software (express-mysql-session, Laravel, Rails and \
                     Django all use such names): set `table_prefix` (e.g. `table_prefix = \"rs_\"`) \
                     so the sessions get tables of their own, `{}sessions` and `{}session_fields`",
                    if self.names.prefix().is_empty() { "rs_" } else { self.names.prefix() },
                    if self.names.prefix().is_empty() { "rs_" } else { self.names.prefix() },
                )
            };
            return Err(Error::config(format!(
                "table `{table}` already exists with another layout: found columns ({}), \
                 missing ({}); {hint}",
                list(&found),
                list(&missing),
            )));
        }
        if !migrate {
            // A table added since the first release: created by
            // `create_tables`, missing from a database set up by hand for an
            // earlier one.
            let table = &self.names.previous;
            let stmt = Stmt {
                sql: B::COLUMNS.into(),
                args: vec![Arg::Text(table)],
            };
            let found = self
                .backend
                .fetch_bytes(&stmt)
                .await
                .map_err(|e| map_error::<B>(e))?;
            if found.is_empty() {
                let ddl: Vec<String> = self
                    .names
                    .ddl(B::SCHEMA)
                    .into_iter()
                    .filter(|s| s.contains(&format!("`{table}`")))
                    .collect();
                return Err(Error::config(format!(
                    "table `{table}` is missing (a regenerate keeps the tokens it replaced there; \
                     it was added after the release that created the other tables) and \
                     `create_tables = false`: run `{}` (or let the store create it with \
                     `create_tables = true`)",
                    ddl.join("; ")
                )));
            }
        }
        Ok(())
    }
}

/// The names, comma-separated.
fn list(names: &[String]) -> String {
    names.join(", ")
}
