import assert from "node:assert/strict";
import { createHmac, randomBytes } from "node:crypto";
import { after, before, it } from "node:test";
import { status } from "@grpc/grpc-js";
import { unary } from "../../src/client/connection.js";
import { SignatureEncoding } from "../../src/gen/custos/v1/signer.js";
import {
  auditEvents,
  envelopeFor,
  expectDenied,
  importSecret,
  proposeAndApprove,
  startInProcess,
  tokenSecretIds,
  type InProcessService,
} from "../helpers/harness.js";
import { ManualClock } from "../helpers/manual-clock.js";

/**
 * A rotated-out version's grace period on the real token: it signs for pinned clients until
 * its end, then housekeeping destroys its HSM object. The service's clock follows real time
 * and is moved past the grace period by hand, so nothing waits for the period to pass.
 */
let svc: InProcessService;
const clock = ManualClock.followingRealTime();
const KEY = "graced";
const V1 = randomBytes(32);
const V2 = randomBytes(32);
const GRACE_SECONDS = 3600;

before(async () => {
  // Housekeeping runs only when the test calls it (its timer is an hour away).
  svc = await startInProcess((c) => (c.governance.housekeepingMs = 3_600_000), { clock });
  await importSecret(svc.custody, KEY, V1);
  const envelope = await envelopeFor(svc.custody, V2);
  const rotation = await proposeAndApprove(svc.custody, {
    kind: { $case: "rotateKey", rotateKey: { keyId: KEY, envelope, apiKeyId: "", graceSeconds: GRACE_SECONDS, signedPassphrase: "" } },
    ttlSeconds: 0,
  });
  assert.equal(rotation.state, "executed", rotation.failure);
});
after(async () => svc?.stop());

const payload = Buffer.from("symbol=BTCUSDT&side=BUY&type=MARKET&quantity=1");
const sign = (version: number) => unary(svc.signer, "sign", { keyId: KEY, version, payload, encoding: SignatureEncoding.SIGNATURE_ENCODING_RAW });
const hmac = (secret: Buffer) => createHmac("sha256", secret).update(payload).digest();
const versionStates = async () => {
  const { keys } = await unary(svc.custody, "listKeys", {});
  return Object.fromEntries(keys.find((k) => k.keyId === KEY)!.versions.map((v) => [v.version, v.state]));
};

it("a version in its grace period still signs for pinned clients, and housekeeping keeps it until the period ends", async () => {
  assert.deepEqual(await versionStates(), { 1: "retiring", 2: "active" });
  assert.deepEqual((await sign(0)).signature, hmac(V2));
  assert.deepEqual((await sign(1)).signature, hmac(V1));
  clock.advance((GRACE_SECONDS - 60) * 1000);
  await svc.service.housekeeping();
  assert.deepEqual(await versionStates(), { 1: "retiring", 2: "active" }, "a minute before the end, v1 is kept");
  assert.deepEqual((await sign(1)).signature, hmac(V1));
  assert.deepEqual(await tokenSecretIds(svc.dir), [`custos:${KEY}:v1`, `custos:${KEY}:v2`]);
});

it("when the grace period ends, housekeeping destroys the version's HSM object and pinned signs are refused", async () => {
  clock.advance(120_000);
  await svc.service.housekeeping();
  assert.deepEqual(await versionStates(), { 1: "destroyed", 2: "active" });
  assert.deepEqual(await tokenSecretIds(svc.dir), [`custos:${KEY}:v2`], "v1's HSM object is destroyed, v2's is the only one");
  await expectDenied(sign(1), status.FAILED_PRECONDITION, "VERSION_NOT_USABLE");
  assert.deepEqual((await sign(0)).signature, hmac(V2));
  const destroyed = (await auditEvents(svc.dir)).filter((e) => e.kind === "key.destroy_version");
  assert.deepEqual(
    destroyed.map((e) => [e.key, e.version, e.details?.reason]),
    [[KEY, 1, "grace period ended"]],
  );
});
