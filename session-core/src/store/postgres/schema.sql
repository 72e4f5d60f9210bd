-- Tables of the PostgreSQL session store (session-core, feature `postgres`).
-- The store creates them at launch unless `create_tables = false`; users
-- without the CREATE privilege run this file once instead (the store sends
-- it with the backquotes turned into double quotes). With
-- `table_prefix = "app_"`, prefix every name that starts with `sessions`,
-- `session_fields`, `session_index` or `session_previous` (tables and indexes).

CREATE TABLE IF NOT EXISTS `sessions` (
  `pk` BIGSERIAL PRIMARY KEY,
  -- SHA-256 of the cookie's token: a copy of this table lets no one log in.
  `token_hash` BYTEA NOT NULL UNIQUE,
  -- Unix seconds.
  `created_at` BIGINT NOT NULL,
  `expires_at` BIGINT NOT NULL,
  -- The session's own idle timeout in seconds (`ttl`, or its `set_expiry`).
  `idle_timeout` BIGINT NOT NULL,
  -- The session's own cookie choice: true persistent (set_expiry), false
  -- browser-session (expire_on_close), NULL the configured `persistent`.
  `persistent` BOOLEAN NULL,
  -- The session's small fields (values of at most 1 KB), as a JSON object
  -- of base64 values merged in place with ||; a field in a row of its own
  -- in `session_fields` (larger, versioned) is a 0 here. NULL for a row
  -- written before this column existed: all its fields are rows.
  `data` JSONB NULL
);

CREATE INDEX IF NOT EXISTS `sessions_expires_at` ON `sessions` (`expires_at`);

CREATE INDEX IF NOT EXISTS `sessions_created_at` ON `sessions` (`created_at`);

CREATE TABLE IF NOT EXISTS `session_fields` (
  `session_pk` BIGINT NOT NULL REFERENCES `sessions` (`pk`) ON DELETE CASCADE,
  `name` TEXT NOT NULL,
  `value` BYTEA NOT NULL,
  -- Set only for `#[session(versioned)]` fields (compare-and-set).
  `version` BIGINT NULL,
  -- The random tags of the last writes of a versioned field (8 bytes each,
  -- newest first): a write whose reply was lost recognises itself by its tag.
  `writers` BYTEA NULL,
  PRIMARY KEY (`session_pk`, `name`)
);

-- `#[session(index)]` fields: a keyed digest of the value (never the value).
CREATE TABLE IF NOT EXISTS `session_index` (
  `session_pk` BIGINT NOT NULL REFERENCES `sessions` (`pk`) ON DELETE CASCADE,
  `name` TEXT NOT NULL,
  `tag` BYTEA NOT NULL,
  PRIMARY KEY (`session_pk`, `name`)
);

CREATE INDEX IF NOT EXISTS `session_index_tag` ON `session_index` (`name`, `tag`);

-- After a regenerate: each replaced token's SHA-256, which reaches the
-- session for a logout (never for reads or writes) until `valid_until`.
-- After a rotation (`rotated` = 1): requests in flight follow it to the
-- session until `valid_until`; it stays while the session lives, so a
-- replay of it is recognised as a stolen token.
CREATE TABLE IF NOT EXISTS `session_previous` (
  `token_hash` BYTEA PRIMARY KEY,
  `session_pk` BIGINT NOT NULL REFERENCES `sessions` (`pk`) ON DELETE CASCADE,
  `valid_until` BIGINT NOT NULL,
  `rotated` BIGINT NULL
);

CREATE INDEX IF NOT EXISTS `session_previous_session_pk` ON `session_previous` (`session_pk`);

CREATE INDEX IF NOT EXISTS `session_previous_valid_until` ON `session_previous` (`valid_until`);
