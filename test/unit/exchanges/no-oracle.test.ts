import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { CustosError } from "../../../src/errors.js";
import type { Dialect, SigningContext, WebSocketAuthInput } from "../../../src/exchanges/dialect.js";
import { dialectExchanges, dialectFor } from "../../../src/exchanges/registry.js";
import { CTX, PAIRS } from "../../fixtures/dialect-samples.js";

/*
 * No signing oracle: every byte custos sends to the HSM belongs to the request the policy
 * approved (its method, path, query and body) or is a value custos owns or checked (timestamp,
 * nonce, expiry, key id, receive window) or a constant of the exchange's format. Caller fields
 * that are not part of the request — the passphrase, the API key version, WebSocket inputs —
 * are never signed, or only in the one shape the exchange's format allows.
 */

const MARKER = "ORACLE0POST0api0v1withdrawals";

function signedBytes(d: Dialect, over: Partial<SigningContext>): Buffer[] {
  const p = PAIRS[d.exchange]!;
  return d.prepare(p.body[0], { ...CTX, ...p.ctx, ...over }).toSign;
}

describe("REST: nothing but the approved request and custos's own values is signed", () => {
  for (const exchange of dialectExchanges()) {
    const d = dialectFor(exchange)!;
    const p = PAIRS[exchange]!;
    it(`${exchange}: one string to sign, the same whatever the caller's passphrase or key version`, () => {
      const plain = signedBytes(d, {});
      assert.equal(plain.length, 1);
      for (const over of [{ apiKeyVersion: "3" }, { apiKeyVersion: MARKER }, { passphrase: MARKER }]) {
        let withCallerField: Buffer[];
        try {
          withCallerField = signedBytes(d, over);
        } catch (e) {
          // Refusing the field outright is as good as ignoring it.
          assert.ok(e instanceof CustosError && e.code === "INVALID_ARGUMENT", String(e));
          continue;
        }
        assert.deepEqual(withCallerField, plain, `${JSON.stringify(over)} changed the bytes signed`);
        assert.ok(!withCallerField.some((b) => b.includes(MARKER)), "a caller field reached the HSM");
      }
    });
    it(`${exchange}: the signed text contains the request's body and query verbatim (or its digest)`, () => {
      const req = p.body[0];
      const text = signedBytes(d, {})[0]!.toString("latin1");
      // Kraken Futures signs SHA-256(postData + nonce + path) and Gate SHA-512(body): the digest stands for the text.
      if (exchange === "krakenfutures") assert.equal(signedBytes(d, {})[0]!.length, 32);
      else if (exchange !== "gate") assert.ok(text.includes(req.body), "body in the signed text");
    });
  }
});

describe("WebSocket logins: caller inputs are signed only in the shape the exchange defines", () => {
  const oracleInputs: WebSocketAuthInput[] = [
    { challenge: `POST${MARKER}` },
    { channel: `futures.orders\nPOST\n/api/v4/withdrawals`, event: "subscribe" },
    { channel: "futures.orders", event: `subscribe&time=1\n${MARKER}` },
  ];
  for (const exchange of dialectExchanges()) {
    const d = dialectFor(exchange)!;
    if (!d.websocketAuth || exchange === "binance") continue; // Binance signs WS API requests: their own policy path
    it(`${exchange}: free-form inputs never reach the HSM`, () => {
      for (const input of oracleInputs) {
        let toSign: Buffer[];
        try {
          toSign = d.websocketAuth!(input, { ...CTX, ...PAIRS[exchange]!.ctx }).toSign;
        } catch (e) {
          assert.ok(e instanceof CustosError && e.code === "INVALID_ARGUMENT", String(e));
          continue;
        }
        assert.ok(!toSign.some((b) => b.includes(MARKER) || b.includes("withdrawals")), `${JSON.stringify(input)} reached the HSM`);
      }
    });
  }
  it("Kraken Futures signs only a UUID challenge", () => {
    const d = dialectFor("krakenfutures")!;
    assert.throws(
      () => d.websocketAuth!({ challenge: "c094497e-9b5f-40da-a122-3751c39b107f0" }, CTX),
      (e: unknown) => e instanceof CustosError && e.code === "INVALID_ARGUMENT",
    );
    assert.equal(d.websocketAuth!({ challenge: "c094497e-9b5f-40da-a122-3751c39b107f" }, CTX).toSign.length, 1);
  });
  it("Deribit's login signs no caller data: ts, nonce and an empty data field", () => {
    const d = dialectFor("deribit")!;
    const [bytes] = d.websocketAuth!({ challenge: MARKER, channel: MARKER, event: MARKER }, { ...CTX, nonce: "abc123" }).toSign;
    assert.equal(bytes!.toString("utf8"), `${CTX.timestamp}\nabc123\n`);
  });
});
