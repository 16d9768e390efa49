import { sha256Hex } from "../../audit/sha256.js";
import { envelopeOf } from "./wire-input.js";
import { DEFAULT_GRACE_SECONDS } from "../proposal-input.js";
import { CustosError } from "../../errors.js";
import type { ImportEnvelope } from "../../hsm/envelope.js";
import { activeVersion, versionObjectId, type KeyVersionRecord } from "../../keys/model.js";
import { faultPoint } from "../fault.js";
import { KEY_ID, SIGNED_PASSPHRASE_EXCHANGE, checkSignedPassphrase } from "../proposal-input.js";
import { checkEnvelope, generateOnce, unwrapOnce } from "./hsm-steps.js";
import { passphraseLine } from "./import-key.js";
import { defineKind, existingKey, openProposal, proposalRef, versionList } from "./kind.js";
import { ParamReader } from "./params.js";

/**
 * A key's next version. An HMAC key's new secret comes wrapped; an Ed25519 key's new pair is
 * generated in the HSM (no envelope). A KuCoin Futures key's new secret comes with its
 * `signedPassphrase` (required there).
 */
export interface RotateKeyInput {
  kind: "rotate_key";
  keyId: string;
  apiKeyId: string;
  graceSeconds: number;
  envelope?: ImportEnvelope;
  signedPassphrase?: string;
}

interface RotateParams {
  apiKeyId: string;
  graceSeconds: number;
  signedPassphrase?: string;
}

const MAX_GRACE_SECONDS = 30 * 24 * 3600;
const invalid = (message: string) => new CustosError("INVALID_ARGUMENT", message);

