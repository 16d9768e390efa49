import type { Logger } from "pino";
import type { AuditLog } from "../audit/audit-log.js";
import { EgressError } from "../egress/http-egress.js";
import { CustosError } from "../errors.js";
import { isRawOnly } from "../exchanges/registry.js";
import { activeVersion, type ExchangePermissionVerdict, type KeyWithVersions } from "../keys/model.js";
import type { KeyPolicy } from "../policy/policy.js";
import { PermissionParseError, unsafeReasons, unverified, type PermissionFacts } from "./facts.js";
import { NOT_EXPOSED, permissionProbeFor } from "./index.js";
import { sendOwnRequest, type OwnRequestDeps } from "./own-request.js";
import { CallerPassphrases } from "./passphrases.js";

/**
 * Why a check ran: after an import, rotation, API key id or policy change executed, on the periodic
 * timer, or when the first request carrying the key's API passphrase arrived (OKX, Bitget).
 */
export type CheckTrigger = "import" | "rotation" | "api-key-id" | "policy" | "periodic" | "passphrase";

/** The unverified outcome of a passphrase exchange's check before any request carried the passphrase. */
export const WAITING_FOR_PASSPHRASE = "waiting for a request carrying the passphrase";

/** Observes each check's result (metrics); abstract so this module imports no metrics library. */
export interface PermissionObserver {
  /** The permissions were read from the exchange. */
  exchangePermissionsChecked(keyId: string, unsafe: boolean, atSeconds: number): void;
  /** The check could not read them (not exposed, waiting for a passphrase, failed). */
  exchangePermissionsNotVerified(keyId: string): void;
}

/** What the checker reads and acts through. */
export interface CheckerDeps extends OwnRequestDeps {
  keys: {
    getKey(id: string): Promise<KeyWithVersions | undefined>;
    listKeys(): Promise<KeyWithVersions[]>;
    /** Where every replica reads the verdict (`key list`, the console). */
    setExchangePermissions(keyId: string, verdict: ExchangePermissionVerdict): Promise<void>;
  };
  policy(keyId: string): KeyPolicy;
  audit: Pick<AuditLog, "recordNow">;
  /** The existing freeze path, on custos's own authority (audited with actor `custos`). */
  freeze(keyId: string, reason: string): Promise<unknown>;
  observer?: PermissionObserver;
  logger: Logger;
  /** How often each key is checked again (egress.permissionCheckIntervalMs). */
  intervalMs: number;
}

/** The actor of custos's own checks and freezes. */
const CUSTOS = "custos";

/**
 * The exchange-side half of the hybrid, verified: custos reads each key's API-key permissions from
 * its exchange (a request it signs and sends itself), records the facts in the audit log
 * (`key.exchange_permissions`: the facts and the HTTP status, never the body), flags a key that may
 * withdraw or transfer or is bound to no IP (metric), and freezes it when its policy asks
 * (`freezeOnUnsafeExchangePermissions`). A failed check is audited and changes nothing: it never
 * freezes a key and never fails the proposal that triggered it.
 */
export class ExchangePermissionChecker {
  private readonly lastChecked = new Map<string, number>();
  private sweeping = false;
  private stopped = false;
  private readonly inflight = new Set<Promise<unknown>>();
  /** Key → the last check's verdict in words (`custos key list`, the console). */
  private readonly verdicts = new Map<string, ExchangePermissionVerdict>();
  /** OKX and Bitget passphrases callers sent, memory only (passphrases.ts). */
  private readonly passphrases = new CallerPassphrases();

  constructor(private readonly deps: CheckerDeps) {}

