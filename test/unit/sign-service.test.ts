import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash, createHmac, randomBytes } from "node:crypto";
import { PassThrough } from "node:stream";
import { AuditLog } from "../../src/audit/audit-log.js";
import { CustosError, type CustosErrorCode } from "../../src/errors.js";
import { algorithmSpec, type HmacAlgorithm } from "../../src/hsm/algorithms.js";
import type { KeyVersionState } from "../../src/keys/model.js";
import { createLogger } from "../../src/log.js";
import { AccessDirectory } from "../../src/signing/directory.js";
import {
  SignService,
  type CallerContext,
  type SignObserver,
  type SignRequest,
  type SignServiceOptions,
  type SignDecision,
  type SignDecisionLog,
} from "../../src/signing/sign-service.js";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import { FakeHsm } from "./fake-hsm.js";
import { ManualClock } from "../helpers/manual-clock.js";

const ALPHA = "spiffe://custos/engine/alpha"; // trader, granted every key below except k-nogrant
const BETA = "spiffe://custos/engine/beta"; // trader without grants
const ADMIN = "spiffe://custos/admin/root";
const UNKNOWN = "spiffe://custos/engine/stranger";
const IN = "10.1.2.3";
const MAX_PAYLOAD = 1024;
const NOW = "2025-01-01T00:00:00.000Z";

/** Key id → algorithm, state of its only version, granted to ALPHA, object present in the HSM. */
const KEYS: Record<string, { alg: HmacAlgorithm; state: KeyVersionState; grant: boolean; inHsm: boolean }> = {
  "k-active": { alg: "hmac-sha256", state: "active", grant: true, inHsm: true },
  "k-384": { alg: "hmac-sha384", state: "active", grant: true, inHsm: true },
  "k-retiring": { alg: "hmac-sha512", state: "retiring", grant: true, inHsm: true },
  "k-pending": { alg: "hmac-sha256", state: "pending", grant: true, inHsm: true },
  "k-destroyed": { alg: "hmac-sha256", state: "destroyed", grant: true, inHsm: false },
  "k-nogrant": { alg: "hmac-sha256", state: "active", grant: false, inHsm: true },
  "k-noobject": { alg: "hmac-sha256", state: "active", grant: true, inHsm: false },
  // A Binance key: raw payloads are refused unless its policy allows them.
  "k-dialect": { alg: "hmac-sha256", state: "active", grant: true, inHsm: true },
  // Retiring, its grace period over (the destroy job has not run yet).
  "k-grace-over": { alg: "hmac-sha256", state: "retiring", grant: true, inHsm: true },
};

// Distinctive bytes: the audit body must contain their digest, never them.
const PAYLOAD = Buffer.from("symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=42000&timestamp=1700000000000&SENTINEL-7f3a");

class RecordingObserver implements SignObserver {
  readonly seen: Array<{ outcome: string; reason: string; seconds: number; client: string; key: string; endpointClass: string }> = [];
  observe(outcome: "allowed" | "denied" | "failed", reason: CustosErrorCode | "OK", seconds: number, client: string, key: string, endpointClass: string): void {
    this.seen.push({ outcome, reason, seconds, client, key, endpointClass });
  }
}

const secrets = new Map<string, Buffer>();
let store: SqliteStore;
let hsm: FakeHsm;
let audit: AuditLog;
let directory: AccessDirectory;

function service(observer: SignObserver, limits: Partial<SignServiceOptions> = {}): SignService {
  const opts: SignServiceOptions = {
    maxPayloadBytes: MAX_PAYLOAD,
    clientRate: { perSecond: 1_000_000, burst: 1_000_000 },
    keyRate: { perSecond: 1_000_000, burst: 1_000_000 },
    ...limits,
  };
  return new SignService(directory, hsm, audit, observer, opts);
}

/** The audit event(s) written since `afterSeq`, parsed. */
async function auditSince(afterSeq: number): Promise<Array<Record<string, unknown>>> {
  await audit.flush();
  return (await store.audit.readAudit(afterSeq, 1_000)).map((e) => JSON.parse(e.body) as Record<string, unknown>);
}

