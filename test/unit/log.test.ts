import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { it } from "node:test";
import { LOG_FIELDS, createLogger } from "../../src/log.js";

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
  const [top, nested, plain] = out
    .trim()
    .split("\n")
    // biome-ignore lint/suspicious/noExplicitAny: log lines are read field by field
    .map((l) => JSON.parse(l) as Record<string, any>);
  assert.deepEqual([top!.pin, top!.secret, top!.envelope, top!.payload], ["[redacted]", "[redacted]", "[redacted]", "[redacted]"]);
  assert.equal(nested!.hsm.pin, "[redacted]");
  assert.deepEqual(nested!.req, { secret: "[redacted]", encryptedAesKey: "[redacted]", wrappedKey: "[redacted]", payload: "[redacted]" });
  assert.equal(plain!.key, "k1");
  for (const value of ["1234", "s3cr3t", "AAAA", "5678", "x2", "BBBB", "CCCC", "symbol=BTC", "p2"]) assert.ok(!out.includes(value), value);
});

/** Operators map these names in ELK/Splunk: they are part of custos's interface. */
it("writes the stable field names: ISO time, level label, service, component, event, msg", async () => {
  const sink = new PassThrough();
  let out = "";
  sink.on("data", (d: Buffer) => (out += d.toString()));
  const log = createLogger("info", sink).child({ component: "anomaly" });
  log.warn({ event: "anomaly", client: "spiffe://custos/engine/alpha", key: "k1", score: 9.5 }, "signing traffic deviates from its baseline");
  log.debug({ event: "hidden" }, "below the level");
  await new Promise((r) => setImmediate(r));
  const lines = out.trim().split("\n");
  assert.equal(lines.length, 1, "debug is below the info level");
  const line = JSON.parse(lines[0]!) as Record<string, unknown>;
  assert.match(String(line.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.deepEqual(
    { level: line.level, service: line.service, component: line.component, event: line.event, client: line.client, key: line.key, msg: line.msg },
    {
      level: "warn",
      service: "custos",
      component: "anomaly",
      event: "anomaly",
      client: "spiffe://custos/engine/alpha",
      key: "k1",
      msg: "signing traffic deviates from its baseline",
    },
  );
  for (const name of Object.keys(line)) assert.ok(name in LOG_FIELDS || name === "score", `undocumented field ${name}`);
});

it("redacts an exchange API passphrase, at the top level and one level down", async () => {
  const sink = new PassThrough();
  let out = "";
  sink.on("data", (d: Buffer) => (out += d.toString()));
  const log = createLogger("info", sink);
  log.info({ event: "x", passphrase: "okx-pass-1" }, "top");
  log.info({ event: "x", request: { keyId: "k1", passphrase: "kucoin-pass-2" } }, "nested");
  await new Promise((r) => setImmediate(r));
  const [top, nested] = out
    .trim()
    .split("\n")
    // biome-ignore lint/suspicious/noExplicitAny: log lines are read field by field
    .map((l) => JSON.parse(l) as Record<string, any>);
  assert.equal(top!.passphrase, "[redacted]");
  assert.deepEqual(nested!.request, { keyId: "k1", passphrase: "[redacted]" });
  assert.ok(!out.includes("okx-pass-1") && !out.includes("kucoin-pass-2"));
});
