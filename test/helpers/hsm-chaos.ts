/**
 * HSM fault injection for the recovery tests: signing load through gRPC while a second
 * PKCS#11 handle in the same process pulls the token's sessions and login away.
 */
import assert from "node:assert/strict";
import { createHmac, randomBytes, randomInt } from "node:crypto";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { status } from "@grpc/grpc-js";
import { unary } from "../../src/client/connection.js";
import type { CustosConfig } from "../../src/config/config.js";
import { SignatureEncoding, type SignerClient, type SignStreamResponse } from "../../src/gen/custos/v1/signer.js";
import { findSlotByLabel, pkcs11js, type Handle, type Module } from "../../src/hsm/pkcs11/module.js";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import { failure, importSecret, startInProcess, type InProcessService } from "./harness.js";

const CKR_CRYPTOKI_ALREADY_INITIALIZED = 0x191;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const tick = () => new Promise((r) => setImmediate(r));

/** Polls `count` until it reaches `target`, for at most `timeoutMs`; returns the last count (the caller asserts on it). */
async function untilAtLeast(count: () => number | Promise<number>, target: number, timeoutMs = 5_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const n = await count();
    if (n >= target || Date.now() > deadline) return n;
    await sleep(20);
  }
}

/** Good signatures the load must add before each step of the scenario moves on (at most 5 s of load each). */
const PROGRESS = 500;

/**
 * A second handle on the same SoftHSM2 library. dlopen hands back the already-loaded
 * library, so its sessions and login state are the service's. Never C_Finalize: that
 * would tear the library down under the service.
 */
export class HsmKiller {
  private readonly mod: Module = new pkcs11js.PKCS11();
  private readonly slot: Handle;

  constructor(modulePath: string, tokenLabel: string) {
    this.mod.load(modulePath);
    try {
      this.mod.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK });
    } catch (e) {
      if ((e as { code?: number }).code !== CKR_CRYPTOKI_ALREADY_INITIALIZED) throw e;
    }
    const slot = findSlotByLabel(this.mod, tokenLabel);
    assert.ok(slot, `token "${tokenLabel}" not found from the second handle`);
    this.slot = slot;
  }

  /** Every session of the process on this token (the service's included) becomes invalid. */
  closeAllSessions(): void {
    this.mod.C_CloseAllSessions(this.slot);
  }

  /** C_Logout is per process: the service's sessions lose their login and key handles. */
  logout(): void {
    const session = this.mod.C_OpenSession(this.slot, pkcs11js.CKF_SERIAL_SESSION);
    try {
      this.mod.C_Logout(session);
    } finally {
      this.mod.C_CloseSession(session);
    }
  }
}

/** What the load saw. `other` lists every outcome that is neither a right signature nor HSM_UNAVAILABLE. */
export interface Tally {
  ok: number;
  unavailable: number;
  wrongSignatures: number;
  other: string[];
}

export const newTally = (): Tally => ({ ok: 0, unavailable: 0, wrongSignatures: 0, other: [] });

/** A key the load signs with; its secret is known so every signature can be checked. */
export interface TestKey {
  id: string;
  secret: Buffer;
}

function judge(tally: Tally, key: TestKey, payload: Buffer, signature: Buffer): void {
  if (signature.equals(createHmac("sha256", key.secret).update(payload).digest())) tally.ok++;
  else tally.wrongSignatures++;
}

function judgeFailure(tally: Tally, code: number, reason: string | undefined, details: string): void {
  if (code === status.UNAVAILABLE && reason === "HSM_UNAVAILABLE") tally.unavailable++;
  else tally.other.push(`code ${code} reason ${reason} (${details})`);
}

const randomPayload = () => randomBytes(randomInt(0, 512));

