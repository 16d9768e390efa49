import { createHash } from "node:crypto";
import { isRawOnly } from "../exchanges/registry.js";
import { activeVersion, type KeyWithVersions } from "../keys/model.js";
import type { Store } from "../store/store.js";
import type { ProposalRecord } from "./model.js";
import { publicKeyFingerprint } from "./officer-key.js";
import type { ProposalContent } from "./proposal.js";
import { ed25519PublicKeyOf, signedPassphraseFingerprint } from "./proposal-input.js";

/** What officers approving a Deribit import must know: the key is useless until they attest its exchange-side scope. */
const DERIBIT_SCOPE_NOTE =
  "deribit: every signature is also a login, so this key signs nothing until a set_policy proposal attests that its Deribit scope " +
  "grants no withdrawal or transfer rights (exchangeScopeExcludesFunds): check the key's scope at Deribit first";

/** What officers approving anything about a raw-only key must know: nothing checks what it signs. */
const rawOnlyNote = (exchange: string) =>
  `RAW-ONLY key (exchange ${JSON.stringify(exchange)}, no dialect): Sign signs any bytes with it, withdrawals included; no request policy applies`;

/** Proposal kinds whose target is a key id. */
export const KEY_KINDS: ReadonlySet<string> = new Set(["import_key", "generate_key", "rotate_key", "destroy_version", "set_policy", "set_api_key_id"]);

/**
 * What a proposal changes, before → after, in words an officer checks before signing. The
 * "after" comes from the signed content; the "before" is the store's current state.
 */
export async function summarise(store: Store, p: ProposalRecord): Promise<string[]> {
  const c = JSON.parse(p.canonical) as ProposalContent;
  const key = KEY_KINDS.has(c.kind) ? await store.keys.getKey(c.target) : undefined;
  const lines = await describe(store, c, key);
  // A new key's exchange is in the signed content; an existing key's, in the store.
  const exchange = c.kind === "import_key" || c.kind === "generate_key" ? String((c.params as Record<string, unknown>).exchange) : key?.exchange;
  return exchange !== undefined && isRawOnly(exchange) ? [...lines, rawOnlyNote(exchange)] : lines;
}

