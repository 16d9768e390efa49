import assert from "node:assert/strict";
import { createPublicKey, randomBytes, verify } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { unary } from "../../src/client/connection.js";
import { CustosError } from "../../src/errors.js";
import { findObjects, findSlotByLabel, loadModule, pkcs11js as p, type Handle, type Module } from "../../src/hsm/pkcs11/module.js";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import { importSecret, startInProcess, type InProcessService } from "../helpers/harness.js";

/**
 * The audit checkpoint key on a real SoftHSM2 token, in-process: it is sealed, the sign API
 * cannot reach it, and checkpoints (triggered explicitly, or by an injected interval) land in the
 * file, the log and the database with signatures that verify.
 */

const CKR_ATTRIBUTE_SENSITIVE = 0x11;
/** A non-modifiable object refuses any change (PKCS#11 2.40: CKR_ACTION_PROHIBITED). */
const CKR_ACTION_PROHIBITED = 0x1b;
const CKR_KEY_UNEXTRACTABLE = 0x6a;
const CHECKPOINT_KEY_ID = "custos-audit-checkpoint-v1";
/** The CKR of a pkcs11js error: its `code`, or for return values pkcs11js 2.1.7 has no name for, the number in "CKR_VENDOR_DEFINED:N". */
const ckrCode = (e: unknown) => (e as { code?: number }).code ?? Number(/^CKR_VENDOR_DEFINED:(\d+)$/.exec((e as Error).message)?.[1]);
const ckr = (code: number) => (e: unknown) => ckrCode(e) === code;

type Line = { seq: number; hash: string; at: string; signature: string };