async function lastSeq(): Promise<number> {
  await audit.flush();
  return (await store.audit.lastAudit())?.seq ?? 0;
}

const sha256hex = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const hmac = (keyId: string, data: Uint8Array) => createHmac(algorithmSpec(KEYS[keyId]!.alg).nodeHash, secrets.get(keyId)!).update(data).digest();

before(async () => {
  store = new SqliteStore(":memory:");
  hsm = new FakeHsm();
  const clients: Array<[string, "trader" | "admin", string[]]> = [
    [ALPHA, "trader", ["10.0.0.0/8", "::1/128"]],
    [BETA, "trader", ["10.0.0.0/8"]],
    [ADMIN, "admin", ["10.0.0.0/8"]],
  ];
  for (const [identity, role, cidrs] of clients) await store.clients.upsertClient({ identity, name: identity, role, cidrs, createdAt: NOW });
  for (const [id, k] of Object.entries(KEYS)) {
    const objectId = `custos:${id}:v1`;
    await store.keys.createKey(
      // "custom": an exchange without a dialect, so raw payloads may be signed (k-dialect below is the exception).
      {
        id,
        exchange: id === "k-dialect" ? "binance" : "custom",
        environment: "testnet",
        label: id,
        apiKeyId: `pub-${id}`,
        algorithm: k.alg,
        maxAgeDays: 45,
        createdAt: NOW,
      },
      {
        keyId: id,
        version: 1,
        objectId,
        state: k.state,
        createdAt: NOW,
        activatedAt: k.state === "pending" ? null : NOW,
        retireAt: id === "k-grace-over" ? NOW : null,
      },
    );
    if (k.grant) await store.clients.addGrant(ALPHA, id);
    const secret = randomBytes(algorithmSpec(k.alg).minKeyBytes); // the HSM refuses shorter HMAC keys
    secrets.set(id, secret);
    if (k.inHsm) hsm.put(objectId, secret);
  }
  directory = new AccessDirectory();
  await directory.reload(store);
  audit = await AuditLog.open(store, createLogger("info", new PassThrough()), { flushIntervalMs: 3_600_000 });
});

after(async () => {
  await audit.close();
  await store.close();
});

/** Changes freeze state in the store and reloads the access snapshot, as the service does. */
async function freeze(change: () => Promise<void>): Promise<void> {
  await change();
  await directory.reload(store);
}