  /** Checks every key whose last check is older than the interval (the housekeeping leader's timer). */
  async checkDue(): Promise<void> {
    if (this.sweeping) return; // a slow exchange must not pile sweeps up
    this.sweeping = true;
    try {
      for (const key of await this.deps.keys.listKeys().catch(() => [])) {
        // A check any replica ran counts: a new leader does not re-check every key at once.
        const stored = key.exchangePermissions ? Date.parse(key.exchangePermissions.checkedAt) : Number.NEGATIVE_INFINITY;
        if (this.deps.now() - Math.max(this.lastChecked.get(key.id) ?? Number.NEGATIVE_INFINITY, stored) < this.deps.intervalMs) continue;
        await this.check(key.id, "periodic");
      }
    } finally {
      this.sweeping = false;
    }
  }

  /** Checks one key now; never throws (every outcome is audited). Returns the facts when verified. */
  async check(keyId: string, trigger: CheckTrigger): Promise<PermissionFacts | undefined> {
    if (this.stopped) return undefined;
    const running = this.run(keyId, trigger).catch((e: unknown) => {
      this.deps.logger.error({ event: "key.exchange_permissions_failed", key: keyId, err: e }, "exchange permission check failed");
      return undefined;
    });
    this.inflight.add(running);
    try {
      return await running;
    } finally {
      this.inflight.delete(running);
    }
  }

  /**
   * A caller's request for this key version carried its API passphrase and was signed (SignService):
   * held in memory for the key's check when its exchange wants one (OKX, Bitget), and the first one
   * for the version runs the check that was waiting for it. Only the active version's is held.
   */
  callerPassphrase(key: { id: string; exchange: string }, version: number, passphrase: string): void {
    if (this.stopped || !passphrase || permissionProbeFor(key.exchange)?.passphrase !== "caller") return;
    if (this.passphrases.remember(key.id, version, passphrase)) void this.check(key.id, "passphrase");
  }

  /** Drops a held passphrase that no longer belongs to the key's active version (a version was destroyed). */
  async forgetStalePassphrase(keyId: string): Promise<void> {
    const key = await this.deps.keys.getKey(keyId).catch(() => undefined);
    this.passphrases.keepOnly(keyId, key ? activeVersion(key)?.version : undefined);
  }

  /**
   * The last check's verdict: "safe" (every fact known, none unsafe), "no unsafe setting seen
   * (unknown: …)", "unsafe: …", "check failed: CODE", "not verified: …", or "" when no check has
   * run. The newer of this process's and `stored`, the one any replica recorded in the store.
   */
  verdict(keyId: string, stored?: ExchangePermissionVerdict | null): string {
    const mine = this.verdicts.get(keyId);
    if (!mine) return stored?.verdict ?? "";
    return stored && stored.checkedAt > mine.checkedAt ? stored.verdict : mine.verdict;
  }

