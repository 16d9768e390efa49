import type { ChallengeLimit, ConsoleTable, StoredConsoleSession } from "../store.js";
import { lockParams } from "./advisory-locks.js";
import type { PgRunner } from "./pg-runner.js";

/**
 * The officer console's state (the store's `console`) on PostgreSQL. Counting against a bound
 * and inserting happen under one advisory lock, so replicas together keep the bound.
 */
export class PgConsoleTables implements ConsoleTable {
  constructor(private readonly db: PgRunner) {}

  async spendToken(token: string, expiresAt: string, now: string): Promise<boolean> {
    return this.db.atomic(async (q) => {
      await q.run("DELETE FROM spent_tokens WHERE expires_at < $1", [now]);
      return (await q.run("INSERT INTO spent_tokens (token, expires_at) VALUES ($1, $2) ON CONFLICT DO NOTHING", [token, expiresAt])) === 1;
    });
  }

  async putConsoleSession(s: StoredConsoleSession, maxLive: number, now: string): Promise<boolean> {
    return this.db.atomic(async (q) => {
      await q.run("SELECT pg_advisory_xact_lock($1, $2)", lockParams("consoleBounds"));
      await q.run("DELETE FROM console_sessions WHERE expires_at <= $1", [now]);
      const [live] = await q.rows("SELECT COUNT(*) AS n FROM console_sessions");
      if ((live?.n as number) >= maxLive) return false;
      const inserted = await q.run(
        "INSERT INTO console_sessions (id_hash, officer_id, scope, csrf, credential_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        [s.idHash, s.officerId, s.scope, s.csrf, s.credentialId, s.createdAt, s.expiresAt],
      );
      return inserted === 1;
    });
  }

  async putChallenge(challenge: string, value: string, expiresAt: string, limits: readonly ChallengeLimit[], now: string): Promise<boolean> {
    return this.db.atomic(async (q) => {
      await q.run("SELECT pg_advisory_xact_lock($1, $2)", lockParams("consoleBounds"));
      await q.run("DELETE FROM webauthn_challenges WHERE expires_at <= $1", [now]);
      for (const l of limits) {
        // A key range on the primary key (COLLATE "C": byte order, as SQLite compares): the keys that start with `prefix`.
        const [row] = await q.rows('SELECT COUNT(*) AS n FROM webauthn_challenges WHERE challenge COLLATE "C" >= $1 AND challenge COLLATE "C" < $2', [
          l.prefix,
          prefixEnd(l.prefix),
        ]);
        if ((row?.n as number) >= l.max) return false;
      }
      return (
        (await q.run("INSERT INTO webauthn_challenges (challenge, value, expires_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING", [
          challenge,
          value,
          expiresAt,
        ])) === 1
      );
    });
  }

  async takeChallenge(challenge: string, now: string): Promise<string | undefined> {
    const [r] = await this.db.rows("DELETE FROM webauthn_challenges WHERE challenge = $1 RETURNING value, expires_at", [challenge]);
    return r && (r.expires_at as string) > now ? (r.value as string) : undefined;
  }

  async getConsoleSession(idHash: string): Promise<StoredConsoleSession | undefined> {
    const [r] = await this.db.rows("SELECT * FROM console_sessions WHERE id_hash = $1", [idHash]);
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
    await this.db.run("DELETE FROM console_sessions WHERE id_hash = $1", [idHash]);
  }
}

/** The smallest string above every string that starts with `prefix` (its last character plus one). */
function prefixEnd(prefix: string): string {
  return prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
}
