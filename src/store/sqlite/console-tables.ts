import type { ChallengeLimit, ConsoleTable, StoredConsoleSession } from "../store.js";
import { SqliteTables, type Row } from "./sqlite-tables.js";

/**
 * The officer console's state (the store's `console`): sessions, outstanding
 * WebAuthn challenges and spent enrollment tokens. Each put also forgets what has expired.
 */
export class SqliteConsoleTables extends SqliteTables implements ConsoleTable {
  async spendToken(token: string, expiresAt: string, now: string): Promise<boolean> {
    let spent = false;
    this.write(() => {
      this.db.prepare("DELETE FROM spent_tokens WHERE expires_at < ?").run(now);
      spent = this.db.prepare("INSERT INTO spent_tokens (token, expires_at) VALUES (?, ?) ON CONFLICT DO NOTHING").run(token, expiresAt).changes === 1;
    });
    return spent;
  }

  async putConsoleSession(s: StoredConsoleSession, maxLive: number, now: string): Promise<boolean> {
    return this.insertBounded("console_sessions", maxLive, now, () =>
      this.db
        .prepare("INSERT INTO console_sessions (id_hash, officer_id, scope, csrf, credential_id, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)")
        .run(s.idHash, s.officerId, s.scope, s.csrf, s.credentialId, s.createdAt, s.expiresAt),
    );
  }

  async putChallenge(challenge: string, value: string, expiresAt: string, limits: readonly ChallengeLimit[], now: string): Promise<boolean> {
    let stored = false;
    this.write(() => {
      this.db.prepare("DELETE FROM webauthn_challenges WHERE expires_at <= ?").run(now);
      // A key range on the primary key: the keys that start with `prefix` sort from prefix up to (not including) its successor.
      const count = this.db.prepare("SELECT COUNT(*) AS n FROM webauthn_challenges WHERE challenge >= ? AND challenge < ?");
      if (limits.some((l) => (count.get(l.prefix, prefixEnd(l.prefix)) as { n: number }).n >= l.max)) return;
      const insert = this.db.prepare("INSERT INTO webauthn_challenges (challenge, value, expires_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING");
      stored = insert.run(challenge, value, expiresAt).changes === 1;
    });
    return stored;
  }

  /** In one transaction: forget the table's expired rows, then insert unless `maxLive` remain. */
  private insertBounded(table: "console_sessions", maxLive: number, now: string, insert: () => { changes: number }): boolean {
    let stored = false;
    this.write(() => {
      this.db.prepare(`DELETE FROM ${table} WHERE expires_at <= ?`).run(now);
      if ((this.db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n >= maxLive) return;
      stored = insert().changes === 1;
    });
    return stored;
  }

  async takeChallenge(challenge: string, now: string): Promise<string | undefined> {
    let value: string | undefined;
    this.write(() => {
      const r = this.db.prepare("DELETE FROM webauthn_challenges WHERE challenge = ? RETURNING value, expires_at").get(challenge) as Row | undefined;
      if (r && (r.expires_at as string) > now) value = r.value as string;
    });
    return value;
  }

  async getConsoleSession(idHash: string): Promise<StoredConsoleSession | undefined> {
    const r = this.db.prepare("SELECT * FROM console_sessions WHERE id_hash = ?").get(idHash) as Row | undefined;
    return r
      ? {
          idHash: r.id_hash as string,
          officerId: r.officer_id as string,
          scope: r.scope as StoredConsoleSession["scope"],
          csrf: r.csrf as string,
          credentialId: (r.credential_id as string | null) ?? null,
          createdAt: r.created_at as string,
          expiresAt: r.expires_at as string,
        }
      : undefined;
  }

  async deleteConsoleSession(idHash: string): Promise<void> {
    this.write(() => {
      this.db.prepare("DELETE FROM console_sessions WHERE id_hash = ?").run(idHash);
    });
  }
}

/** The smallest string above every string that starts with `prefix` (its last character plus one). */
function prefixEnd(prefix: string): string {
  return prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
}
