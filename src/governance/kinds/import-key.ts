import { createHash } from "node:crypto";
import { envelopeOf, newKeyOf } from "./wire-input.js";
import { CustosError } from "../../errors.js";
import type { ImportEnvelope } from "../../hsm/envelope.js";
import { versionObjectId } from "../../keys/model.js";
import { ed25519PublicKeyOf, signedPassphraseFingerprint, type NewKeyMetadata } from "../proposal-input.js";
import { faultPoint } from "../fault.js";
import { checkEnvelope, unwrapOnce } from "./hsm-steps.js";
import { defineKind, openProposal, proposalRef } from "./kind.js";
import { checkNewKey, decodeNewKey, newKeyParams, recordNewKey, refuseExisting } from "./new-key.js";

/** An exchange secret (or, migrating, an Ed25519 private key) imported wrapped for the HSM's wrapping key. */
export interface ImportKeyInput {
  kind: "import_key";
  key: NewKeyMetadata;
  envelope: ImportEnvelope;
}

/** What officers approving a Deribit import must know: the key is useless until they attest its exchange-side scope. */
const DERIBIT_SCOPE_NOTE =
  "deribit: every signature is also a login, so this key signs nothing until a set_policy proposal attests that its Deribit scope " +
  "grants no withdrawal or transfer rights (exchangeScopeExcludesFunds): check the key's scope at Deribit first";

export const importKey = defineKind<ImportKeyInput, NewKeyMetadata>({
  kind: "import_key",
  wire: {
    case: "importKey",
    // "" (proto3's absent) stays absent, so the kind can tell "none" from a malformed value.
    decode: (i) => ({
      kind: "import_key",
      key: {
        ...newKeyOf(i),
        ...(i.publicKeyPem ? { publicKeyPem: i.publicKeyPem } : {}),
        ...(i.signedPassphrase ? { signedPassphrase: i.signedPassphrase } : {}),
      },
      envelope: envelopeOf(i.envelope),
    }),
  },
  targetsKey: true,
  content(input) {
    checkNewKey(input.key, true);
    return { target: input.key.keyId, params: newKeyParams(input.key), envelope: input.envelope };
  },
  decode: (raw) => decodeNewKey(raw, "import_key"),
  async preconditions(ctx, input) {
    checkEnvelope(ctx.hsm, input.envelope);
    await refuseExisting(ctx, input.key.keyId);
    if (await openProposal(ctx, "import_key", input.key.keyId))
      throw new CustosError("PRECONDITION_FAILED", `an import of ${input.key.keyId} is already proposed`);
  },
  newKeyExchange: (k) => k.exchange,
  async summarise(_ctx, c) {
    const k = c.params;
    return [
      `import key ${c.target} (${k.exchange} ${k.environment}, ${k.algorithm}, API key id ${JSON.stringify(k.apiKeyId)})`,
      `versions: none → v1 active`,
      `wrapped ${k.publicKeyPem ? "private key" : "secret"} sha256 ${c.materialSha256 ?? "?"}`,
      // A migrated Ed25519 key: the HSM checks the unwrapped key against this public key.
      ...(k.publicKeyPem !== undefined ? [`public key sha256 ${createHash("sha256").update(ed25519PublicKeyOf(k.publicKeyPem)).digest("hex")}`] : []),
      ...passphraseLine(k.signedPassphrase),
      ...(k.exchange === "deribit" ? [DERIBIT_SCOPE_NOTE] : []),
    ];
  },
  async execute(ctx, p, k, at) {
    await refuseExisting(ctx, k.keyId);
    const objectId = versionObjectId(k.keyId, 1);
    const publicKey = k.algorithm === "ed25519" ? ed25519PublicKeyOf(k.publicKeyPem) : undefined;
    const created = await unwrapOnce(ctx, p, objectId, `${k.exchange}/${k.keyId}/v1`, publicKey);
    faultPoint("import:after-hsm");
    return {
      record: (tx) => recordNewKey(tx, k, objectId, at, ctx.autoGrant),
      ...(created ? { created: objectId } : {}),
      afterRecord: "import:after-record",
    };
  },
  async completed(_ctx, p, c) {
    const k = c.params;
    const details = { ...proposalRef(p), exchange: k.exchange, environment: k.environment, algorithm: k.algorithm };
    return [{ kind: "key.import", actor: p.proposer, outcome: "ok", key: c.target, version: 1, details }];
  },
  betweenAuditRecords: "import:between-audit-records",
});

/**
 * KuCoin: that the passphrase is set, with a short fingerprint of the signed passphrase so an
 * officer can compare it with what their CLI computed — never the value, which a request header
 * would accept as is.
 */
export function passphraseLine(signed: string | undefined): string[] {
  if (signed === undefined) return [];
  return [`API passphrase: set (signed passphrase sha256 ${signedPassphraseFingerprint(signed)}…)`];
}
