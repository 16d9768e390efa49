import type { AuditLog } from "../audit/audit-log.js";
import { CustosError } from "../errors.js";
import type { KeyCustody } from "../hsm/hsm.js";
import type { KeyVersionRecord } from "../keys/model.js";
import type { StoreSlice } from "../store/store.js";
import { faultPoint } from "./fault.js";

/**
 * The HSM half of destroying a key version: `destroying` (persisted) → C_DestroyObject, each
 * step safe to repeat after a crash. The caller records `destroyed`: the destroy_version kind in
 * its proposal's transaction, `retireVersion` on its own. `refuseActive`: an officer's destroy
 * never takes the active version.
 */
export async function destroyVersionObject(
  deps: { store: StoreSlice<"keys">; hsm: KeyCustody },
  keyId: string,
  version: number,
  refuseActive: boolean,
): Promise<KeyVersionRecord> {
  const key = await deps.store.keys.getKey(keyId);
  const v = key?.versions.find((x) => x.version === version);
  if (!key || !v) throw new CustosError("VERSION_NOT_FOUND", `key ${keyId} has no version ${version}`);
  if (v.state === "active" && refuseActive) throw new CustosError("PRECONDITION_FAILED", `version ${version} is the active version: rotate first`);
  if (v.state !== "destroying" && v.state !== "destroyed") {
    await deps.store.keys.updateVersionState(keyId, version, "destroying");
    faultPoint("destroy:after-mark");
  }
  await deps.hsm.destroySecret(v.objectId);
  faultPoint("destroy:after-hsm");
  return v;
}

/** A version whose grace period ended (or left `destroying` by a crash) is destroyed, on custos's own authority. */
export async function retireVersion(deps: { store: StoreSlice<"keys">; hsm: KeyCustody; audit: AuditLog }, keyId: string, version: number): Promise<void> {
  const v = await destroyVersionObject(deps, keyId, version, false);
  await deps.store.keys.updateVersionState(keyId, version, "destroyed");
  await deps.audit.recordNow({
    kind: "key.destroy_version",
    actor: "system",
    outcome: "ok",
    key: keyId,
    version,
    details: { objectId: v.objectId, reason: "grace period ended" },
  });
}
