/**
 * Versioned schema. Append a migration, never edit one that has shipped. Plain SQL that
 * PostgreSQL also accepts (TEXT timestamps in ISO 8601, no SQLite-only types).
 */
export const MIGRATIONS: readonly string[] = [
  // 1: keys, versions, clients, grants, audit chain
  `
  CREATE TABLE keys (
    id            TEXT PRIMARY KEY,
    exchange      TEXT NOT NULL,
    environment   TEXT NOT NULL,
    label         TEXT NOT NULL,
    api_key_id    TEXT NOT NULL,
    algorithm     TEXT NOT NULL,
    max_age_days  INTEGER NOT NULL,
    created_at    TEXT NOT NULL
  );
  CREATE TABLE key_versions (
    key_id        TEXT NOT NULL REFERENCES keys(id),
    version       INTEGER NOT NULL,
    object_id     TEXT NOT NULL UNIQUE,
    state         TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    activated_at  TEXT,
    PRIMARY KEY (key_id, version)
  );
  CREATE TABLE clients (
    identity      TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    role          TEXT NOT NULL,
    cidrs         TEXT NOT NULL,
    created_at    TEXT NOT NULL
  );
  CREATE TABLE grants (
    identity      TEXT NOT NULL REFERENCES clients(identity),
    key_id        TEXT NOT NULL REFERENCES keys(id),
    PRIMARY KEY (identity, key_id)
  );
  CREATE TABLE audit_events (
    seq           INTEGER PRIMARY KEY,
    body          TEXT NOT NULL,
    prev_hash     TEXT NOT NULL,
    hash          TEXT NOT NULL
  );
  `,
];