describe("SignService decisions", () => {
  const alpha: CallerContext = { identity: ALPHA, ip: IN };
  const req = (keyId: string, version = 0, payload: Uint8Array = PAYLOAD): SignRequest => ({ keyId, version, payload });

  const scenarios: Array<{
    name: string;
    caller: CallerContext;
    req: SignRequest;
    code?: CustosErrorCode; // undefined = allowed
    outcome: "allowed" | "denied" | "failed";
    auditVersion?: number;
    before?: () => void | Promise<void>;
    after?: () => void | Promise<void>;
  }> = [
    { name: "no identity", caller: { identity: null, ip: IN }, req: req("k-active"), code: "UNAUTHENTICATED", outcome: "denied" },
    { name: "unregistered identity", caller: { identity: UNKNOWN, ip: IN }, req: req("k-active"), code: "UNKNOWN_CLIENT", outcome: "denied" },
    { name: "admin identity", caller: { identity: ADMIN, ip: IN }, req: req("k-active"), code: "ROLE_NOT_ALLOWED", outcome: "denied" },
    { name: "address outside the CIDRs", caller: { identity: ALPHA, ip: "192.168.0.1" }, req: req("k-active"), code: "ADDRESS_NOT_ALLOWED", outcome: "denied" },
    { name: "no peer address", caller: { identity: ALPHA, ip: null }, req: req("k-active"), code: "ADDRESS_NOT_ALLOWED", outcome: "denied" },
    { name: "payload one byte too large", caller: alpha, req: req("k-active", 0, randomBytes(MAX_PAYLOAD + 1)), code: "PAYLOAD_TOO_LARGE", outcome: "denied" },
    { name: "unknown key", caller: alpha, req: req("k-missing"), code: "KEY_NOT_FOUND", outcome: "denied" },
    { name: "key without a grant", caller: alpha, req: req("k-nogrant"), code: "NO_GRANT", outcome: "denied" },
    { name: "another trader's key", caller: { identity: BETA, ip: IN }, req: req("k-active"), code: "NO_GRANT", outcome: "denied" },
    { name: "pinned version that does not exist", caller: alpha, req: req("k-active", 2), code: "VERSION_NOT_FOUND", outcome: "denied", auditVersion: 2 },
    { name: "pinned destroyed version", caller: alpha, req: req("k-destroyed", 1), code: "VERSION_NOT_USABLE", outcome: "denied", auditVersion: 1 },
    { name: "pinned pending version", caller: alpha, req: req("k-pending", 1), code: "VERSION_NOT_USABLE", outcome: "denied", auditVersion: 1 },
    { name: "no active version (pending only)", caller: alpha, req: req("k-pending"), code: "KEY_NOT_ACTIVE", outcome: "denied" },
    { name: "no active version (destroyed)", caller: alpha, req: req("k-destroyed"), code: "KEY_NOT_ACTIVE", outcome: "denied" },
    { name: "no active version (retiring only)", caller: alpha, req: req("k-retiring"), code: "KEY_NOT_ACTIVE", outcome: "denied" },
    {
      name: "HSM down",
      caller: alpha,
      req: req("k-active"),
      code: "HSM_UNAVAILABLE",
      outcome: "failed",
      auditVersion: 1, // the version the HSM was asked to sign with
      before: () => void (hsm.down = true),
      after: () => void (hsm.down = false),
    },
    { name: "HSM object missing", caller: alpha, req: req("k-noobject"), code: "HSM_ERROR", outcome: "failed", auditVersion: 1 },
    {
      name: "raw payload with a key whose exchange has a dialect",
      caller: alpha,
      req: req("k-dialect"),
      code: "POLICY_DENIED",
      outcome: "denied",
      auditVersion: 1,
    },
    {
      name: "pinned retiring version after its grace period",
      caller: alpha,
      req: req("k-grace-over", 1),
      code: "VERSION_NOT_USABLE",
      outcome: "denied",
      auditVersion: 1,
    },
    {
      name: "frozen key",
      caller: alpha,
      req: req("k-active"),
      code: "KEY_FROZEN",
      outcome: "denied",
      before: () => freeze(() => store.keys.setKeyFrozen("k-active", { at: NOW, reason: "test" })),
      after: () => freeze(() => store.keys.setKeyFrozen("k-active", null)),
    },
    {
      name: "frozen client",
      caller: alpha,
      req: req("k-active"),
      code: "CLIENT_FROZEN",
      outcome: "denied",
      before: () => freeze(() => store.clients.setClientFrozen(ALPHA, { at: NOW, reason: "test" })),
      after: () => freeze(() => store.clients.setClientFrozen(ALPHA, null)),
    },
    { name: "active version", caller: alpha, req: req("k-active"), outcome: "allowed", auditVersion: 1 },
    { name: "active version, pinned", caller: alpha, req: req("k-active", 1), outcome: "allowed", auditVersion: 1 },
    { name: "HMAC-SHA384 key", caller: alpha, req: req("k-384"), outcome: "allowed", auditVersion: 1 },
    { name: "pinned retiring version", caller: alpha, req: req("k-retiring", 1), outcome: "allowed", auditVersion: 1 },
    { name: "IPv6 peer inside the CIDRs", caller: { identity: ALPHA, ip: "::1" }, req: req("k-active"), outcome: "allowed", auditVersion: 1 },
    { name: "payload of exactly the maximum", caller: alpha, req: req("k-active", 0, randomBytes(MAX_PAYLOAD)), outcome: "allowed", auditVersion: 1 },
    { name: "empty payload", caller: alpha, req: req("k-active", 0, new Uint8Array(0)), outcome: "allowed", auditVersion: 1 },
  ];

  for (const s of scenarios) {
    it(`${s.name} → ${s.code ?? "signed"}`, async () => {
      const observer = new RecordingObserver();
      const svc = service(observer);
      const seq = await lastSeq();
      await s.before?.();
      try {
        if (s.code) {
          await assert.rejects(svc.sign(s.caller, s.req), (e: unknown) => e instanceof CustosError && e.code === s.code);
        } else {
          const r = await svc.sign(s.caller, s.req);
          assert.deepEqual(r.signature, hmac(s.req.keyId, s.req.payload), "signature equals node:crypto HMAC");
          assert.equal(r.version, 1);
          assert.equal(r.apiKeyId, `pub-${s.req.keyId}`);
        }
      } finally {
        await s.after?.();
      }

      // Exactly one audit event per decision.
      const events = await auditSince(seq);
      assert.equal(events.length, 1);
      const e = events[0]!;
      assert.equal(e.kind, "sign");
      assert.equal(e.outcome, s.outcome);
      assert.equal(e.reason, s.code);
      assert.equal(e.key, s.req.keyId);
      assert.equal(e.version, s.auditVersion);
      assert.equal(e.actor, s.caller.identity ?? "unknown");
      assert.equal(e.peer, s.caller.ip ?? undefined);
      assert.equal(e.payloadSha256, sha256hex(s.req.payload));

      assert.deepEqual(
        observer.seen.map((o) => [o.outcome, o.reason]),
        [[s.outcome, s.code ?? "OK"]],
      );
      assert.ok(observer.seen[0]!.seconds >= 0);
    });
  }

  it("denials never reach the HSM", async () => {
    const before = hsm.calls.length;
    const svc = service(new RecordingObserver());
    for (const [caller, r] of [
      [{ identity: ADMIN, ip: IN }, req("k-active")],
      [alpha, req("k-nogrant")],
      [alpha, req("k-pending", 1)],
    ] as const) {
      await assert.rejects(svc.sign(caller, r));
    }
    assert.equal(hsm.calls.length, before);
  });
});

