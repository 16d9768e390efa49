import { defineHsmContract } from "../helpers/hsm-contract.js";
import { FakeHsm } from "./fake-hsm.js";

/** FakeHsm passes the Hsm contract that Pkcs11Hsm passes on SoftHSM2 (test/integration/hsm-contract-pkcs11.test.ts). */
defineHsmContract("FakeHsm", async () => {
  const hsm = new FakeHsm("sha1");
  return {
    hsm,
    probe: {
      // What the fake models: every object sealed as the real token's templates make it.
      objectsWithId: async (objectId) =>
        hsm.objectsWithId(objectId).map((o) => ({
          ...o,
          usage: [o.usage],
          ...(o.class === "public" ? {} : { valueReadable: !o.sensitive, wrapsOut: o.extractable === true }),
        })),
      objectCount: async () => hsm.objectCount(),
    },
    close: () => hsm.close(),
  };
});
