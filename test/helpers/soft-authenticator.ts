/**
 * A software WebAuthn authenticator for tests that need no browser: a P-256 key, assertions
 * (authenticator data + clientDataJSON + ECDSA signature) exactly as a platform authenticator
 * makes them. Uses the CBOR encoder of @simplewebauthn/server's helpers for the COSE key.
 */
import { createHash, generateKeyPairSync, randomBytes, sign } from "node:crypto";
import type { AuthenticationResponseJSON, RegistrationResponseJSON } from "@simplewebauthn/server";
import { isoCBOR } from "@simplewebauthn/server/helpers";
import type { PasskeySpec } from "../../src/governance/proposal-input.js";

export class SoftAuthenticator {
  private readonly keys = generateKeyPairSync("ec", { namedCurve: "P-256" });
  readonly credentialId = randomBytes(16).toString("base64url");
  counter = 0;

  constructor(
    private readonly rpId: string,
    private readonly origin: string,
  ) {}

  /** The COSE_Key (EC2, ES256) of the credential, base64url. */
  cosePublicKey(): string {
    const jwk = this.keys.publicKey.export({ format: "jwk" });
    const cose = new Map<number, number | Uint8Array>([
      [1, 2],
      [3, -7],
      [-1, 1],
      [-2, Buffer.from(jwk.x!, "base64url")],
      [-3, Buffer.from(jwk.y!, "base64url")],
    ]);
    return Buffer.from(isoCBOR.encode(cose)).toString("base64url");
  }

  /** What a verified registration of this credential yields. */
  spec(label = "soft key"): PasskeySpec {
    return {
      id: this.credentialId,
      publicKey: this.cosePublicKey(),
      counter: 0,
      transports: ["internal"],
      aaguid: "00000000-0000-0000-0000-000000000000",
      label,
    };
  }

  /**
   * A registration response (attestation format "none") over `challenge`, as a platform
   * authenticator with user verification makes it: authenticator data with the credential
   * id and COSE key, inside a CBOR attestation object.
   */
  attest(challenge: string): RegistrationResponseJSON {
    const id = Buffer.from(this.credentialId, "base64url");
    const idLength = Buffer.alloc(2);
    idLength.writeUInt16BE(id.length);
    const flags = 0x01 | 0x04 | 0x40; // user present, user verified, attested credential data
    const authData = Buffer.concat([
      createHash("sha256").update(this.rpId).digest(),
      Buffer.from([flags]),
      Buffer.alloc(4), // signature counter 0
      Buffer.alloc(16), // AAGUID
      idLength,
      id,
      Buffer.from(this.cosePublicKey(), "base64url"),
    ]);
    const attestationObject = isoCBOR.encode(
      new Map<string, unknown>([
        ["fmt", "none"],
        ["attStmt", new Map()],
        ["authData", new Uint8Array(authData)],
      ]) as never,
    );
    const clientDataJSON = Buffer.from(JSON.stringify({ type: "webauthn.create", challenge, origin: this.origin, crossOrigin: false }));
    return {
      id: this.credentialId,
      rawId: this.credentialId,
      type: "public-key",
      response: {
        clientDataJSON: clientDataJSON.toString("base64url"),
        attestationObject: Buffer.from(attestationObject).toString("base64url"),
        transports: ["internal"],
      },
      clientExtensionResults: {},
    };
  }

  /** An assertion over `challenge` (base64url); the counter advances unless `counter` is given. */
  assert(challenge: string, o: { origin?: string; userVerified?: boolean; counter?: number } = {}): AuthenticationResponseJSON {
    const counter = o.counter ?? ++this.counter;
    const flags = 0x01 | (o.userVerified === false ? 0 : 0x04);
    const authData = Buffer.concat([createHash("sha256").update(this.rpId).digest(), Buffer.from([flags]), Buffer.alloc(4)]);
    authData.writeUInt32BE(counter, 33);
    const clientDataJSON = Buffer.from(JSON.stringify({ type: "webauthn.get", challenge, origin: o.origin ?? this.origin, crossOrigin: false }));
    const signature = sign("sha256", Buffer.concat([authData, createHash("sha256").update(clientDataJSON).digest()]), this.keys.privateKey);
    return {
      id: this.credentialId,
      rawId: this.credentialId,
      type: "public-key",
      response: {
        authenticatorData: authData.toString("base64url"),
        clientDataJSON: clientDataJSON.toString("base64url"),
        signature: signature.toString("base64url"),
      },
      clientExtensionResults: {},
    };
  }
}