/** One caller doing unary signs back to back until `stop()`, alternating keys. */
export async function unaryLoop(signer: SignerClient, keys: TestKey[], stop: () => boolean, tally: Tally): Promise<void> {
  for (let i = 0; !stop(); i++) {
    const key = keys[i % keys.length]!;
    const payload = randomPayload();
    try {
      const res = await unary(signer, "sign", { keyId: key.id, version: 0, payload, encoding: SignatureEncoding.SIGNATURE_ENCODING_RAW });
      judge(tally, key, payload, res.signature);
    } catch (e) {
      const f = failure(e);
      judgeFailure(tally, f.code, f.reason, f.details);
    }
  }
}

/** One SignStream keeping `depth` requests in flight until `stop()`; every request must be answered. */
export function streamLoop(signer: SignerClient, keys: TestKey[], stop: () => boolean, tally: Tally, depth = 16): Promise<void> {
  return new Promise((resolve) => {
    const stream = signer.signStream();
    const pending = new Map<string, { key: TestKey; payload: Buffer }>();
    let next = 1;
    const send = () => {
      while (!stop() && pending.size < depth) {
        const id = String(next++);
        const key = keys[next % keys.length]!;
        const payload = randomPayload();
        pending.set(id, { key, payload });
        stream.write({
          requestId: id,
          kind: { $case: "request", request: { keyId: key.id, version: 0, payload, encoding: SignatureEncoding.SIGNATURE_ENCODING_RAW } },
        });
      }
      if (stop() && pending.size === 0) stream.end();
    };
    stream.on("data", (msg: SignStreamResponse) => {
      const sent = pending.get(msg.requestId);
      pending.delete(msg.requestId);
      if (!sent) tally.other.push(`stream: answer to unknown request ${msg.requestId}`);
      else if (msg.result?.$case === "response") judge(tally, sent.key, sent.payload, msg.result.response.signature);
      else if (msg.result?.$case === "denial") judgeFailure(tally, msg.result.denial.code, msg.result.denial.reason, msg.result.denial.message);
      else tally.other.push(`stream: empty result for ${msg.requestId}`);
      send();
    });
    stream.on("error", (e) => {
      const f = failure(e);
      tally.other.push(`stream broke: code ${f.code} reason ${f.reason} (${f.details})`);
      resolve();
    });
    stream.on("end", () => {
      if (pending.size > 0) tally.other.push(`stream ended with ${pending.size} unanswered requests`);
      resolve();
    });
    send();
  });
}

export interface ReadyzAnswer {
  code: number;
  body: { status?: string; hsm?: { ready?: boolean; reason?: string } };
}

export async function readyz(svc: InProcessService): Promise<ReadyzAnswer> {
  const res = await fetch(`${svc.conn.http}/readyz`);
  return { code: res.status, body: (await res.json()) as ReadyzAnswer["body"] };
}

/**
 * /readyz answered in-process (`inject()`): the handler reads the HSM status within the same
 * event-loop turn, before the recovery timer can fire. Over a socket, a loaded loop serves the
 * probe only after the HSM has recovered, and the probe would measure the load, not the status.
 */
export async function readyzNow(svc: InProcessService): Promise<ReadyzAnswer> {
  const res = await svc.service.http.inject({ method: "GET", url: "/readyz" });
  return { code: res.statusCode, body: res.json() as ReadyzAnswer["body"] };
}

/** What one fault did to the service, as seen from status() and /readyz. */
export interface FaultObservation {
  name: string;
  /** status().reason once the service noticed, or undefined if it never did. */
  reason: string | undefined;
  /** /readyz asked the moment status() turned not-ready. */
  readyz: ReadyzAnswer | undefined;
  /** From the fault until status() was ready again. */
  unavailableMs: number;
}

/**
 * Injects `fault`, then watches status() every event-loop turn: the service notices on its
 * next HSM call (the load guarantees one), and /readyz is asked right then. Waits for recovery.
 */
