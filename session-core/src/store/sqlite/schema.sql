-- Tables of the SQLite session store (session-core, feature `sqlite`).
-- The store creates them at launch unless `create_tables = false`. With
-- `table_prefix = "app_"`, prefix every name that starts with
-- `sessions` or `session_fields` (tables, indexes, constraints).
-- Foreign keys must be on (sqlx turns them on for every connection).

CREATE TABLE IF NOT EXISTS `sessions` (
  `pk` INTEGER PRIMARY KEY,
  -- SHA-256 of the cookie's token: a copy of this table lets no one log in.
  `token_hash` BLOB NOT NULL UNIQUE,
  -- Unix seconds.
  `created_at` INTEGER NOT NULL,
  `expires_at` INTEGER NOT NULL
);

CREATE INDEX IF NOT EXISTS `sessions_expires_at` ON `sessions` (`expires_at`);

CREATE TABLE IF NOT EXISTS `session_fields` (
  `session_pk` INTEGER NOT NULL REFERENCES `sessions` (`pk`) ON DELETE CASCADE,
  `name` TEXT NOT NULL,
  `value` BLOB NOT NULL,
  PRIMARY KEY (`session_pk`, `name`)
) WITHOUT ROWID;
