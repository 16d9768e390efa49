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
  // 2: governance — officers, threshold, proposals and votes; freezes; per-version API key
  // ids and grace periods; key policies (carried, enforced later)
  `
  ALTER TABLE keys ADD COLUMN frozen_at TEXT;
  ALTER TABLE keys ADD COLUMN frozen_reason TEXT;
  ALTER TABLE key_versions ADD COLUMN api_key_id TEXT;
  ALTER TABLE key_versions ADD COLUMN retire_at TEXT;
  ALTER TABLE clients ADD COLUMN frozen_at TEXT;
  ALTER TABLE clients ADD COLUMN frozen_reason TEXT;
  ALTER TABLE clients ADD COLUMN can_freeze INTEGER NOT NULL DEFAULT 0;
  CREATE TABLE key_policies (
    key_id        TEXT PRIMARY KEY REFERENCES keys(id),
    policy        TEXT NOT NULL,
    updated_at    TEXT NOT NULL
  );
  CREATE TABLE officers (
    id            TEXT PRIMARY KEY,
    display_name  TEXT NOT NULL,
    identity      TEXT NOT NULL UNIQUE,
    public_key    TEXT NOT NULL,
    fingerprint   TEXT NOT NULL,
    status        TEXT NOT NULL,
    created_at    TEXT NOT NULL
  );
  CREATE TABLE governance (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    threshold      INTEGER NOT NULL,
    initialised_at TEXT NOT NULL
  );
  CREATE TABLE proposals (
    id            TEXT PRIMARY KEY,
    kind          TEXT NOT NULL,
    target        TEXT NOT NULL,
    canonical     TEXT NOT NULL,
    digest        TEXT NOT NULL UNIQUE,
    proposer      TEXT NOT NULL,
    state         TEXT NOT NULL,
    step          TEXT,
    envelope      TEXT,
    created_at    TEXT NOT NULL,
    expires_at    TEXT NOT NULL,
    executed_at   TEXT,
    failure       TEXT
  );
  CREATE INDEX proposals_state ON proposals (state);
  CREATE TABLE votes (
    proposal_id   TEXT NOT NULL REFERENCES proposals(id),
    officer_id    TEXT NOT NULL,
    decision      TEXT NOT NULL,
    digest        TEXT NOT NULL,
    signature     TEXT NOT NULL,
    at            TEXT NOT NULL,
    PRIMARY KEY (proposal_id, officer_id, decision)
  );
  `,
  // 3: officer passkeys (WebAuthn), added by add_credential proposals; which credential signed
  // each vote
  `
  CREATE TABLE officer_passkeys (
    credential_id TEXT PRIMARY KEY,
    officer_id    TEXT NOT NULL REFERENCES officers(id),
    public_key    TEXT NOT NULL,
    counter       INTEGER NOT NULL,
    transports    TEXT NOT NULL,
    aaguid        TEXT NOT NULL,
    label         TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    last_used_at  TEXT
  );
  CREATE INDEX officer_passkeys_officer ON officer_passkeys (officer_id);
  ALTER TABLE votes ADD COLUMN credential_kind TEXT NOT NULL DEFAULT 'ed25519';
  ALTER TABLE votes ADD COLUMN credential_id TEXT;
  `,
  // 4: console state that must outlive a restart and be shared by replicas: single-use tokens
  // already spent (enrollment tokens, kept until they expire), outstanding WebAuthn challenges
  // and approval nonces, and officer sessions (by the SHA-256 of their id, which only the
  // officer's cookie holds)
  `
  CREATE TABLE spent_tokens (
    token         TEXT PRIMARY KEY,
    expires_at    TEXT NOT NULL
  );
  CREATE TABLE console_sessions (
    id_hash       TEXT PRIMARY KEY,
    officer_id    TEXT NOT NULL,
    scope         TEXT NOT NULL,
    csrf          TEXT NOT NULL,
    credential_id TEXT,
    created_at    TEXT NOT NULL,
    expires_at    TEXT NOT NULL
  );
  CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);
  CREATE TABLE webauthn_challenges (
    challenge     TEXT PRIMARY KEY,
    value         TEXT NOT NULL,
    expires_at    TEXT NOT NULL
  );
  CREATE INDEX webauthn_challenges_expiry ON webauthn_challenges (expires_at);
  `,
  // 5: a KuCoin Futures key version's signed passphrase, base64(HMAC-SHA256(secret, passphrase)),
  // fixed by the quorum at import or rotation. Not a secret (every request sends it in the clear
  // KC-API-PASSPHRASE header); the passphrase itself is never stored. NULL for other exchanges.
  `
  ALTER TABLE key_versions ADD COLUMN signed_passphrase TEXT;
  `,
  // 6: signed checkpoints of the audit chain's head (also appended to a file outside the
  // database and logged): the HSM's checkpoint key signs each; newest by `at`
  `
  CREATE TABLE audit_checkpoints (
    seq             INTEGER NOT NULL,
    hash            TEXT NOT NULL,
    at              TEXT NOT NULL,
    key_fingerprint TEXT NOT NULL,
    signature       TEXT NOT NULL,
    PRIMARY KEY (at, seq)
  );
  `,
  // 7: the last exchange-side permission check of each key (its verdict in words and when), so
  // every replica's \`key list\` and console show what any replica's check found
  `
  ALTER TABLE keys ADD COLUMN permissions_verdict TEXT;
  ALTER TABLE keys ADD COLUMN permissions_checked_at TEXT;
  `,
];
