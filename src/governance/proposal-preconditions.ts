import { CustosError } from "../errors.js";
import { ENVELOPE_FORMAT, type ImportEnvelope } from "../hsm/envelope.js";
import type { Hsm } from "../hsm/hsm.js";
import type { Store } from "../store/store.js";
import type { OfficerRecord } from "./model.js";
import { parseOfficerPublicKey } from "./officer-key.js";
import type { ProposalContent } from "./proposal.js";
import { SIGNED_PASSPHRASE_EXCHANGE, checkSignedPassphrase, type ProposalInput } from "./proposal-input.js";
import { checkRemovable } from "./execution.js";
import { validateRules } from "./quorum.js";

/** What the precondition checks read from the governance itself (its in-memory officer set). */
export interface GovernanceState {
  readonly initialised: boolean;
  activeOfficer(id: string): OfficerRecord | undefined;
}

/**
 * What must hold before a proposal is created, against the current state: the key exists
 * (or does not), no same proposal is already open, the envelope was made for this HSM, the
 * officer set can still reach its threshold. A proposal that fails one is refused at
 * Propose, so officers never vote on what cannot run.
 */
export class ProposalPreconditions {
  constructor(
    private readonly store: Store,
    private readonly hsm: Hsm,
    private readonly opts: { proposerCounts: boolean; veto: boolean },
    private readonly governance: GovernanceState,
  ) {}