export const rotateKey = defineKind<RotateKeyInput, RotateParams>({
  kind: "rotate_key",
  wire: {
    case: "rotateKey",
    decode: (i) => ({
      kind: "rotate_key",
      keyId: i.keyId,
      apiKeyId: i.apiKeyId,
      graceSeconds: i.graceSeconds || DEFAULT_GRACE_SECONDS,
      ...(i.envelope ? { envelope: envelopeOf(i.envelope) } : {}),
      ...(i.signedPassphrase ? { signedPassphrase: i.signedPassphrase } : {}),
    }),
  },
  targetsKey: true,
  content(input) {
    if (!KEY_ID.test(input.keyId)) throw invalid("invalid key id");
    if (input.apiKeyId.length > 256) throw invalid("api key id is too long");
    if (!Number.isInteger(input.graceSeconds) || input.graceSeconds < 0 || input.graceSeconds > MAX_GRACE_SECONDS) throw invalid("grace must be 0–30 days");
    // Whether the key needs one is known from its exchange (preconditions); here only the shape.
    if (input.signedPassphrase !== undefined) checkSignedPassphrase(input.signedPassphrase);
    const params = {
      apiKeyId: input.apiKeyId,
      graceSeconds: input.graceSeconds,
      ...(input.signedPassphrase !== undefined ? { signedPassphrase: input.signedPassphrase } : {}),
    };
    return { target: input.keyId, params, ...(input.envelope ? { envelope: input.envelope } : {}) };
  },
  decode(raw) {
    const r = new ParamReader(raw, "rotate_key");
    const signedPassphrase = r.optionalString("signedPassphrase");
    return { apiKeyId: r.string("apiKeyId"), graceSeconds: r.integer("graceSeconds"), ...(signedPassphrase !== undefined ? { signedPassphrase } : {}) };
  },
  async preconditions(ctx, input) {
    const key = await existingKey(ctx, input.keyId);
    if (key.algorithm === "ed25519") {
      // The new pair is generated at execution; the exchange assigns its API key id only after
      // the officers register the new public key (set_api_key_id then activates it).
      if (input.envelope) throw invalid("an Ed25519 key's new version is generated in the HSM: send no envelope");
      if (input.apiKeyId) throw invalid("the new Ed25519 version's API key id is set after its public key is registered (set_api_key_id)");
      if (key.versions.some((v) => v.state === "pending")) {
        throw new CustosError("PRECONDITION_FAILED", `key ${input.keyId} already has a pending version: register it (set_api_key_id) or destroy it`);
      }
    } else {
      if (!input.envelope) throw invalid("envelope is required");
      checkEnvelope(ctx.hsm, input.envelope);
    }
    // KuCoin's passphrase header is the HMAC of the passphrase under the secret: a new secret needs a new one.
    if (key.exchange === SIGNED_PASSPHRASE_EXCHANGE) checkSignedPassphrase(input.signedPassphrase);
    else if (input.signedPassphrase !== undefined) throw invalid(`only a ${SIGNED_PASSPHRASE_EXCHANGE} key carries a signed passphrase`);
    if (await openProposal(ctx, "rotate_key", input.keyId)) throw new CustosError("PRECONDITION_FAILED", `a rotation of ${input.keyId} is already in flight`);
  },
  async summarise(_ctx, c, key) {
    const { graceSeconds, apiKeyId, signedPassphrase } = c.params;
    const next = key ? Math.max(...key.versions.map((v) => v.version)) + 1 : 1;
    const active = key && activeVersion(key);
    if (key?.algorithm === "ed25519") {
      return [
        `rotate key ${c.target}: a new Ed25519 pair v${next} is generated inside the HSM, pending until its API key id is set (set_api_key_id); ` +
          `then v${active ? active.version : "?"} retires for ${graceSeconds} s`,
        `versions: ${versionList(key)} → v${next} pending`,
      ];
    }
    return [
      `rotate key ${c.target}: v${next} becomes active${active ? `, v${active.version} retiring for ${graceSeconds} s then destroyed` : ""}`,
      `versions: ${versionList(key)} → v${next} active${active ? `, v${active.version} retiring` : ""}`,
      `API key id: ${JSON.stringify(key?.apiKeyId ?? "")} → ${JSON.stringify(apiKeyId || key?.apiKeyId || "")}`,
      `wrapped secret sha256 ${c.materialSha256 ?? "?"}`,
      ...passphraseLine(signedPassphrase),
    ];
  },
  async execute(ctx, p, params, at) {
    const key = await existingKey(ctx, p.target);
    // Not recorded yet (recording marks the proposal executed in the same transaction), so the
    // new version is the next number; an interrupted run's HSM object is adopted.
    const version = Math.max(...key.versions.map((v) => v.version)) + 1;
    const objectId = versionObjectId(key.id, version);
    const label = `${key.exchange}/${key.id}/v${version}`;
    if (key.algorithm === "ed25519") {
      // The new pair waits, pending, for the exchange's API key id (set_api_key_id).
      const created = await generateOnce(ctx, p, key.id, objectId, label);
      faultPoint("rotate:after-hsm");
      const pending: KeyVersionRecord = {
        keyId: key.id,
        version,
        objectId,
        state: "pending",
        createdAt: at,
        activatedAt: null,
        apiKeyId: null,
        retireAt: null,
      };
      return { record: (tx) => tx.keys.addPendingVersion(pending), ...(created ? { created: objectId } : {}), afterRecord: "rotate:after-record" };
    }
    const created = await unwrapOnce(ctx, p, objectId, label);
    faultPoint("rotate:after-hsm");
    const retireAt = new Date(Date.parse(at) + params.graceSeconds * 1000).toISOString();
    // KuCoin: the new secret's passphrase HMAC, as approved (the clear header value, not a secret).
    const next: KeyVersionRecord = {
      keyId: key.id,
      version,
      objectId,
      state: "active",
      createdAt: at,
      activatedAt: at,
      apiKeyId: params.apiKeyId || null,
      retireAt: null,
      signedPassphrase: params.signedPassphrase ?? null,
    };
    return { record: (tx) => tx.keys.rotateKey(key.id, next, retireAt), ...(created ? { created: objectId } : {}), afterRecord: "rotate:after-record" };
  },
  async completed(ctx, p, c) {
    const base = { kind: "key.rotate", actor: p.proposer, outcome: "ok" as const, key: c.target };
    const key = await ctx.store.keys.getKey(c.target);
    const pending = key?.algorithm === "ed25519" ? key.versions.filter((v) => v.state === "pending").at(-1) : undefined;
    if (pending) {
      // An Ed25519 rotation: the new pair waits for the exchange's API key id (set_api_key_id).
      const publicKey = await ctx.hsm.publicKey(pending.objectId);
      return [
        {
          ...base,
          version: pending.version,
          details: { ...proposalRef(p), state: "pending", ...(publicKey ? { publicKeySha256: sha256Hex(publicKey) } : {}) },
        },
      ];
    }
    const active = key && activeVersion(key);
    const retiring = key?.versions.filter((v) => v.state === "retiring").at(-1);
    return [
      {
        ...base,
        ...(active ? { version: active.version } : {}),
        details: { ...proposalRef(p), ...(retiring?.retireAt ? { retiringUntil: retiring.retireAt } : {}) },
      },
    ];
  },
});