async function describe(store: Store, c: ProposalContent, key: KeyWithVersions | undefined): Promise<string[]> {
  const params = c.params as Record<string, unknown>;
  const versions = (k: KeyWithVersions | undefined) => (k ? k.versions.map((v) => `v${v.version} ${v.state}`).join(", ") : "none");
  switch (c.kind) {
    case "generate_key":
      return [`generate key ${c.target} inside the HSM (${String(params.exchange)} ${String(params.environment)}, ${String(params.algorithm)}); only its public key leaves the HSM`, `versions: none → v1 active`];
    case "import_key":
      return [
        `import key ${c.target} (${String(params.exchange)} ${String(params.environment)}, ${String(params.algorithm)}, API key id ${JSON.stringify(params.apiKeyId)})`,
        `versions: none → v1 active`,
        `wrapped ${params.publicKeyPem ? "private key" : "secret"} sha256 ${c.materialSha256 ?? "?"}`,
        // A migrated Ed25519 key: the HSM checks the unwrapped key against this public key.
        ...(typeof params.publicKeyPem === "string" ? [`public key sha256 ${createHash("sha256").update(ed25519PublicKeyOf(params.publicKeyPem)).digest("hex")}`] : []),
        ...passphraseLine(params.signedPassphrase),
        ...(params.exchange === "deribit" ? [DERIBIT_SCOPE_NOTE] : []),
      ];
    case "rotate_key": {
      const next = key ? Math.max(...key.versions.map((v) => v.version)) + 1 : 1;
      const active = key && activeVersion(key);
      if (key?.algorithm === "ed25519") {
        return [
          `rotate key ${c.target}: a new Ed25519 pair v${next} is generated inside the HSM, pending until its API key id is set (set_api_key_id); then v${active ? active.version : "?"} retires for ${String(params.graceSeconds)} s`,
          `versions: ${versions(key)} → v${next} pending`,
        ];
      }
      return [
        `rotate key ${c.target}: v${next} becomes active${active ? `, v${active.version} retiring for ${String(params.graceSeconds)} s then destroyed` : ""}`,
        `versions: ${versions(key)} → v${next} active${active ? `, v${active.version} retiring` : ""}`,
        `API key id: ${JSON.stringify(key?.apiKeyId ?? "")} → ${JSON.stringify(params.apiKeyId || key?.apiKeyId || "")}`,
        `wrapped secret sha256 ${c.materialSha256 ?? "?"}`,
        ...passphraseLine(params.signedPassphrase),
      ];
    }
    case "set_api_key_id": {
      const active = key && activeVersion(key);
      const pending = key?.versions.find((v) => v.state === "pending");
      if (pending) {
        return [
          `activate key ${c.target} v${pending.version} with API key id ${JSON.stringify(params.apiKeyId)}${active ? `; v${active.version} retires after the rotation's grace period` : ""}`,
          `versions: ${versions(key)} → v${pending.version} active${active ? `, v${active.version} retiring` : ""}`,
        ];
      }
      return [`API key id of ${c.target}${active ? ` v${active.version}` : ""}: ${JSON.stringify(active?.apiKeyId || key?.apiKeyId || "")} → ${JSON.stringify(params.apiKeyId)}`];
    }
    case "destroy_version":
      return [`destroy key ${c.target} version ${String(params.version)} (its HSM object is deleted; pinned signs fail)`, `versions: ${versions(key)}`];
    case "set_grants": {
      const existing = await store.clients.getClient(c.target);
      const before = (await store.clients.listGrants()).get(c.target);
      return [
        `client ${c.target}${existing ? "" : " (new)"}`,
        `grants: [${[...(before ?? [])].sort().join(", ")}] → [${(params.keyIds as string[]).join(", ")}]`,
        `CIDRs: [${(existing?.cidrs ?? []).join(", ")}] → [${(params.cidrs as string[]).join(", ")}]`,
        `may freeze: ${String(existing?.canFreeze ?? false)} → ${String(params.canFreeze)}`,
      ];
    }
    case "set_policy":
      return [`policy of key ${c.target}: ${(await store.keys.getPolicy(c.target)) ?? "none"} → ${JSON.stringify(params.policy)}`];
    case "add_officer":
      return [`add officer ${c.target} (${String(params.displayName)}, certificate ${String(params.identity)}, key ${publicKeyFingerprint(String(params.publicKeyPem))})`];
    case "remove_officer":
      return [`remove officer ${c.target} (their pending approvals stop counting)`];
    case "set_threshold":
      return [`threshold: ${String((await store.governance.getGovernance())?.threshold)} → ${String(params.threshold)}`];
    case "thaw":
      return [`thaw ${c.target.replace(":", " ")}: frozen → active`];
    case "add_credential": {
      const officer = (await store.governance.listOfficers()).find((o) => o.id === c.target);
      const before = (await store.governance.listPasskeys(c.target)).length;
      const keySha = createHash("sha256").update(String(params.publicKey)).digest("hex").slice(0, 16);
      return [
        `add a passkey ${JSON.stringify(params.label)} for officer ${c.target}${officer ? ` (${officer.displayName})` : " (unknown officer)"}: it can then log in to the console and approve proposals`,
        `credential id ${String(params.credentialId)}, authenticator ${String(params.aaguid)}, public key sha256 ${keySha}…`,
        `${c.target}'s credentials: Ed25519 key ${officer?.fingerprint ?? "?"}, ${before} passkey(s) → ${before + 1} passkey(s)`,
      ];
    }
    case "remove_credential": {
      const passkeys = await store.governance.listPasskeys(c.target);
      const gone = passkeys.find((k) => k.id === params.credentialId);
      return [
        `remove passkey ${gone ? JSON.stringify(gone.label) : "(not registered)"} of officer ${c.target} (credential id ${String(params.credentialId)}): it can no longer log in or approve`,
        `${c.target}'s passkeys: ${passkeys.length} → ${gone ? passkeys.length - 1 : passkeys.length}`,
      ];
    }
    default:
      return [`${c.kind} ${c.target}`];
  }
}

/**
 * KuCoin: that the passphrase is set, with a short fingerprint of the signed passphrase so an
 * officer can compare it with what their CLI computed — never the value, which a request header
 * would accept as is.
 */
function passphraseLine(signed: unknown): string[] {
  if (typeof signed !== "string") return [];
  return [`API passphrase: set (signed passphrase sha256 ${signedPassphraseFingerprint(signed)}…)`];
}
