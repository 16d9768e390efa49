import { randomBytes, sign, verify, type KeyObject } from "node:crypto";
import { CustosError } from "../errors.js";
import type { OfficerRecord } from "./model.js";
import { parseOfficerPublicKey } from "./officer-key.js";

/** Format tag inside every signed enrollment token. */
export const ENROLLMENT_FORMAT = "custos.console-enrollment.v1";
/** An enrollment token is accepted this long after it was made. */
export const ENROLLMENT_TTL_MS = 10 * 60_000;
/** Clock skew tolerated between the officer's machine and the service. */
const FUTURE_SKEW_MS = 60_000;

interface EnrollmentPayload {
  officer: string;
  issuedAt: string;
  nonce: string;
}

const b64url = (b: Buffer) => b.toString("base64url");
const signedBytes = (payload: string) => Buffer.from(`${ENROLLMENT_FORMAT}\n${payload}`, "utf8");

/**
 * A one-time console enrollment token, made offline by the officer's CLI: their id, the time
 * and a nonce, signed with their Ed25519 officer key. It lets an officer who has no passkey
 * yet open a console session whose only power is to register one (which still needs a quorum).
 */
export function createEnrollmentToken(privateKey: KeyObject, officerId: string, now = new Date()): string {
  const payload: EnrollmentPayload = { officer: officerId, issuedAt: now.toISOString(), nonce: randomBytes(16).toString("hex") };
  const encoded = b64url(Buffer.from(JSON.stringify(payload), "utf8"));
  return `${encoded}.${b64url(sign(null, signedBytes(encoded), privateKey))}`;
}

/** Where spent enrollment nonces are kept (the store: a restart or another replica sees them too). */
export interface SpentTokens {
  spendToken(token: string, expiresAt: string, now: string): Promise<boolean>;
}

/**
 * Checks enrollment tokens: signature by the named active officer's Ed25519 key, age at most
 * ENROLLMENT_TTL_MS, and each token used once (nonces kept in the store until they would expire).
 */
export class EnrollmentVerifier {
  constructor(
    private readonly spent: SpentTokens,
    private readonly now: () => number = Date.now,
  ) {}

  /** The officer the token enrolls; UNAUTHENTICATED if it is not valid, NONCE_INVALID if already used. */
  async verify(token: string, officerById: (id: string) => OfficerRecord | undefined): Promise<OfficerRecord> {
    const bad = (why: string) => new CustosError("UNAUTHENTICATED", `enrollment token refused: ${why}`);
    const [encoded, signature, extra] = String(token).trim().split(".");
    if (!encoded || !signature || extra !== undefined || encoded.length > 1024) throw bad("malformed");
    let payload: EnrollmentPayload;
    try {
      payload = JSON.parse(Buffer.from(encoded, "base64url").toString("utf8")) as EnrollmentPayload;
    } catch {
      throw bad("malformed");
    }
    if (
      typeof payload?.officer !== "string" ||
      typeof payload.issuedAt !== "string" ||
      typeof payload.nonce !== "string" ||
      !/^[0-9a-f]{32}$/.test(payload.nonce)
    )
      throw bad("malformed");
    const officer = officerById(payload.officer);
    if (officer?.status !== "active") throw bad("not an active officer");
    if (!verify(null, signedBytes(encoded), parseOfficerPublicKey(officer.publicKeyPem), Buffer.from(signature, "base64url")))
      throw bad("signature does not verify with the officer's key");
    const issued = Date.parse(payload.issuedAt);
    const now = this.now();
    if (!Number.isFinite(issued) || issued > now + FUTURE_SKEW_MS || now - issued > ENROLLMENT_TTL_MS)
      throw bad("expired (make a new one with `custos officer enroll-token`)");
    const until = new Date(issued + ENROLLMENT_TTL_MS + FUTURE_SKEW_MS).toISOString();
    if (!(await this.spent.spendToken(`enroll:${payload.nonce}`, until, new Date(now).toISOString()))) {
      throw new CustosError("NONCE_INVALID", "this enrollment token was already used");
    }
    return officer;
  }
}
