import type pg from "pg";
import { storeError } from "./pg-runner.js";
import { lockParams } from "./advisory-locks.js";

/**
 * PostgreSQL's versioned schema. Append a migration, never edit one that has shipped. Table and
 * column names are SQLite's (src/store/sqlite/migrations.ts: its migrations 1–6 in the first, 7 in the second),
 * with TEXT timestamps in ISO 8601 as there, compared and sorted byte by byte (COLLATE "C", as SQLite does)
 * whatever the database's locale. Differences, each for replicas or for size: seq and
 * counters are BIGINT (a busy deployment passes 2^31 audit events), and prev_hash is UNIQUE
 * beside seq, so two writers can never both extend the same event (no fork, by construction).
 */
export const PG_MIGRATIONS: readonly string[] = [
  // 1: everything SQLite's migrations 1–6 create
  `
  CREATE TABLE keys (
    id            TEXT COLLATE "C" PRIMARY KEY,
    exchange      TEXT COLLATE "C" NOT NULL,
    environment   TEXT COLLATE "C" NOT NULL,
    label         TEXT COLLATE "C" NOT NULL,
    api_key_id    TEXT COLLATE "C" NOT NULL,
    algorithm     TEXT COLLATE "C" NOT NULL,
    max_age_days  INTEGER NOT NULL,
    created_at    TEXT COLLATE "C" NOT NULL,
    frozen_at     TEXT COLLATE "C",
    frozen_reason TEXT COLLATE "C"
  );
  CREATE TABLE key_versions (
    key_id            TEXT COLLATE "C" NOT NULL REFERENCES keys(id),
    version           INTEGER NOT NULL,
    object_id         TEXT COLLATE "C" NOT NULL UNIQUE,
    state             TEXT COLLATE "C" NOT NULL,
    created_at        TEXT COLLATE "C" NOT NULL,
    activated_at      TEXT COLLATE "C",
    api_key_id        TEXT COLLATE "C",
    retire_at         TEXT COLLATE "C",
    signed_passphrase TEXT COLLATE "C",
    PRIMARY KEY (key_id, version)
  );
  CREATE TABLE key_policies (
    key_id        TEXT COLLATE "C" PRIMARY KEY REFERENCES keys(id),
    policy        TEXT COLLATE "C" NOT NULL,
    updated_at    TEXT COLLATE "C" NOT NULL
  );
  CREATE TABLE clients (
    identity      TEXT COLLATE "C" PRIMARY KEY,
    name          TEXT COLLATE "C" NOT NULL,
    role          TEXT COLLATE "C" NOT NULL,
    cidrs         TEXT COLLATE "C" NOT NULL,
    created_at    TEXT COLLATE "C" NOT NULL,
    frozen_at     TEXT COLLATE "C",
    frozen_reason TEXT COLLATE "C",
    can_freeze    INTEGER NOT NULL DEFAULT 0
  );
  CREATE TABLE grants (
    identity      TEXT COLLATE "C" NOT NULL REFERENCES clients(identity),
    key_id        TEXT COLLATE "C" NOT NULL REFERENCES keys(id),
    PRIMARY KEY (identity, key_id)
  );
  CREATE TABLE audit_events (
    seq           BIGINT PRIMARY KEY,
    body          TEXT COLLATE "C" NOT NULL,
    prev_hash     TEXT COLLATE "C" NOT NULL UNIQUE,
    hash          TEXT COLLATE "C" NOT NULL
  );
  CREATE TABLE officers (
    id            TEXT COLLATE "C" PRIMARY KEY,
    display_name  TEXT COLLATE "C" NOT NULL,
    identity      TEXT COLLATE "C" NOT NULL UNIQUE,
    public_key    TEXT COLLATE "C" NOT NULL,
    fingerprint   TEXT COLLATE "C" NOT NULL,
    status        TEXT COLLATE "C" NOT NULL,
    created_at    TEXT COLLATE "C" NOT NULL
  );
  CREATE TABLE governance (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    threshold      INTEGER NOT NULL,
    initialised_at TEXT COLLATE "C" NOT NULL
  );
  CREATE TABLE proposals (
    id            TEXT COLLATE "C" PRIMARY KEY,
    kind          TEXT COLLATE "C" NOT NULL,
    target        TEXT COLLATE "C" NOT NULL,
    canonical     TEXT COLLATE "C" NOT NULL,
    digest        TEXT COLLATE "C" NOT NULL UNIQUE,
    proposer      TEXT COLLATE "C" NOT NULL,
    state         TEXT COLLATE "C" NOT NULL,
    step          TEXT COLLATE "C",
    envelope      TEXT COLLATE "C",
    created_at    TEXT COLLATE "C" NOT NULL,
    expires_at    TEXT COLLATE "C" NOT NULL,
    executed_at   TEXT COLLATE "C",
    failure       TEXT COLLATE "C"
  );
  CREATE INDEX proposals_state ON proposals (state);
  CREATE TABLE votes (
    proposal_id     TEXT COLLATE "C" NOT NULL REFERENCES proposals(id),
    officer_id      TEXT COLLATE "C" NOT NULL,
    decision        TEXT COLLATE "C" NOT NULL,
    digest          TEXT COLLATE "C" NOT NULL,
    signature       TEXT COLLATE "C" NOT NULL,
    at              TEXT COLLATE "C" NOT NULL,
    credential_kind TEXT COLLATE "C" NOT NULL DEFAULT 'ed25519',
    credential_id   TEXT COLLATE "C",
    PRIMARY KEY (proposal_id, officer_id, decision)
  );
  CREATE TABLE officer_passkeys (
    credential_id TEXT COLLATE "C" PRIMARY KEY,
    officer_id    TEXT COLLATE "C" NOT NULL REFERENCES officers(id),
    public_key    TEXT COLLATE "C" NOT NULL,
    counter       BIGINT NOT NULL,
    transports    TEXT COLLATE "C" NOT NULL,
    aaguid        TEXT COLLATE "C" NOT NULL,
    label         TEXT COLLATE "C" NOT NULL,
    created_at    TEXT COLLATE "C" NOT NULL,
    last_used_at  TEXT COLLATE "C"
  );
  CREATE INDEX officer_passkeys_officer ON officer_passkeys (officer_id);
  CREATE TABLE spent_tokens (
    token         TEXT COLLATE "C" PRIMARY KEY,
    expires_at    TEXT COLLATE "C" NOT NULL
  );
  CREATE TABLE console_sessions (
    id_hash       TEXT COLLATE "C" PRIMARY KEY,
    officer_id    TEXT COLLATE "C" NOT NULL,
    scope         TEXT COLLATE "C" NOT NULL,
    csrf          TEXT COLLATE "C" NOT NULL,
    credential_id TEXT COLLATE "C",
    created_at    TEXT COLLATE "C" NOT NULL,
    expires_at    TEXT COLLATE "C" NOT NULL
  );
  CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);
  CREATE TABLE webauthn_challenges (
    challenge     TEXT COLLATE "C" PRIMARY KEY,
    value         TEXT COLLATE "C" NOT NULL,
    expires_at    TEXT COLLATE "C" NOT NULL
  );
  CREATE INDEX webauthn_challenges_expiry ON webauthn_challenges (expires_at);
  CREATE TABLE audit_checkpoints (
    seq             BIGINT NOT NULL,
    hash            TEXT COLLATE "C" NOT NULL,
    at              TEXT COLLATE "C" NOT NULL,
    key_fingerprint TEXT COLLATE "C" NOT NULL,
    signature       TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (at, seq)
  );
  `,
  // 2: SQLite's migration 7, the last exchange-side permission check of each key
  `
  ALTER TABLE keys ADD COLUMN permissions_verdict TEXT COLLATE "C";
  ALTER TABLE keys ADD COLUMN permissions_checked_at TEXT COLLATE "C";
  `,
];

