import assert from "node:assert/strict";
import { randomBytes, randomInt } from "node:crypto";
import { describe, it } from "node:test";
import { SignedExchangeRequest } from "../../src/gen/custos/v1/signer.js";
import { encodeSignedExchangeRequest } from "../../src/transport/grpc/exchange-response-encoder.js";

/** The generated encoder is the reference: the direct one must write the same bytes. */
function same(r: SignedExchangeRequest): void {
  const direct = encodeSignedExchangeRequest(r);
  assert.deepEqual(direct, Buffer.from(SignedExchangeRequest.encode(r).finish()));
  assert.deepEqual(SignedExchangeRequest.decode(direct), r);
}

const text = (n: number): string => {
  // ASCII, 2-, 3- and 4-byte UTF-8 characters, so byte lengths differ from string lengths.
  const alphabet = ["a", "Z", "=", "&", "é", "€", "𝄞", "日"];
  return Array.from({ length: n }, () => alphabet[randomInt(alphabet.length)]).join("");
};

describe("SignedExchangeRequest direct encoder", () => {
  it("writes a Binance order reply exactly as the generated encoder", () => {
    same({
      headers: [{ name: "X-MBX-APIKEY", value: "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A" }],
      params: [
        { name: "recvWindow", value: "5000" },
        { name: "timestamp", value: "1499827319559" },
        { name: "signature", value: "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71" },
      ],
      query:
        "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559&signature=c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71",
      body: Buffer.alloc(0),
      signature: "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71",
      timestamp: "1499827319559",
      keyVersion: 1,
      apiKeyId: "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A",
      endpointClass: "trade",
    });
  });

  it("omits proto3 defaults, keeps empty header messages, and handles long and multi-byte fields", () => {
    same({ headers: [], params: [], query: "", body: Buffer.alloc(0), signature: "", timestamp: "", keyVersion: 0, apiKeyId: "", endpointClass: "" });
    same({
      headers: [{ name: "", value: "" }],
      params: [{ name: "", value: "x" }],
      query: "",
      body: Buffer.alloc(0),
      signature: "",
      timestamp: "",
      keyVersion: 4_294_967_295,
      apiKeyId: "",
      endpointClass: "",
    });
    for (let i = 0; i < 200; i++) {
      same({
        headers: Array.from({ length: randomInt(4) }, () => ({ name: text(randomInt(40)), value: text(randomInt(300)) })),
        params: Array.from({ length: randomInt(4) }, () => ({ name: text(randomInt(20)), value: text(randomInt(200)) })),
        query: text(randomInt(3000)),
        body: randomBytes(randomInt(2) ? randomInt(20_000) : 0),
        signature: text(randomInt(100)),
        timestamp: text(randomInt(20)),
        keyVersion: randomInt(2) ? randomInt(1, 2 ** 31) : 0,
        apiKeyId: text(randomInt(80)),
        endpointClass: text(randomInt(10)),
      });
    }
  });
});