describe("the audit checkpoint key and checkpoints", () => {
  let s: InProcessService;
  let mod: Module;
  let session: Handle;

  before(async () => {
    // A short interval, so the periodic checkpoint shows without waiting on a long timer.
    s = await startInProcess((c) => (c.audit.checkpointIntervalMs = 100));
    mod = loadModule(s.config.hsm.modulePath);
    session = mod.C_OpenSession(findSlotByLabel(mod, s.config.hsm.tokenLabel)!, p.CKF_SERIAL_SESSION | p.CKF_RW_SESSION);
  });
  after(async () => {
    mod.C_CloseSession(session);
    await s.stop();
  });

  const objects = (cls: number) =>
    findObjects(mod, session, [
      { type: p.CKA_CLASS, value: cls },
      { type: p.CKA_ID, value: Buffer.from(CHECKPOINT_KEY_ID) },
    ]);
  const flags = (h: Handle, names: Array<keyof typeof p>) =>
    Object.fromEntries(names.map((n) => [n, (mod.C_GetAttributeValue(session, h, [{ type: p[n] as number }])[0]!.value as Buffer)[0] === 1]));
  const fileLines = (): Line[] =>
    readFileSync(join(s.dir, "audit-checkpoints.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Line);
  const verifies = (c: Line) =>
    verify(
      "sha256",
      Buffer.from(`custos.audit-checkpoint.v1\n${c.seq}\n${c.hash}\n${c.at}\n`),
      { key: createPublicKey(readFileSync(join(s.dir, "audit-checkpoint-key.pem"))), dsaEncoding: "ieee-p1363" },
      Buffer.from(c.signature, "base64"),
    );

  it("comes with a new embedded token, not as a repair on its first start", () => {
    assert.equal(objects(p.CKO_PRIVATE_KEY).length, 1);
    assert.doesNotMatch(s.logs(), /audit\.checkpoint_key_created/);
  });

  it("is one ECDSA P-256 pair whose private half is sensitive, never extractable, not modifiable and signs only", () => {
    const [priv, ...morePriv] = objects(p.CKO_PRIVATE_KEY);
    assert.ok(priv);
    assert.equal(morePriv.length, 0);
    assert.equal(objects(p.CKO_PUBLIC_KEY).length, 1);
    assert.equal(mod.C_GetAttributeValue(session, priv, [{ type: p.CKA_KEY_TYPE }])[0]!.value.readUIntLE(0, 4), p.CKK_EC);
    assert.deepEqual(
      flags(priv, [
        "CKA_SENSITIVE",
        "CKA_ALWAYS_SENSITIVE",
        "CKA_EXTRACTABLE",
        "CKA_NEVER_EXTRACTABLE",
        "CKA_SIGN",
        "CKA_DECRYPT",
        "CKA_UNWRAP",
        "CKA_DERIVE",
        "CKA_MODIFIABLE",
        "CKA_COPYABLE",
      ]),
      {
        CKA_SENSITIVE: true,
        CKA_ALWAYS_SENSITIVE: true,
        CKA_EXTRACTABLE: false,
        CKA_NEVER_EXTRACTABLE: true,
        CKA_SIGN: true,
        CKA_DECRYPT: false,
        CKA_UNWRAP: false,
        CKA_DERIVE: false,
        CKA_MODIFIABLE: false,
        CKA_COPYABLE: false,
      },
    );
    assert.throws(() => mod.C_GetAttributeValue(session, priv, [{ type: p.CKA_VALUE }]), ckr(CKR_ATTRIBUTE_SENSITIVE));
    assert.throws(() => mod.C_SetAttributeValue(session, priv, [{ type: p.CKA_EXTRACTABLE, value: true }]), ckr(CKR_ACTION_PROHIBITED));
    const aes = mod.C_GenerateKey(session, { mechanism: p.CKM_AES_KEY_GEN }, [
      { type: p.CKA_CLASS, value: p.CKO_SECRET_KEY },
      { type: p.CKA_KEY_TYPE, value: p.CKK_AES },
      { type: p.CKA_TOKEN, value: false },
      { type: p.CKA_VALUE_LEN, value: 32 },
      { type: p.CKA_WRAP, value: true },
    ]);
    try {
      assert.throws(() => mod.C_WrapKey(session, { mechanism: p.CKM_AES_KEY_WRAP_PAD }, aes, priv, Buffer.alloc(1024)), ckr(CKR_KEY_UNEXTRACTABLE));
    } finally {
      mod.C_DestroyObject(session, aes);
    }
  });

  it("cannot sign anything through the sign API, under any algorithm", async () => {
    for (const algorithm of ["hmac-sha256", "hmac-sha512", "ed25519"] as const) {
      await assert.rejects(
        s.service.hsm.sign(CHECKPOINT_KEY_ID, algorithm, randomBytes(32)),
        (e) => e instanceof CustosError && e.code === "HSM_ERROR",
        algorithm,
      );
    }
    // Nor is it one of the token's signing keys that start-up reconciliation would sweep.
    assert.ok(!(await s.service.hsm.listSecretIds()).includes(CHECKPOINT_KEY_ID));
    assert.equal(await s.service.hsm.hasSecret(CHECKPOINT_KEY_ID), false);
  });

  it("writes an explicit checkpoint of the written head to the file, the log and the database", async () => {
    await importSecret(s.custody, "k", Buffer.alloc(32, 1));
    await unary(s.signer, "sign", { keyId: "k", version: 0, payload: Buffer.from("order"), encoding: 0 });
    await s.service.checkpoint();
    const store = new SqliteStore(join(s.dir, "custos.db"), { readonly: true });
    try {
      const head = (await store.audit.lastAudit())!;
      const newest = fileLines().at(-1)!;
      assert.deepEqual({ seq: newest.seq, hash: newest.hash }, { seq: head.seq, hash: head.hash });
      assert.ok(verifies(newest));
      const stored = await store.audit.listCheckpoints();
      assert.ok(stored.some((c) => c.signature === newest.signature && c.seq === newest.seq && c.at === newest.at));
      const logged = s
        .logs()
        .split("\n")
        .filter((l) => l.includes('"audit.checkpoint"'))
        .map((l) => JSON.parse(l) as Line & { level: string });
      assert.ok(logged.some((l) => l.signature === newest.signature && l.seq === newest.seq && l.hash === newest.hash && l.at === newest.at));
    } finally {
      await store.close();
    }
  });

  it("checkpoints a grown chain on its own at the configured interval", async () => {
    const before = fileLines().at(-1)!.seq;
    await unary(s.signer, "sign", { keyId: "k", version: 0, payload: Buffer.from("another order"), encoding: 0 });
    const deadline = Date.now() + 5_000;
    while (fileLines().at(-1)!.seq <= before) {
      if (Date.now() > deadline) assert.fail(`no checkpoint after event ${before} within 5 s`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const newest = fileLines().at(-1)!;
    assert.ok(verifies(newest));
    // A tampered signature does not verify: the check above can fail.
    const forged = { ...newest, hash: newest.hash.replace(/^./, (c) => (c === "0" ? "1" : "0")) };
    assert.equal(verifies(forged), false);
  });
});