  /** Throws the typed error of the first precondition `input` fails. */
  async check(input: ProposalInput): Promise<void> {
    if (!this.governance.initialised) throw new CustosError("GOVERNANCE_NOT_INITIALISED", "governance is not initialised: run `custos governance init` first");
    const open = async (kind: string, target: string) =>
      [...(await this.store.governance.listProposals("pending")), ...(await this.store.governance.listProposals("executing"))].some((p) => p.kind === kind && p.target === target && Date.parse(p.expiresAt) > Date.now());
    switch (input.kind) {
      case "generate_key":
        if (await this.store.keys.getKey(input.key.keyId)) throw new CustosError("KEY_EXISTS", `key ${input.key.keyId} already exists`);
        if ((await open("import_key", input.key.keyId)) || (await open("generate_key", input.key.keyId))) throw new CustosError("PRECONDITION_FAILED", `a key ${input.key.keyId} is already proposed`);
        return;
      case "import_key":
        this.checkEnvelope(input.envelope);
        if (await this.store.keys.getKey(input.key.keyId)) throw new CustosError("KEY_EXISTS", `key ${input.key.keyId} already exists`);
        if (await open("import_key", input.key.keyId)) throw new CustosError("PRECONDITION_FAILED", `an import of ${input.key.keyId} is already proposed`);
        return;
      case "rotate_key": {
        const key = await this.store.keys.getKey(input.keyId);
        if (!key) throw new CustosError("KEY_NOT_FOUND", `no key ${input.keyId}`);
        if (key.algorithm === "ed25519") {
          // The new pair is generated at execution; the exchange assigns its API key id only after
          // the officers register the new public key (set_api_key_id then activates it).
          if (input.envelope) throw new CustosError("INVALID_ARGUMENT", "an Ed25519 key's new version is generated in the HSM: send no envelope");
          if (input.apiKeyId) throw new CustosError("INVALID_ARGUMENT", "the new Ed25519 version's API key id is set after its public key is registered (set_api_key_id)");
          if (key.versions.some((v) => v.state === "pending")) throw new CustosError("PRECONDITION_FAILED", `key ${input.keyId} already has a pending version: register it (set_api_key_id) or destroy it`);
        } else {
          if (!input.envelope) throw new CustosError("INVALID_ARGUMENT", "envelope is required");
          this.checkEnvelope(input.envelope);
        }
        // KuCoin's passphrase header is the HMAC of the passphrase under the secret: a new secret needs a new one.
        if (key.exchange === SIGNED_PASSPHRASE_EXCHANGE) checkSignedPassphrase(input.signedPassphrase);
        else if (input.signedPassphrase !== undefined) throw new CustosError("INVALID_ARGUMENT", `only a ${SIGNED_PASSPHRASE_EXCHANGE} key carries a signed passphrase`);
        if (await open("rotate_key", input.keyId)) throw new CustosError("PRECONDITION_FAILED", `a rotation of ${input.keyId} is already in flight`);
        return;
      }
      case "destroy_version": {
        const key = await this.store.keys.getKey(input.keyId);
        const v = key?.versions.find((x) => x.version === input.version);
        if (!v) throw new CustosError("VERSION_NOT_FOUND", `key ${input.keyId} has no version ${input.version}`);
        if (v.state === "active") throw new CustosError("PRECONDITION_FAILED", `version ${input.version} is the active version: rotate first`);
        if (v.state === "destroyed" || v.state === "destroying") throw new CustosError("PRECONDITION_FAILED", `version ${input.version} is already ${v.state}`);
        return;
      }
      case "set_grants":
        for (const k of input.keyIds) if (!(await this.store.keys.getKey(k))) throw new CustosError("KEY_NOT_FOUND", `no key ${k}`);
        return;
      case "set_policy":
      case "set_api_key_id":
        if (!(await this.store.keys.getKey(input.keyId))) throw new CustosError("KEY_NOT_FOUND", `no key ${input.keyId}`);
        return;
      case "add_officer":
        parseOfficerPublicKey(input.officer.publicKeyPem);
        if ((await this.store.governance.listOfficers()).some((o) => o.id === input.officer.id || o.identity === input.officer.identity)) {
          throw new CustosError("PRECONDITION_FAILED", `officer ${input.officer.id} (or identity ${input.officer.identity}) exists`);
        }
        return;
      case "remove_officer": {
        const active = (await this.store.governance.listOfficers()).filter((o) => o.status === "active");
        if (!active.some((o) => o.id === input.officerId)) throw new CustosError("PRECONDITION_FAILED", `no active officer ${input.officerId}`);
        checkRemovable(this.opts, active.length, (await this.store.governance.getGovernance())!.threshold, input.officerId);
        return;
      }
      case "set_threshold":
        validateRules({ threshold: input.threshold, proposerCounts: this.opts.proposerCounts, veto: this.opts.veto }, (await this.store.governance.listOfficers()).filter((o) => o.status === "active").length);
        return;
      case "remove_credential": {
        const passkey = await this.store.governance.getPasskey(input.credentialId);
        if (!passkey || passkey.officerId !== input.officerId) throw new CustosError("PRECONDITION_FAILED", `officer ${input.officerId} has no such passkey`);
        return;
      }
      case "add_credential": {
        if (!this.governance.activeOfficer(input.officerId)) throw new CustosError("PRECONDITION_FAILED", `no active officer ${input.officerId}`);
        if (await this.store.governance.getPasskey(input.passkey.id)) throw new CustosError("PRECONDITION_FAILED", "this passkey is already registered");
        const pending = [...(await this.store.governance.listProposals("pending")), ...(await this.store.governance.listProposals("executing"))];
        if (pending.some((p) => p.kind === "add_credential" && (JSON.parse(p.canonical) as ProposalContent).params.credentialId === input.passkey.id)) {
          throw new CustosError("PRECONDITION_FAILED", "this passkey is already proposed");
        }
        return;
      }
      case "thaw":
        if (input.target === "key" ? !(await this.store.keys.getKey(input.id))?.frozenAt : !(await this.store.clients.getClient(input.id))?.frozenAt) {
          throw new CustosError("PRECONDITION_FAILED", `${input.target} ${input.id} is not frozen`);
        }
        return;
    }
  }

  /**
   * What can be checked without opening the envelope: its format, and that it was made for
   * this HSM's wrapping key and OAEP hash. (Whether it opens is known only when it executes.)
   */
  private checkEnvelope(e: ImportEnvelope): void {
    const w = this.hsm.wrappingKey();
    if (e.format !== ENVELOPE_FORMAT) throw new CustosError("ENVELOPE_INVALID", `unknown envelope format ${e.format}`);
    if (e.wrappingKeyFingerprint !== w.fingerprint) throw new CustosError("ENVELOPE_INVALID", "envelope was made for another wrapping key");
    if (e.oaepHash !== w.oaepHash) throw new CustosError("ENVELOPE_INVALID", `this HSM unwraps OAEP with ${w.oaepHash}, not ${e.oaepHash}`);
  }
}
