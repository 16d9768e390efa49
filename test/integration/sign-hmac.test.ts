import assert from "node:assert/strict";
import { createHmac, randomBytes, randomInt } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { unary } from "../../src/client/connection.js";
import { SignatureEncoding } from "../../src/gen/custos/v1/signer.js";
import type { SigningAlgorithm } from "../../src/hsm/index.js";
import { importSecret, startInProcess, type InProcessService } from "../helpers/harness.js";

/** HMACs through the real gRPC API and SoftHSM2 equal node:crypto's, for random secrets and payloads. */
describe("HMAC signing through gRPC and SoftHSM2", () => {
  let svc: InProcessService;
  before(async () => {
    svc = await startInProcess();
  });
  after(async () => svc.stop());

  const algorithms: Array<[SigningAlgorithm, "sha256" | "sha384" | "sha512"]> = [
    ["hmac-sha256", "sha256"],
    ["hmac-sha384", "sha384"],
    ["hmac-sha512", "sha512"],
  ];

  for (const [algorithm, hash] of algorithms) {
    it(`${algorithm}: random secrets (1–200 bytes, short ones included) and payloads match node:crypto`, async () => {
      // Lengths chosen to cover: tiny, just under and at the HSM minimum, above the block size.
      const lengths = [1, 5, 16, 31, 32, 47, 48, 63, 64, 65, 127, 128, 129, 200];
      for (const [i, len] of lengths.entries()) {
        const secret = randomBytes(len);
        const keyId = `${algorithm}-${i}`;
        await importSecret(svc.custody, keyId, secret, { algorithm });
        for (let j = 0; j < 8; j++) {
          const payload = randomBytes(randomInt(0, 2048));
          const res = await unary(svc.signer, "sign", { keyId, version: 0, payload, encoding: SignatureEncoding.SIGNATURE_ENCODING_RAW });
          const expected = createHmac(hash, secret).update(payload).digest();
          assert.deepEqual(res.signature, expected, `secret of ${len} bytes, payload of ${payload.length}`);
          assert.equal(res.keyVersion, 1);
          assert.equal(res.apiKeyId, `api-${keyId}`);
        }
      }
    });
  }

  it("encodes signatures as hex and base64 on request", async () => {
    const secret = Buffer.from("a typical exchange secret of sixty-four characters 0123456789abc");
    await importSecret(svc.custody, "encodings", secret);
    const payload = Buffer.from("symbol=BTCUSDT&side=BUY&type=MARKET&quantity=1&timestamp=1700000000000");
    const expected = createHmac("sha256", secret).update(payload).digest();
    const hex = await unary(svc.signer, "sign", { keyId: "encodings", version: 0, payload, encoding: SignatureEncoding.SIGNATURE_ENCODING_HEX });
    const b64 = await unary(svc.signer, "sign", { keyId: "encodings", version: 0, payload, encoding: SignatureEncoding.SIGNATURE_ENCODING_BASE64 });
    assert.equal(hex.signatureText, expected.toString("hex"));
    assert.equal(b64.signatureText, expected.toString("base64"));
    assert.equal(hex.signature.length, 0);
  });

  it("reproduces Binance's documented HMAC-SHA256 example", async () => {
    // From Binance's API docs (SIGNED endpoint examples): secretKey and queryString → signature.
    const secret = Buffer.from("NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j");
    await importSecret(svc.custody, "binance-doc", secret);
    const payload = Buffer.from("symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559");
    const res = await unary(svc.signer, "sign", { keyId: "binance-doc", version: 0, payload, encoding: SignatureEncoding.SIGNATURE_ENCODING_HEX });
    assert.equal(res.signatureText, "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71");
  });
});
