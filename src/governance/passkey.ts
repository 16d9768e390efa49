import { createHash, randomBytes } from "node:crypto";
import {
  generateAuthenticationOptions,
  generateRegistrationOptions,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
  type AuthenticationResponseJSON,
  type PublicKeyCredentialCreationOptionsJSON,
  type PublicKeyCredentialRequestOptionsJSON,
  type RegistrationResponseJSON,
} from "@simplewebauthn/server";
import { isoBase64URL } from "@simplewebauthn/server/helpers";
import { CustosError } from "../errors.js";
import type { StoreSlice } from "../store/store.js";
import type { OfficerRecord, PasskeyRecord } from "./model.js";
import { approvalMessage, type Decision } from "./proposal.js";
import type { PasskeySpec } from "./proposal-input.js";

/** A WebAuthn assertion as `@simplewebauthn/browser`'s startAuthentication() returns it. */
export type PasskeyAssertion = AuthenticationResponseJSON;
/** A WebAuthn attestation as `@simplewebauthn/browser`'s startRegistration() returns it. */
export type PasskeyAttestation = RegistrationResponseJSON;

/** Format tag of the evidence stored with a passkey vote. */
export const PASSKEY_EVIDENCE_FORMAT = "custos.passkey-approval.v1";

/** Where passkeys are valid: the relying party (console host) and the origins it serves. */
export interface PasskeySettings {
  /** WebAuthn RP ID: the console's host name, e.g. "localhost" or "custos.example.com". */
  rpId: string;
  rpName: string;
  /** Exact origins a ceremony may come from, e.g. ["https://localhost:7402"] (a function: known once listening). */
  origins: readonly string[] | (() => readonly string[]);
  /** How long a challenge or approval nonce stays usable (default 5 minutes). */
  challengeTtlMs?: number;
  /** Clock, for tests; default Date.now. */
  now?: () => number;
  /** Outstanding login challenges in all and per source (default DEFAULT_CHALLENGE_CAPS). */
  loginCaps?: ChallengeCaps;
}

/** What GovernanceService needs to count a console vote. */
export interface PasskeyApprovals {
  verifyApproval(request: ApprovalAssertion): Promise<{ credentialId: string; evidence: string }>;
}

export interface ApprovalAssertion {
  officerId: string;
  proposalId: string;
  /** The proposal's digest as stored now (not as the browser claims it). */
  digest: string;
  decision: Decision;
  nonce: string;
  response: PasskeyAssertion;
}

/**
 * The WebAuthn challenge of a console vote: SHA-256 of the Ed25519 approval message
 * (`custos.approval.v1\n<decision>\n<digest>`), a newline and the single-use server nonce,
 * base64url. The authenticator signs it inside clientDataJSON, so an assertion approves
 * exactly one decision on one digest, once; anyone holding the vote's evidence can recompute it.
 */
export function approvalChallenge(decision: Decision, digest: string, nonce: string): string {
  const h = createHash("sha256").update(approvalMessage(decision, digest)).update("\n").update(nonce, "utf8").digest();
  return isoBase64URL.fromBuffer(h);
}

/**
 * Who asked for an anonymous challenge, as opaque tags the console derives: the source
 * network (an IPv4 address, an IPv6 /64) and the browser (its pre-login cookie). A challenge
 * is redeemed only by the same browser from the same source, and each source holds a bounded
 * number, so one outsider cannot use up the pool officers log in from.
 */
export interface ChallengeOwner {
  source: string;
  browser: string;
}

/** Outstanding challenges of one kind, in all (officers' pools) and per source (anonymous logins). */
export interface ChallengeCaps {
  total: number;
  perSource: number;
}

export const DEFAULT_CHALLENGE_CAPS: ChallengeCaps = { total: 10_000, perSource: 20 };

/**
 * Single-use values with a lifetime, in the store (a ceremony's two requests may reach two
 * replicas, or straddle a restart): taking one removes it, expired ones read as absent.
 * `kind` keeps login, registration and approval values apart, each kind its own pool.
 */
export class ChallengeBook<T> {
  constructor(
    private readonly store: StoreSlice<"console">,
    private readonly kind: string,
    private readonly ttlMs: number,
    private readonly now: () => number,
    private readonly caps: ChallengeCaps = DEFAULT_CHALLENGE_CAPS,
  ) {}

  private keyOf(key: string, owner: ChallengeOwner | undefined): string {
    return owner ? `${this.kind}:${owner.source}:${owner.browser}:${key}` : `${this.kind}:${key}`;
  }

  async put(key: string, value: T, owner?: ChallengeOwner): Promise<void> {
    const now = this.now();
    // Unauthenticated callers can ask for login challenges: bound what they can make the store hold.
    const limits = [{ prefix: `${this.kind}:`, max: this.caps.total }];
    if (owner) limits.push({ prefix: `${this.kind}:${owner.source}:`, max: this.caps.perSource });
    const expiresAt = new Date(now + this.ttlMs).toISOString();
    const stored = await this.store.console.putChallenge(this.keyOf(key, owner), JSON.stringify(value), expiresAt, limits, new Date(now).toISOString());
    if (!stored) throw new CustosError("RATE_LIMITED", "too many outstanding challenges; try again shortly");
  }