export async function injectFault(svc: InProcessService, name: string, fault: () => void): Promise<FaultObservation> {
  const hsm = svc.service.hsm;
  assert.ok(hsm.status().ready, `service not ready before the ${name} fault`);
  const started = performance.now();
  fault();
  let reason: string | undefined;
  let probe: Promise<ReadyzAnswer> | undefined;
  for (const deadline = started + 10_000; performance.now() < deadline; await tick()) {
    const s = hsm.status();
    if (!s.ready && reason === undefined) {
      reason = s.reason;
      probe = readyzNow(svc);
    }
    if (s.ready && reason !== undefined) break;
  }
  const unavailableMs = performance.now() - started;
  return { name, reason, readyz: await probe, unavailableMs };
}

/** Signs until one call succeeds (the service recovered by itself), up to `timeoutMs`. */
export async function signUntilOk(signer: SignerClient, key: TestKey, timeoutMs = 10_000, payload = randomPayload()): Promise<number> {
  const started = Date.now();
  for (;;) {
    try {
      const res = await unary(signer, "sign", { keyId: key.id, version: 0, payload, encoding: SignatureEncoding.SIGNATURE_ENCODING_RAW });
      assert.deepEqual(res.signature, createHmac("sha256", key.secret).update(payload).digest(), `signature by ${key.id}`);
      return Date.now() - started;
    } catch (e) {
      if (e instanceof assert.AssertionError) throw e;
      const f = failure(e);
      assert.equal(f.reason, "HSM_UNAVAILABLE", `while recovering: code ${f.code} reason ${f.reason}`);
      assert.ok(Date.now() - started < timeoutMs, `signing did not recover within ${timeoutMs} ms`);
      await sleep(50);
    }
  }
}

/** Audit bodies (parsed) of the service's data dir, read through a second, read-only connection. */
export async function auditBodies(dir: string): Promise<Array<Record<string, unknown>>> {
  const store = new SqliteStore(join(dir, "custos.db"), { readonly: true });
  try {
    return (await store.audit.readAudit(0, 1e6)).map((e) => JSON.parse(e.body) as Record<string, unknown>);
  } finally {
    await store.close();
  }
}

/**
 * The recovery scenario, shared by the sync and async test files: 8 unary callers and a
 * SignStream sign continuously while the token's sessions are closed, then its login dropped.
 */
