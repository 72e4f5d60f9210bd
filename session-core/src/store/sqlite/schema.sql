-- Tables of the SQLite session store (session-core, feature `sqlite`).
-- The store creates them at launch unless `create_tables = false`. With
-- `table_prefix = "app_"`, prefix every name that starts with
-- `sessions`, `session_fields`, `session_index` or `session_previous` (tables,
-- indexes, constraints).
-- Foreign keys must be on (sqlx turns them on for every connection).

CREATE TABLE IF NOT EXISTS `sessions` (
  -- AUTOINCREMENT: a destroyed session's key is never handed out again.
  `pk` INTEGER PRIMARY KEY AUTOINCREMENT,
  -- SHA-256 of the cookie's token: a copy of this table lets no one log in.
  `token_hash` BLOB NOT NULL UNIQUE,
  -- Unix seconds.
  `created_at` INTEGER NOT NULL,
  `expires_at` INTEGER NOT NULL,
  -- The session's own idle timeout in seconds (`ttl`, or its `set_expiry`).
  `idle_timeout` INTEGER NOT NULL,
  -- The session's own cookie choice: 1 persistent (set_expiry), 0 browser-session
  -- (expire_on_close), NULL the configured `persistent`.
  `persistent` INTEGER NULL,
  -- The session's small fields (values of at most 1 KB), as a JSON object
  -- of base64 values edited in place with json_set; a field in a row of its
  -- own in `session_fields` (larger, versioned) is a 0 here. NULL for a row
  -- written before this column existed: all its fields are rows.
  `data` TEXT
);

CREATE INDEX IF NOT EXISTS `sessions_expires_at` ON `sessions` (`expires_at`);

CREATE INDEX IF NOT EXISTS `sessions_created_at` ON `sessions` (`created_at`);

CREATE TABLE IF NOT EXISTS `session_fields` (
  `session_pk` INTEGER NOT NULL REFERENCES `sessions` (`pk`) ON DELETE CASCADE,
  `name` TEXT NOT NULL,
  `value` BLOB NOT NULL,
  -- Set only for `#[session(versioned)]` fields (compare-and-set).
  `version` INTEGER,
  -- The random tags of the last writes of a versioned field (8 bytes each,
  -- newest first): a write whose reply was lost recognises itself by its tag.
  `writers` BLOB,
  PRIMARY KEY (`session_pk`, `name`)
) WITHOUT ROWID;

-- `#[session(index)]` fields: one row per session and indexed field, with
-- a keyed digest of the value (never the value).
CREATE TABLE IF NOT EXISTS `session_index` (
  `session_pk` INTEGER NOT NULL REFERENCES `sessions` (`pk`) ON DELETE CASCADE,
  `name` TEXT NOT NULL,
  `tag` BLOB NOT NULL,
  PRIMARY KEY (`session_pk`, `name`)
) WITHOUT ROWID;

CREATE INDEX IF NOT EXISTS `session_index_tag` ON `session_index` (`name`, `tag`);

-- After a regenerate: each replaced token's SHA-256, which reaches the
-- session for a logout (never for reads or writes) until `valid_until`.
-- After a rotation (`rotated` = 1): requests in flight follow it to the
-- session until `valid_until`; it stays while the session lives, so a
-- replay of it is recognised as a stolen token.
CREATE TABLE IF NOT EXISTS `session_previous` (
  `token_hash` BLOB NOT NULL PRIMARY KEY,
  `session_pk` INTEGER NOT NULL REFERENCES `sessions` (`pk`) ON DELETE CASCADE,
  `valid_until` INTEGER NOT NULL,
  `rotated` INTEGER
) WITHOUT ROWID;

CREATE INDEX IF NOT EXISTS `session_previous_session_pk` ON `session_previous` (`session_pk`);

CREATE INDEX IF NOT EXISTS `session_previous_valid_until` ON `session_previous` (`valid_until`);