  async take(key: string, owner?: ChallengeOwner): Promise<T | undefined> {
    if (!key) return undefined;
    const value = await this.store.console.takeChallenge(this.keyOf(key, owner), new Date(this.now()).toISOString());
    return value === undefined ? undefined : (JSON.parse(value) as T);
  }
}

/** The challenge the browser says it signed (verification still compares it exactly). */
function signedChallenge(clientDataJSON: string): string {
  try {
    const c = JSON.parse(isoBase64URL.toUTF8String(clientDataJSON)) as { challenge?: unknown };
    return typeof c.challenge === "string" ? c.challenge : "";
  } catch {
    return "";
  }
}

/**
 * Passkey ceremonies for officers, on `@simplewebauthn/server`: registration (its result is
 * filed as an add_credential proposal, never stored directly), login, and approval of a
 * proposal. User verification is required in every ceremony; signature counters must advance.
 * Challenges and approval nonces are kept in the store until used or expired.
 */
export class Passkeys implements PasskeyApprovals {
  private readonly now: () => number;
  private readonly registrations: ChallengeBook<string>; // challenge → officer id
  private readonly logins: ChallengeBook<true>; // challenge
  private readonly approvals: ChallengeBook<{ officerId: string; proposalId: string; decision: Decision }>; // nonce → binding

  constructor(
    private readonly store: StoreSlice<"governance" | "console">,
    private readonly settings: PasskeySettings,
  ) {
    this.now = settings.now ?? Date.now;
    const ttl = settings.challengeTtlMs ?? 5 * 60_000;
    this.registrations = new ChallengeBook(store, "register", ttl, this.now);
    this.logins = new ChallengeBook(store, "login", ttl, this.now, settings.loginCaps);
    this.approvals = new ChallengeBook(store, "approve", ttl, this.now);
  }

  private origins(): string[] {
    const o = this.settings.origins;
    return [...(typeof o === "function" ? o() : o)];
  }

  /** An officer's registered (quorum-approved) passkeys; every officer's without an id. */
  list(officerId?: string): Promise<PasskeyRecord[]> {
    return this.store.governance.listPasskeys(officerId);
  }

  /** Options for navigator.credentials.create(): a discoverable credential, user verification required. */
  async registrationOptions(officer: OfficerRecord): Promise<PublicKeyCredentialCreationOptionsJSON> {
    const existing = await this.store.governance.listPasskeys(officer.id);
    const options = await generateRegistrationOptions({
      rpName: this.settings.rpName,
      rpID: this.settings.rpId,
      userName: officer.id,
      userID: new TextEncoder().encode(officer.id),
      userDisplayName: officer.displayName,
      attestationType: "none",
      excludeCredentials: existing.map((k) => ({ id: k.id, transports: k.transports })),
      authenticatorSelection: { residentKey: "required", userVerification: "required" },
    });
    await this.registrations.put(options.challenge, officer.id);
    return options;
  }

  /** Verifies the authenticator's attestation; the result goes into an add_credential proposal. */
  async verifyRegistration(officer: OfficerRecord, response: PasskeyAttestation, label: string): Promise<PasskeySpec> {
    const challenge = signedChallenge(response?.response?.clientDataJSON ?? "");
    if ((await this.registrations.take(challenge)) !== officer.id)
      throw new CustosError("NONCE_INVALID", "unknown, expired or already used registration challenge");
    let verified: Awaited<ReturnType<typeof verifyRegistrationResponse>>;
    try {
      verified = await verifyRegistrationResponse({
        response,
        expectedChallenge: challenge,
        expectedOrigin: this.origins(),
        expectedRPID: this.settings.rpId,
        requireUserVerification: true,
      });
    } catch (e) {
      throw new CustosError("PASSKEY_INVALID", `passkey registration does not verify: ${e instanceof Error ? e.message : "invalid response"}`);
    }
    if (!verified.verified) throw new CustosError("PASSKEY_INVALID", "passkey registration does not verify");
    const { credential, aaguid } = verified.registrationInfo;
    if (await this.store.governance.getPasskey(credential.id)) throw new CustosError("PRECONDITION_FAILED", "this passkey is already registered");
    return {
      id: credential.id,
      publicKey: isoBase64URL.fromBuffer(credential.publicKey),
      counter: credential.counter,
      transports: [...(credential.transports ?? [])],
      aaguid,
      label: label.trim().slice(0, 64) || "passkey",
    };
  }

  /** Options for a login: any registered (discoverable) passkey of this RP; the challenge is `owner`'s alone. */
  async loginOptions(owner: ChallengeOwner): Promise<PublicKeyCredentialRequestOptionsJSON> {
    const options = await generateAuthenticationOptions({ rpID: this.settings.rpId, userVerification: "required" });
    await this.logins.put(options.challenge, true, owner);
    return options;
  }