export function defineRecoveryScenario(dispatch: "sync" | "async" | "worker", tweak: (c: CustosConfig) => void = () => undefined): void {
  describe(`HSM fault recovery (${dispatch} dispatch)`, () => {
    let svc: InProcessService;
    let killer: HsmKiller;
    before(async () => {
      svc = await startInProcess((c) => {
        c.hsm.dispatch = dispatch;
        // The scenario counts one audit row per HSM_UNAVAILABLE answer: no flood sampling here.
        c.audit.refusals = { individualPerSource: 100_000 };
        tweak(c);
      });
      killer = new HsmKiller(svc.config.hsm.modulePath, svc.config.hsm.tokenLabel);
    });
    after(async () => svc?.stop());

    it("under load, fails only with HSM_UNAVAILABLE, reports not-ready, and recovers by itself", { timeout: 60_000 }, async (t) => {
      // Two keys: a handle mixed up across a re-login would sign with the other key's secret.
      const keys: TestKey[] = ["chaos-a", "chaos-b"].map((id) => ({ id, secret: Buffer.from(randomBytes(48).toString("base64")) }));
      for (const key of keys) {
        await importSecret(svc.custody, key.id, key.secret);
        await signUntilOk(svc.signer, key, 0); // signs before any fault
      }
      // Regression: an empty payload once left C_Sign's operation active and every later sign
      // on that session failed with CKR_OPERATION_ACTIVE. Twice: the second reuses the session.
      for (let i = 0; i < 2; i++) await signUntilOk(svc.signer, keys[0]!, 0, Buffer.alloc(0));
      assert.equal(svc.service.hsm.status().dispatch, dispatch);
      // Also warms fetch's connection, so the probe at the fault is not slowed by a first connect.
      assert.equal((await readyz(svc)).code, 200, "ready before any fault");

      const tally = newTally();
      let stopped = false;
      const stop = () => stopped;
      const loads = Array.from({ length: 8 }, (_, i) => unaryLoop(svc.signer, i % 2 ? keys : [...keys].reverse(), stop, tally));
      loads.push(streamLoop(svc.signer, keys, stop, tally));
      const faults: FaultObservation[] = [];
      let okBeforeFaults = 0;
      let okAfterFaults = 0;
      try {
        // Each step waits for the load to make progress, not for a fixed time.
        okBeforeFaults = await untilAtLeast(() => tally.ok, PROGRESS);
        faults.push(await injectFault(svc, "C_CloseAllSessions", () => killer.closeAllSessions()));
        await untilAtLeast(() => tally.ok, tally.ok + PROGRESS);
        faults.push(await injectFault(svc, "C_Logout", () => killer.logout()));
        okAfterFaults = tally.ok;
        await untilAtLeast(() => tally.ok, okAfterFaults + PROGRESS);
      } finally {
        stopped = true; // also when a step throws: the load would otherwise run forever
        await Promise.all(loads);
      }
      t.diagnostic(`tally ${JSON.stringify({ ...tally, other: tally.other.length })}`);
      for (const f of faults) t.diagnostic(`${f.name}: ${JSON.stringify(f)}`);

      // Every call: a right signature or HSM_UNAVAILABLE. Nothing else, ever.
      assert.deepEqual(tally.other.slice(0, 10), [], `${tally.other.length} calls ended otherwise`);
      assert.equal(tally.wrongSignatures, 0, "signatures that differ from node:crypto's HMAC");
      assert.ok(okBeforeFaults > 0, "the load signed before the faults");
      assert.ok(tally.ok > okAfterFaults, "the load signed again after the faults, in the same run");
      assert.ok(tally.unavailable > 0, "the faults reached callers as HSM_UNAVAILABLE");
      for (const f of faults) {
        assert.match(f.reason ?? "(never noticed)", /^recovering: /, `${f.name}: status() turned not-ready`);
        assert.equal(f.readyz?.code, 503, `${f.name}: /readyz while not ready`);
        assert.match(f.readyz?.body.hsm?.reason ?? "", /^recovering: /, `${f.name}: /readyz names the HSM reason`);
        assert.ok(f.unavailableMs < 5_000, `${f.name}: recovered in ${f.unavailableMs.toFixed(0)} ms`);
      }

      // Recovered without a restart: signing and readiness are back.
      for (const key of keys) await signUntilOk(svc.signer, key, 10_000);
      const ready = await readyz(svc);
      assert.equal(ready.code, 200, JSON.stringify(ready.body));
      const logs = svc.logs();
      assert.ok((logs.match(/"event":"hsm\.unavailable"/g) ?? []).length >= 2, "one hsm.unavailable log per fault");
      assert.ok((logs.match(/"event":"hsm\.recovered"/g) ?? []).length >= 2, "one hsm.recovered log per fault");

      // Every refused call left its audit event (sign events are batched: wait until the flushes
      // hold as many as were answered; more, or fewer by the deadline, fails the count below).
      const failedSigns = async () => (await auditBodies(svc.dir)).filter((b) => b.kind === "sign" && b.outcome === "failed");
      await untilAtLeast(async () => (await failedSigns()).length, tally.unavailable);
      const failed = await failedSigns();
      assert.ok(failed.length > 0, "audit has failed sign events");
      assert.ok(
        failed.every((b) => b.reason === "HSM_UNAVAILABLE"),
        JSON.stringify(failed.find((b) => b.reason !== "HSM_UNAVAILABLE")),
      );
      assert.equal(failed.length, tally.unavailable, "one audit event per HSM_UNAVAILABLE answer");
    });
  });
}