describe("SignService rate limits", () => {
  const alpha: CallerContext = { identity: ALPHA, ip: IN };

  it("limits per client → RATE_LIMITED, audited and observed as a denial", async () => {
    const observer = new RecordingObserver();
    // perSecond 0: no refill, so the outcome does not depend on elapsed time.
    const svc = service(observer, { clientRate: { perSecond: 0, burst: 2 } });
    const seq = await lastSeq();
    await svc.sign(alpha, { keyId: "k-active", version: 0, payload: PAYLOAD });
    await svc.sign(alpha, { keyId: "k-384", version: 0, payload: PAYLOAD });
    await assert.rejects(
      svc.sign(alpha, { keyId: "k-active", version: 0, payload: PAYLOAD }),
      (e: unknown) => e instanceof CustosError && e.code === "RATE_LIMITED" && e.retryable,
    );
    const events = await auditSince(seq);
    assert.deepEqual(
      events.map((e) => [e.outcome, e.reason]),
      [
        ["allowed", undefined],
        ["allowed", undefined],
        ["denied", "RATE_LIMITED"],
      ],
    );
    assert.equal(events[2]!.payloadSha256, sha256hex(PAYLOAD));
    assert.deepEqual(
      observer.seen.map((o) => o.reason),
      ["OK", "OK", "RATE_LIMITED"],
    );
  });

  it("remembers when each client last called (the console's last seen), from its rate limiter", async () => {
    const svc = service(new RecordingObserver());
    assert.equal(svc.clientLastSeen(ALPHA), undefined, "never called");
    const before = Date.now();
    await svc.sign(alpha, { keyId: "k-active", version: 0, payload: PAYLOAD });
    const after = Date.now();
    const seen = svc.clientLastSeen(ALPHA)!.getTime();
    assert.ok(seen >= before - 1 && seen <= after + 1, `${seen} within [${before}, ${after}]`);
    assert.equal(svc.clientLastSeen("spiffe://custos/engine/nobody"), undefined);
  });

  it("limits per key, independently of other keys", async () => {
    const svc = service(new RecordingObserver(), { keyRate: { perSecond: 0, burst: 1 } });
    await svc.sign(alpha, { keyId: "k-active", version: 0, payload: PAYLOAD });
    await assert.rejects(
      svc.sign(alpha, { keyId: "k-active", version: 0, payload: PAYLOAD }),
      (e: unknown) => e instanceof CustosError && e.code === "RATE_LIMITED",
    );
    const r = await svc.sign(alpha, { keyId: "k-384", version: 0, payload: PAYLOAD });
    assert.deepEqual(r.signature, hmac("k-384", PAYLOAD));
  });

  it("refills from the injected clock: the test advances time instead of waiting", async () => {
    const clock = new ManualClock();
    const svc = service(new RecordingObserver(), { keyRate: { perSecond: 1, burst: 1 }, clock });
    const limited = (e: unknown) => e instanceof CustosError && e.code === "RATE_LIMITED";
    await svc.sign(alpha, { keyId: "k-active", version: 0, payload: PAYLOAD });
    await assert.rejects(svc.sign(alpha, { keyId: "k-active", version: 0, payload: PAYLOAD }), limited);
    clock.advance(500); // half a token
    await assert.rejects(svc.sign(alpha, { keyId: "k-active", version: 0, payload: PAYLOAD }), limited);
    clock.advance(500);
    assert.deepEqual((await svc.sign(alpha, { keyId: "k-active", version: 0, payload: PAYLOAD })).signature, hmac("k-active", PAYLOAD));
  });

  it("dates a client's last call by the injected clock", async () => {
    const clock = new ManualClock({ now: Date.parse("2026-03-01T12:00:00Z"), monotonic: 5_000 });
    const svc = service(new RecordingObserver(), { clock });
    await svc.sign(alpha, { keyId: "k-active", version: 0, payload: PAYLOAD });
    clock.advance(60_000);
    assert.equal(svc.clientLastSeen(ALPHA)!.toISOString(), "2026-03-01T12:00:00.000Z");
  });

  it("ends a retiring version's grace period by the injected clock", async () => {
    // k-grace-over retires at NOW: one second before, its pinned version still signs.
    const clock = new ManualClock({ now: Date.parse(NOW) - 1_000, monotonic: 1_000 });
    const svc = service(new RecordingObserver(), { clock });
    assert.deepEqual((await svc.sign(alpha, { keyId: "k-grace-over", version: 1, payload: PAYLOAD })).signature, hmac("k-grace-over", PAYLOAD));
    clock.advance(1_000);
    const notUsable = (e: unknown) => e instanceof CustosError && e.code === "VERSION_NOT_USABLE";
    await assert.rejects(svc.sign(alpha, { keyId: "k-grace-over", version: 1, payload: PAYLOAD }), notUsable);
  });

  it("a client without a grant cannot spend a key's budget", async () => {
    const svc = service(new RecordingObserver(), { keyRate: { perSecond: 0, burst: 1 } });
    for (let i = 0; i < 5; i++) {
      await assert.rejects(
        svc.sign({ identity: BETA, ip: IN }, { keyId: "k-active", version: 0, payload: PAYLOAD }),
        (e: unknown) => e instanceof CustosError && e.code === "NO_GRANT",
      );
    }
    const r = await svc.sign(alpha, { keyId: "k-active", version: 0, payload: PAYLOAD });
    assert.deepEqual(r.signature, hmac("k-active", PAYLOAD));
  });
});

