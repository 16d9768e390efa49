import { existsSync } from "node:fs";
import { join } from "node:path";
import { REPO } from "./harness.js";

/**
 * SoftHSM2 2.6.1 built with hsm/softhsm2-eddsa/eddsa-unwrap.patch (`bash hsm/bootstrap.sh test`
 * builds it): the same module as Debian's, plus C_UnwrapKey of Ed25519 PKCS#8 keys.
 */
export function eddsaUnwrapModule(): string {
  const lib = join(REPO, ".cache/softhsm2-eddsa/libsofthsm2.so");
  if (!existsSync(lib)) throw new Error(`${lib} is missing: run bash hsm/softhsm2-eddsa/build.sh (bash hsm/bootstrap.sh test does)`);
  return lib;
}
