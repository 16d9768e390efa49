import pkcs11js from "pkcs11js";
import { CustosError } from "../../errors.js";
import { CKR_CRYPTOKI_ALREADY_INITIALIZED, ckrOf, toCustosError } from "./ckr.js";

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
