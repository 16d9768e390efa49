import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after } from "node:test";
import { Pkcs11Hsm } from "../../src/hsm/pkcs11/pkcs11-hsm.js";
import { createToken, ensureCheckpointKey, ensureWrappingKey } from "../../src/hsm/pkcs11/token-admin.js";
import { findObjects, findSlotByLabel, loadModule, pkcs11js as p, type Handle, type Module } from "../../src/hsm/pkcs11/module.js";
import { createLogger } from "../../src/log.js";
import { REPO } from "../helpers/harness.js";
import { defineHsmContract, type HsmProbe, type ObjectFacts } from "../helpers/hsm-contract.js";
import { eddsaUnwrapModule } from "../helpers/softhsm-eddsa.js";

/**
 * Pkcs11Hsm on a fresh SoftHSM2 token passes the Hsm contract FakeHsm passes (test/unit), in the
 * production dispatch for SoftHSM2 (worker), in async dispatch (network HSMs) and in sync dispatch. The module is
 * Debian's SoftHSM2 with the EdDSA unwrap patch (test/helpers/softhsm-eddsa.ts), so Ed25519
 * imports are covered too. What the token holds is read through the PKCS#11 module itself.
 */

const CKR_ATTRIBUTE_SENSITIVE = 0x11;
const CKR_KEY_UNEXTRACTABLE = 0x6a;
const LABEL = "contract";
const USER_PIN = "contract-user-pin";
const modulePath = eddsaUnwrapModule();

// SoftHSM2 reads SOFTHSM2_CONF once per process, at C_Initialize: set it before anything loads the module.
const dir = mkdtempSync(join(tmpdir(), "custos-hsm-contract-"));
mkdirSync(join(dir, "tokens"), { mode: 0o700 });
const conf = join(dir, "softhsm2.conf");
writeFileSync(conf, readFileSync(join(REPO, "hsm/softhsm2.conf.template"), "utf8").replace("@TOKENDIR@", join(dir, "tokens")), { mode: 0o600 });
process.env.SOFTHSM2_CONF = conf;
createToken(modulePath, LABEL, "contract-so-pin", USER_PIN);
ensureWrappingKey(modulePath, LABEL, USER_PIN);
ensureCheckpointKey(modulePath, LABEL, USER_PIN);
after(() => rmSync(dir, { recursive: true, force: true }));

/** The CKR of a pkcs11js error: its `code`, or the number in the message where pkcs11js 2.1.7 puts none. */
const ckrOf = (e: unknown) => (e as { code?: number }).code ?? Number(/:(\d+)$/.exec(String((e as Error).message))?.[1]);
const CLASSES: Record<number, ObjectFacts["class"]> = { [p.CKO_SECRET_KEY]: "secret", [p.CKO_PRIVATE_KEY]: "private", [p.CKO_PUBLIC_KEY]: "public" };
const USAGES: Array<[string, number]> = [
  ["sign", p.CKA_SIGN],
  ["verify", p.CKA_VERIFY],
  ["encrypt", p.CKA_ENCRYPT],
  ["decrypt", p.CKA_DECRYPT],
  ["wrap", p.CKA_WRAP],
  ["unwrap", p.CKA_UNWRAP],
  ["derive", p.CKA_DERIVE],
];

/** Reads the token through its own session (same process: the Pkcs11Hsm's login covers it). */
class TokenProbe implements HsmProbe {
  private readonly mod: Module = loadModule(modulePath);
  private readonly session: Handle;
  /** An AES key allowed to wrap: what would carry a key out of the HSM if it were extractable. */
  private readonly wrapper: Handle;

  constructor() {
    this.session = this.mod.C_OpenSession(findSlotByLabel(this.mod, LABEL)!, p.CKF_SERIAL_SESSION | p.CKF_RW_SESSION);
    this.wrapper = this.mod.C_GenerateKey(this.session, { mechanism: p.CKM_AES_KEY_GEN }, [
      { type: p.CKA_CLASS, value: p.CKO_SECRET_KEY },
      { type: p.CKA_KEY_TYPE, value: p.CKK_AES },
      { type: p.CKA_VALUE_LEN, value: 32 },
      { type: p.CKA_TOKEN, value: false },
      { type: p.CKA_WRAP, value: true },
    ]);
  }

  async objectsWithId(objectId: string): Promise<ObjectFacts[]> {
    return findObjects(this.mod, this.session, [{ type: p.CKA_ID, value: Buffer.from(objectId) }]).map((h) => this.facts(h));
  }

  async objectCount(): Promise<number> {
    return findObjects(this.mod, this.session, []).length;
  }

  close(): void {
    try {
      this.mod.C_CloseSession(this.session);
    } catch {
      /* Pkcs11Hsm.close() closed every session of the slot */
    }
  }

  private facts(h: Handle): ObjectFacts {
    const cls = CLASSES[this.ulong(h, p.CKA_CLASS)];
    if (!cls) throw new Error(`unexpected object class ${this.ulong(h, p.CKA_CLASS)}`);
    const usage = USAGES.filter(([, t]) => this.flag(h, t) === true).map(([n]) => n);
    const facts: ObjectFacts = { class: cls, token: this.flag(h, p.CKA_TOKEN) === true, usage };
    if (cls === "public") return facts;
    return {
      ...facts,
      sensitive: this.flag(h, p.CKA_SENSITIVE)!,
      extractable: this.flag(h, p.CKA_EXTRACTABLE)!,
      valueReadable: this.valueReadable(h),
      wrapsOut: this.wrapsOut(h),
    };
  }

  /** A CK_BBOOL attribute; undefined if this object type has no such attribute. */
  private flag(h: Handle, type: number): boolean | undefined {
    try {
      return (this.mod.C_GetAttributeValue(this.session, h, [{ type }])[0]!.value as Buffer)[0] === 1;
    } catch {
      return undefined;
    }
  }

  private ulong(h: Handle, type: number): number {
    return (this.mod.C_GetAttributeValue(this.session, h, [{ type }])[0]!.value as Buffer).readUIntLE(0, 4);
  }

  /** Reads CKA_VALUE: a sensitive object answers CKR_ATTRIBUTE_SENSITIVE. */
  private valueReadable(h: Handle): boolean {
    try {
      this.mod.C_GetAttributeValue(this.session, h, [{ type: p.CKA_VALUE }]);
      return true;
    } catch (e) {
      if (ckrOf(e) === CKR_ATTRIBUTE_SENSITIVE) return false;
      throw e;
    }
  }

  /** Wraps the object out under an AES key: a non-extractable object answers CKR_KEY_UNEXTRACTABLE. */
  private wrapsOut(h: Handle): boolean {
    try {
      this.mod.C_WrapKey(this.session, { mechanism: p.CKM_AES_KEY_WRAP_PAD }, this.wrapper, h, Buffer.alloc(8192));
      return true;
    } catch (e) {
      if (ckrOf(e) === CKR_KEY_UNEXTRACTABLE) return false;
      throw e;
    }
  }
}

for (const dispatch of ["worker", "async", "sync"] as const) {
  defineHsmContract(`Pkcs11Hsm on SoftHSM2 (${dispatch} dispatch)`, async () => {
    const hsm = await Pkcs11Hsm.open({ modulePath, tokenLabel: LABEL, pin: USER_PIN, sessions: 4, dispatch, oaepHash: "sha1", logger: createLogger("silent") });
    const probe = new TokenProbe();
    return {
      hsm,
      probe,
      async close() {
        probe.close();
        await hsm.close();
      },
    };
  });
}