/**
 * Applies every migration newer than the schema_version table says, each in its own transaction,
 * under a session advisory lock: replicas starting together wait for one another, and the
 * second finds nothing left to do. Idempotent.
 */
export async function migrate(pool: pg.Pool): Promise<void> {
  let client: pg.PoolClient;
  try {
    client = await pool.connect();
  } catch (e) {
    throw storeError(e);
  }
  try {
    await client.query("SELECT pg_advisory_lock($1, $2)", lockParams("migrations"));
    try {
      await client.query("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)");
      const { rows } = await client.query<{ v: number | null }>("SELECT MAX(version) AS v FROM schema_version");
      for (let v = rows[0]?.v ?? 0; v < PG_MIGRATIONS.length; v++) {
        await client.query("BEGIN");
        try {
          await client.query(PG_MIGRATIONS[v]!);
          await client.query("INSERT INTO schema_version (version, applied_at) VALUES ($1, $2)", [v + 1, new Date().toISOString()]);
          await client.query("COMMIT");
        } catch (e) {
          await client.query("ROLLBACK").catch(() => undefined);
          throw e;
        }
      }
    } finally {
      await client.query("SELECT pg_advisory_unlock($1, $2)", lockParams("migrations")).catch(() => undefined);
    }
  } catch (e) {
    throw storeError(e);
  } finally {
    client.release();
  }
}