describe("SignService observer labels", () => {
  it("names registered clients and existing keys only: a caller cannot mint metric series or baselines", async () => {
    const observer = new RecordingObserver();
    const svc = service(observer);
    const alpha: CallerContext = { identity: ALPHA, ip: IN };
    await svc.sign(alpha, { keyId: "k-active", version: 0, payload: PAYLOAD });
    await assert.rejects(svc.sign(alpha, { keyId: "no-such-key-7f3a", version: 0, payload: PAYLOAD }));
    await assert.rejects(svc.sign(alpha, { keyId: "k-nogrant", version: 0, payload: PAYLOAD }));
    await assert.rejects(svc.sign({ identity: UNKNOWN, ip: IN }, { keyId: "k-active", version: 0, payload: PAYLOAD }));
    await assert.rejects(svc.sign({ identity: null, ip: IN }, { keyId: "k-active", version: 0, payload: PAYLOAD }));
    assert.deepEqual(
      observer.seen.map((o) => [o.reason, o.client, o.key, o.endpointClass]),
      [
        ["OK", ALPHA, "k-active", "raw"],
        ["KEY_NOT_FOUND", ALPHA, "", "raw"],
        ["NO_GRANT", ALPHA, "k-nogrant", "raw"],
        ["UNKNOWN_CLIENT", "", "k-active", "raw"],
        ["UNAUTHENTICATED", "", "k-active", "raw"],
      ],
    );
  });
});

