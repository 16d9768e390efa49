/**
 * A software WebAuthn authenticator for tests that need no browser: a P-256 key, assertions
 * (authenticator data + clientDataJSON + ECDSA signature) exactly as a platform authenticator
 * makes them. Uses the CBOR encoder of @simplewebauthn/server's helpers for the COSE key.
 */
import { createHash, generateKeyPairSync, randomBytes, sign } from "node:crypto";
import type { AuthenticationResponseJSON } from "@simplewebauthn/server";
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
    return { id: this.credentialId, publicKey: this.cosePublicKey(), counter: 0, transports: ["internal"], aaguid: "00000000-0000-0000-0000-000000000000", label };
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
      response: { authenticatorData: authData.toString("base64url"), clientDataJSON: clientDataJSON.toString("base64url"), signature: signature.toString("base64url") },
      clientExtensionResults: {},
    };
  }
}
