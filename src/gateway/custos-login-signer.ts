import { unary } from "../client/connection.js";
import type { SignerClient } from "../gen/custos/v1/signer.js";

/** What the gateway's WebSocket proxy needs from custos: one private-stream login, signed in the HSM. */
export interface WebSocketLoginSigner {
  /** custos's complete login message for the key's exchange; rejects with custos's gRPC error when refused. */
  signLogin(keyId: string, passphrase: string | undefined): Promise<string>;
}

/** How long the gateway waits for custos to sign a login. */
const LOGIN_DEADLINE_MS = 10_000;

/** SignWebSocketAuth over the bot's mTLS channel to custos (custos chooses timestamp and expiry). */
export function grpcLoginSigner(signer: SignerClient): WebSocketLoginSigner {
  return {
    signLogin(keyId, passphrase) {
      const request = {
        keyId,
        version: 0,
        timestampMs: "0",
        nonce: "",
        expires: "0",
        challenge: "",
        channel: "",
        event: "",
        passphrase: passphrase ?? "",
        wsMethod: "",
        wsParams: [],
      };
      return unary(signer, "signWebSocketAuth", request, { deadline: Date.now() + LOGIN_DEADLINE_MS }).then((res) => {
        // Every dialect the gateway proxies has a fixed login format; an empty one is a bug, refused closed.
        if (!res.message) throw new Error("custos returned no login message");
        return res.message;
      });
    },
  };
}