describe("SignService decision log", () => {
  const recording = (allowedToo: boolean) => {
    const lines: SignDecision[] = [];
    return { lines, log: { allowedToo, decided: (d: SignDecision) => void lines.push(d) } satisfies SignDecisionLog };
  };

  it("logs every refusal with its request id (set on the error for the caller) and the payload's SHA-256 only", async () => {
    const { lines, log } = recording(false);
    const svc = service(new RecordingObserver(), { decisionLog: log });
    const alpha: CallerContext = { identity: ALPHA, ip: IN };
    await svc.sign(alpha, { keyId: "k-active", version: 0, payload: PAYLOAD });
    const err = await svc.sign(alpha, { keyId: "k-nogrant", version: 0, payload: PAYLOAD }).then(
      () => assert.fail("NO_GRANT expected"),
      (e: unknown) => e as CustosError,
    );
    assert.equal(lines.length, 1, "allowed signs are not logged unless the log asks for them");
    assert.deepEqual(lines[0], {
      event: "sign",
      outcome: "denied",
      reason: "NO_GRANT",
      client: ALPHA,
      key: "k-nogrant",
      requestId: err.requestId,
      payloadSha256: sha256hex(PAYLOAD),
    });
    assert.match(err.requestId ?? "", /^r[0-9a-z]+-[0-9a-z]+$/);
    assert.ok(!JSON.stringify(lines).includes("SENTINEL-7f3a"), "payload bytes never logged");
  });

  it("logs allowed signs too when the log asks (debug level)", async () => {
    const { lines, log } = recording(true);
    const svc = service(new RecordingObserver(), { decisionLog: log });
    const r = await svc.sign({ identity: ALPHA, ip: IN }, { keyId: "k-active", version: 0, payload: PAYLOAD });
    assert.deepEqual(lines, [
      { event: "sign", outcome: "allowed", reason: "OK", client: ALPHA, key: "k-active", version: r.version, payloadSha256: sha256hex(PAYLOAD) },
    ]);
  });
});

describe("SignService audit privacy", () => {
  it("never writes payload bytes into the audit body", async () => {
    const svc = service(new RecordingObserver());
    const seq = await lastSeq();
    const alpha: CallerContext = { identity: ALPHA, ip: IN };
    await svc.sign(alpha, { keyId: "k-active", version: 0, payload: PAYLOAD });
    await assert.rejects(svc.sign(alpha, { keyId: "k-nogrant", version: 0, payload: PAYLOAD }));
    await assert.rejects(svc.sign({ identity: null, ip: IN }, { keyId: "k-active", version: 0, payload: PAYLOAD }));
    hsm.down = true;
    await assert.rejects(svc.sign(alpha, { keyId: "k-active", version: 0, payload: PAYLOAD }));
    hsm.down = false;

    await audit.flush();
    const bodies = (await store.audit.readAudit(seq, 1_000)).map((e) => e.body);
    assert.equal(bodies.length, 4);
    for (const body of bodies) {
      for (const form of [PAYLOAD.toString("utf8"), "SENTINEL-7f3a", PAYLOAD.toString("hex"), PAYLOAD.toString("base64"), PAYLOAD.toString("base64url")]) {
        assert.ok(!body.includes(form), `audit body contains the payload: ${body}`);
      }
      assert.ok(body.includes(sha256hex(PAYLOAD)));
    }
  });
});