  /** No new checks; waits for those running (before the egress and the audit log close). */
  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all([...this.inflight]);
  }

  private async run(keyId: string, trigger: CheckTrigger): Promise<PermissionFacts | undefined> {
    const key = await this.deps.keys.getKey(keyId);
    // A passphrase belongs to one version: after a rotation (or once the key is gone) it is dropped.
    this.passphrases.keepOnly(keyId, key ? activeVersion(key)?.version : undefined);
    // A raw-only key names no exchange custos knows: there is nothing to ask, and nothing is recorded.
    if (!key || isRawOnly(key.exchange)) return undefined;
    this.lastChecked.set(key.id, this.deps.now());
    const record = (outcome: "ok" | "failed", details: Record<string, string | number | boolean>, reason?: string) => {
      const unsafe = typeof details.unsafe === "string" ? details.unsafe : "";
      // "safe" only when the exchange answered every fact: an unknown one is never read as safe.
      const partly = typeof details.unverified === "string" ? `no unsafe setting seen (unknown: ${details.unverified})` : "safe";
      const verdict =
        outcome === "failed" ? `check failed: ${reason}` : !details.verified ? `not verified: ${String(details.why)}` : unsafe ? `unsafe: ${unsafe}` : partly;
      const checkedAt = new Date(this.deps.now()).toISOString();
      // A periodic check on a replica that holds no passphrase does not hide what a check with one found.
      const known = this.verdict(key.id, key.exchangePermissions);
      const keep = trigger === "periodic" && details.why === WAITING_FOR_PASSPHRASE && known !== "" && !known.startsWith("not verified");
      if (!keep) {
        // A frozen key signs nothing, this check included: not an unverified key to alert on.
        if (!details.verified && !key.frozenAt) this.deps.observer?.exchangePermissionsNotVerified(key.id);
        this.verdicts.set(key.id, { verdict, checkedAt });
        void this.deps.keys.setExchangePermissions(key.id, { verdict, checkedAt }).catch((e: unknown) => {
          this.deps.logger.error({ event: "key.exchange_permissions_unrecorded", key: key.id, err: e }, "could not store the permission verdict");
        });
      }
      return this.deps.audit.recordNow({
        kind: "key.exchange_permissions",
        actor: CUSTOS,
        outcome,
        key: key.id,
        ...(reason ? { reason } : {}),
        details: { trigger, ...details },
      });
    };
    const probe = permissionProbeFor(key.exchange);
    if (!probe) {
      await record("ok", { verified: false, why: NOT_EXPOSED.get(key.exchange) ?? `${key.exchange} exposes no API-key permissions custos reads` });
      return undefined;
    }
    if (key.frozenAt) {
      await record("ok", { verified: false, why: "the key is frozen: it signs nothing, this check included" });
      return undefined;
    }
    const signing = activeVersion(key)?.version;
    const passphrase = probe.passphrase === "caller" && signing !== undefined ? this.passphrases.of(key.id, signing) : undefined;
    if (probe.passphrase === "caller" && !passphrase) {
      // Runs as soon as a caller's request for this version carries the passphrase (callerPassphrase).
      await record("ok", { verified: false, why: WAITING_FOR_PASSPHRASE });
      return undefined;
    }
    let status: number | undefined;
    let read: { facts: PermissionFacts; version: number; origin: string };
    try {
      const { reply, version, origin, apiKeyId } = await sendOwnRequest(this.deps, key, probe, passphrase);
      status = reply.status;
      read = { facts: probe.parse(reply.status, parseJson(reply.body), apiKeyId), version, origin };
    } catch (e) {
      const details: Record<string, string | number | boolean> = { verified: false, ...(status !== undefined ? { status } : {}) };
      if (e instanceof EgressError) details.egressFailure = e.failure;
      if (e instanceof PermissionParseError) details.why = e.message.slice(0, 200);
      await record("failed", details, e instanceof CustosError ? e.code : e instanceof PermissionParseError ? "EXCHANGE_ANSWER_UNREADABLE" : "INTERNAL");
      return undefined;
    }
    const { facts, version, origin } = read;
    const reasons = unsafeReasons(facts);
    const unknown = unverified(facts);
    // The metric first: whoever sees the audit record can already read the flag.
    this.deps.observer?.exchangePermissionsChecked(key.id, reasons.length > 0, this.deps.now() / 1000);
    await record("ok", {
      verified: true,
      version,
      origin,
      status,
      withdrawals: String(facts.withdrawals),
      transfers: String(facts.transfers),
      ipRestricted: String(facts.ipRestricted),
      ...(facts.ips ? { ips: facts.ips.join(",").slice(0, 500) } : {}),
      unsafe: reasons.join(","),
      ...(unknown.length ? { unverified: unknown.join(",") } : {}),
    });
    if (reasons.length) {
      this.deps.logger.warn({ event: "key.exchange_permissions_unsafe", key: key.id, unsafe: reasons }, "the key's exchange-side settings are unsafe");
      // The freeze path audits itself (a refused freeze included); its failure is logged by check().
      if (this.deps.policy(key.id).freezeOnUnsafeExchangePermissions) {
        await this.deps.freeze(key.id, `exchange-side permissions unsafe: ${reasons.join(", ")}`);
      }
    }
    return facts;
  }
}

/** The exchange's JSON answer (a body that is not JSON is unreadable, never concluded from). */
function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString("utf8"));
  } catch {
    throw new PermissionParseError("the answer is not JSON");
  }
}
