-- Tables of the MySQL / MariaDB session store (session-core, feature `mysql`).
-- The store creates them at launch unless `create_tables = false`; users
-- without the CREATE privilege run this file once instead. With
-- `table_prefix = "app_"`, prefix every name that starts with
-- `sessions`, `session_fields`, `session_index` or `session_previous` (tables,
-- indexes, constraints).
-- Works on MySQL 5.7+/8 and MariaDB 10.5+, and on Galera clusters (every
-- table has a primary key; InnoDB only).

CREATE TABLE IF NOT EXISTS `sessions` (
  `pk` BIGINT NOT NULL AUTO_INCREMENT,
  -- SHA-256 of the cookie's token: a copy of this table lets no one log in.
  `token_hash` BINARY(32) NOT NULL,
  -- Unix seconds.
  `created_at` BIGINT NOT NULL,
  `expires_at` BIGINT NOT NULL,
  -- The session's own idle timeout in seconds (`ttl`, or its `set_expiry`).
  `idle_timeout` BIGINT NOT NULL,
  -- The session's own cookie choice: 1 persistent (set_expiry), 0 browser-session
  -- (expire_on_close), NULL the configured `persistent`.
  `persistent` TINYINT NULL,
  -- The session's small fields (values of at most 1 KB), as a JSON object
  -- of base64 values edited in place with JSON_SET; a field in a row of its
  -- own in `session_fields` (larger, versioned) is a 0 here. NULL for a row
  -- written before this column existed: all its fields are rows.
  `data` LONGTEXT CHARACTER SET utf8mb4 NULL,
  PRIMARY KEY (`pk`),
  UNIQUE KEY `sessions_token_hash` (`token_hash`),
  KEY `sessions_expires_at` (`expires_at`),
  KEY `sessions_created_at` (`created_at`)
) ENGINE = InnoDB;

CREATE TABLE IF NOT EXISTS `session_fields` (
  `session_pk` BIGINT NOT NULL,
  `name` VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  `value` MEDIUMBLOB NOT NULL,
  -- Set only for `#[session(versioned)]` fields (compare-and-set); NULL
  -- (version 0) for every other field, so loading it costs them nothing.
  `version` BIGINT NULL,
  -- The random tags of the last writes of a versioned field (8 bytes each,
  -- newest first): a write whose reply was lost recognises itself by its tag.
  `writers` VARBINARY(128) NULL,
  PRIMARY KEY (`session_pk`, `name`),
  CONSTRAINT `session_fields_session_fk` FOREIGN KEY (`session_pk`)
    REFERENCES `sessions` (`pk`) ON DELETE CASCADE
) ENGINE = InnoDB;

-- `#[session(index)]` fields: one row per session and indexed field, with
-- a keyed digest of the value (never the value). Written only when an
-- indexed field is; "log out everywhere" finds sessions through it.
CREATE TABLE IF NOT EXISTS `session_index` (
  `session_pk` BIGINT NOT NULL,
  `name` VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  `tag` BINARY(32) NOT NULL,
  PRIMARY KEY (`session_pk`, `name`),
  KEY `session_index_tag` (`name`, `tag`),
  CONSTRAINT `session_index_session_fk` FOREIGN KEY (`session_pk`)
    REFERENCES `sessions` (`pk`) ON DELETE CASCADE
) ENGINE = InnoDB;

-- After a regenerate: each replaced token's SHA-256, which reaches the
-- session for a logout (never for reads or writes) until `valid_until`.
-- After a rotation (`rotated` = 1): requests in flight follow it to the
-- session until `valid_until`; it stays while the session lives, so a
-- replay of it is recognised as a stolen token.
CREATE TABLE IF NOT EXISTS `session_previous` (
  `token_hash` BINARY(32) NOT NULL,
  `session_pk` BIGINT NOT NULL,
  `valid_until` BIGINT NOT NULL,
  `rotated` BIGINT NULL,
  PRIMARY KEY (`token_hash`),
  KEY `session_previous_session_pk` (`session_pk`),
  KEY `session_previous_valid_until` (`valid_until`),
  CONSTRAINT `session_previous_session_fk` FOREIGN KEY (`session_pk`)
    REFERENCES `sessions` (`pk`) ON DELETE CASCADE
) ENGINE = InnoDB;