  /** Verifies a login assertion over a challenge issued to `owner`; returns the officer the passkey belongs to. */
  async verifyLogin(response: PasskeyAssertion, owner: ChallengeOwner): Promise<{ officerId: string; credentialId: string }> {
    const challenge = signedChallenge(response?.response?.clientDataJSON ?? "");
    if (!(await this.logins.take(challenge, owner))) throw new CustosError("NONCE_INVALID", "unknown, expired or already used login challenge");
    const passkey = await this.store.governance.getPasskey(String(response.id));
    if (!passkey) throw new CustosError("UNAUTHENTICATED", "this passkey is not registered (or its add_credential proposal has not executed yet)");
    await this.verifyAssertion(passkey, response, challenge);
    return { officerId: passkey.officerId, credentialId: passkey.id };
  }

  /**
   * Options for approving (or rejecting) one proposal: a fresh nonce bound to officer,
   * proposal and decision, and the challenge derived from it and the digest.
   */
  async approvalOptions(
    officer: OfficerRecord,
    proposal: { id: string; digest: string },
    decision: Decision,
  ): Promise<{ nonce: string; options: PublicKeyCredentialRequestOptionsJSON }> {
    const passkeys = await this.store.governance.listPasskeys(officer.id);
    if (passkeys.length === 0) throw new CustosError("PRECONDITION_FAILED", `officer ${officer.id} has no registered passkey`);
    const nonce = isoBase64URL.fromBuffer(randomBytes(32));
    const options = await generateAuthenticationOptions({
      rpID: this.settings.rpId,
      challenge: isoBase64URL.toBuffer(approvalChallenge(decision, proposal.digest, nonce)),
      allowCredentials: passkeys.map((k) => ({ id: k.id, transports: k.transports })),
      userVerification: "required",
    });
    await this.approvals.put(nonce, { officerId: officer.id, proposalId: proposal.id, decision });
    return { nonce, options };
  }

  /**
   * Verifies a console vote. The nonce is spent whatever the outcome; it must have been issued
   * to this officer for this proposal and decision; the assertion must sign the challenge
   * derived from the proposal's current digest, come from one of the officer's passkeys, carry
   * user verification and advance the signature counter.
   */
  async verifyApproval(r: ApprovalAssertion): Promise<{ credentialId: string; evidence: string }> {
    const bound = await this.approvals.take(String(r.nonce ?? ""));
    if (!bound || bound.officerId !== r.officerId || bound.proposalId !== r.proposalId || bound.decision !== r.decision) {
      throw new CustosError("NONCE_INVALID", "unknown, expired or already used approval nonce, or one issued for another proposal or decision");
    }
    const expected = approvalChallenge(r.decision, r.digest, r.nonce);
    if (signedChallenge(r.response?.response?.clientDataJSON ?? "") !== expected) {
      throw new CustosError("DIGEST_MISMATCH", "the passkey signed a challenge for another digest, decision or nonce");
    }
    const passkey = await this.store.governance.getPasskey(String(r.response.id));
    if (!passkey || passkey.officerId !== r.officerId) throw new CustosError("BAD_SIGNATURE", `not a passkey of officer ${r.officerId}`);
    await this.verifyAssertion(passkey, r.response, expected);
    const a = r.response.response;
    const evidence = {
      v: PASSKEY_EVIDENCE_FORMAT,
      credentialId: passkey.id,
      nonce: r.nonce,
      authenticatorData: a.authenticatorData,
      clientDataJSON: a.clientDataJSON,
      signature: a.signature,
    };
    return { credentialId: passkey.id, evidence: Buffer.from(JSON.stringify(evidence), "utf8").toString("base64") };
  }

  private async verifyAssertion(passkey: PasskeyRecord, response: PasskeyAssertion, expectedChallenge: string): Promise<void> {
    let verified: Awaited<ReturnType<typeof verifyAuthenticationResponse>>;
    try {
      verified = await verifyAuthenticationResponse({
        response,
        expectedChallenge,
        expectedOrigin: this.origins(),
        expectedRPID: this.settings.rpId,
        credential: { id: passkey.id, publicKey: isoBase64URL.toBuffer(passkey.publicKey), counter: passkey.counter, transports: passkey.transports },
        requireUserVerification: true,
      });
    } catch (e) {
      throw new CustosError("BAD_SIGNATURE", `passkey assertion does not verify: ${e instanceof Error ? e.message : "invalid response"}`);
    }
    if (!verified.verified) throw new CustosError("BAD_SIGNATURE", "passkey assertion does not verify");
    // Conditional write: of two assertions racing with the same counter, one wins.
    if (!(await this.store.governance.recordPasskeyUse(passkey.id, verified.authenticationInfo.newCounter, new Date(this.now()).toISOString()))) {
      throw new CustosError("BAD_SIGNATURE", "the passkey's signature counter did not advance (a replay or a cloned authenticator)");
    }
  }
}
