//! The fairing on a sqlx pool the app already has: the store is built from
//! it at ignite, with the configuration's `table_prefix`.

use std::sync::Arc;

use session_core::store::SessionStore;

use crate::Sessions;

impl Sessions {
    /// The fairing on an existing MySQL pool, shared with the app. The
    /// tables (with `table_prefix`) are created at ignite unless
    /// `create_tables = false`. The pool must come from the same sqlx as
    /// [`crate::sqlx`].
    #[cfg(feature = "mysql")]
    #[cfg_attr(docsrs, doc(cfg(feature = "mysql")))]
    pub fn with_mysql_pool(pool: sqlx::MySqlPool) -> Self {
        use session_core::store::mysql::MySqlStore;
        Sessions::build_with(
            "mysql",
            Arc::new(move |config| {
                let store = MySqlStore::new(pool.clone())
                    .with_statement_timeout(config.statement_timeout())
                    .with_table_prefix(&config.table_prefix)?;
                Ok(Arc::new(store) as Arc<dyn SessionStore>)
            }),
        )
    }

    /// The fairing on an existing SQLite pool, shared with the app (its
    /// connections need foreign keys on, sqlx's default).
    #[cfg(feature = "sqlite")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
    pub fn with_sqlite_pool(pool: sqlx::SqlitePool) -> Self {
        use session_core::store::sqlite::SqliteStore;
        Sessions::build_with(
            "sqlite",
            Arc::new(move |config| {
                let store = SqliteStore::new(pool.clone())
                    .with_statement_timeout(config.statement_timeout())
                    .with_table_prefix(&config.table_prefix)?;
                Ok(Arc::new(store) as Arc<dyn SessionStore>)
            }),
        )
    }
}
