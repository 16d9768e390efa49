import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { it } from "node:test";
import { createLogger } from "../../src/log.js";

/** Defence in depth: fields that would carry a PIN, secret, envelope or payload are censored. */
it("redacts secret-bearing fields at the top level and one level down", async () => {
  const sink = new PassThrough();
  let out = "";
  sink.on("data", (d: Buffer) => (out += d.toString()));
  const log = createLogger("info", sink);
  log.info({ pin: "1234", secret: "s3cr3t", envelope: { wrappedKey: "AAAA" }, payload: "symbol=BTC" }, "top");
  log.info({ hsm: { pin: "5678" }, req: { secret: "x2", encryptedAesKey: "BBBB", wrappedKey: "CCCC", payload: "p2" } }, "nested");
  log.info({ event: "sign", key: "k1" }, "ordinary fields stay");
  await new Promise((r) => setImmediate(r));
  const [top, nested, plain] = out.trim().split("\n").map((l) => JSON.parse(l) as Record<string, any>);
  assert.deepEqual([top!.pin, top!.secret, top!.envelope, top!.payload], ["[redacted]", "[redacted]", "[redacted]", "[redacted]"]);
  assert.equal(nested!.hsm.pin, "[redacted]");
  assert.deepEqual(nested!.req, { secret: "[redacted]", encryptedAesKey: "[redacted]", wrappedKey: "[redacted]", payload: "[redacted]" });
  assert.equal(plain!.key, "k1");
  for (const value of ["1234", "s3cr3t", "AAAA", "5678", "x2", "BBBB", "CCCC", "symbol=BTC", "p2"]) assert.ok(!out.includes(value), value);
});
