import pkcs11js from "pkcs11js";
import { CustosError } from "../../errors.js";
import { CKR_CRYPTOKI_ALREADY_INITIALIZED, ckrOf, isSessionLost, toCustosError } from "./ckr.js";
import { tokenPrivateKeyQuery, tokenSecretQuery } from "./templates.js";

/** A loaded, initialised PKCS#11 module; one per library path per process. */
export type Module = InstanceType<typeof pkcs11js.PKCS11>;
export type Handle = Buffer;
export { pkcs11js };

const loaded = new Map<string, Module>();

/**
 * Loads and initialises a PKCS#11 library once per process. CKF_OS_LOCKING_OK is
 * mandatory: with flags 0 SoftHSM2 runs without mutexes and overlapping async calls crash
 * the process.
 */
export function loadModule(path: string): Module {
  const existing = loaded.get(path);
  if (existing) return existing;
  const mod = new pkcs11js.PKCS11();
  try {
    mod.load(path);
  } catch (e) {
    throw new CustosError("HSM_UNAVAILABLE", `cannot load PKCS#11 module ${path}`, { cause: e, retryable: true });
  }
  initialize(mod);
  loaded.set(path, mod);
  return mod;
}

/** C_Initialize with OS locking; "already initialised" is fine (another handle in-process did it). */
export function initialize(mod: Module): void {
  try {
    mod.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK });
  } catch (e) {
    if (ckrOf(e) !== CKR_CRYPTOKI_ALREADY_INITIALIZED) throw toCustosError(e, "C_Initialize");
  }
}

/** The slot whose token has this label. Slot ids are random on SoftHSM2: never use an index. */
export function findSlotByLabel(mod: Module, label: string): Handle | undefined {
  for (const slot of mod.C_GetSlotList(true)) {
    const info = mod.C_GetTokenInfo(slot);
    if (info.label.replace(/[\s\0]+$/, "") === label && (info.flags & pkcs11js.CKF_TOKEN_INITIALIZED) !== 0) return slot;
  }
  return undefined;
}

/** Every object handle matching the template (handles are cheap; searches are linear in object count). */
export function findObjects(mod: Module, session: Handle, template: pkcs11js.Template): Handle[] {
  mod.C_FindObjectsInit(session, template);
  try {
    const out: Handle[] = [];
    for (;;) {
      const batch = mod.C_FindObjects(session, 32);
      out.push(...batch);
      if (batch.length < 32) return out;
    }
  } finally {
    mod.C_FindObjectsFinal(session);
  }
}

const CKS_RO_USER_FUNCTIONS = 1;
const CKS_RW_USER_FUNCTIONS = 3;

/** Throws CKR_USER_NOT_LOGGED_IN (a lost login) if the session is not in a user state. */
export function assertLoggedIn(mod: Module, session: Handle): void {
  const state = mod.C_GetSessionInfo(session).state;
  if (state !== CKS_RW_USER_FUNCTIONS && state !== CKS_RO_USER_FUNCTIONS) {
    throw Object.assign(new Error("token is logged out"), { code: 0x101 });
  }
}

/**
 * The token object a version signs with: its HMAC secret or, failing that, its Ed25519
 * private key. The secret is looked up first and exactly as before, so an HMAC version costs
 * one search as it always did; only an id without a secret pays the second one.
 */
export function findSigningKey(mod: Module, session: Handle, objectId: string): Handle | undefined {
  return findObjects(mod, session, tokenSecretQuery(objectId))[0] ?? findObjects(mod, session, tokenPrivateKeyQuery(objectId))[0];
}

/**
 * The handle to sign with (a secret or an Ed25519 private key): an in-HSM session copy of its
 * token object. SoftHSM2 re-reads the token files on every C_SignInit of a token object
 * (~21 µs) but not of a session object (~7 µs). The copy stays sensitive and
 * non-extractable, lives until the session that made it closes (callers then re-find it),
 * and is destroyed with the token object (same CKA_ID). A key that refuses copying
 * (COPYABLE=false) signs from the token object. A missing object on a logged-out session
 * throws the lost login.
 */
export function signingHandle(mod: Module, session: Handle, objectId: string, onNoCopy?: (ckr: number) => void): Handle | undefined {
  const found = findSigningKey(mod, session, objectId);
  if (found === undefined) {
    assertLoggedIn(mod, session);
    return undefined;
  }
  try {
    return mod.C_CopyObject(session, found, [{ type: pkcs11js.CKA_TOKEN, value: false }]);
  } catch (e) {
    if (isSessionLost(e)) throw e;
    onNoCopy?.(ckrOf(e) ?? 0);
    return found;
  }
}
