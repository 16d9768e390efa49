import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { it } from "node:test";
import { createLogger } from "../../src/log.js";
import { buildHttp } from "../../src/transport/http/server.js";
import { Metrics } from "../../src/transport/http/metrics.js";
import { FakeHsm } from "./fake-hsm.js";

/** /readyz fails while audit records wait unwritten past the bound at which signing stops. */
it("reports not ready while the audit backlog is past its bound, and ready again once it is written", async () => {
  const hsm = new FakeHsm();
  let lagSeconds = 0;
  const app = buildHttp({
    hsm,
    metrics: new Metrics(hsm, () => undefined),
    logger: createLogger("info", new PassThrough()),
    storeCheck: async () => undefined,
    auditBacklog: () => ({ lagSeconds, maxSeconds: 5 }),
  });
  try {
    const ready = async () => {
      const r = await app.inject({ method: "GET", url: "/readyz" });
      return { status: r.statusCode, audit: (r.json() as { audit: unknown }).audit };
    };
    assert.deepEqual(await ready(), { status: 200, audit: { ok: true, unwrittenSeconds: 0 } });
    lagSeconds = 4.5;
    assert.deepEqual(await ready(), { status: 200, audit: { ok: true, unwrittenSeconds: 4.5 } });
    lagSeconds = 5.25;
    assert.deepEqual(await ready(), { status: 503, audit: { ok: false, unwrittenSeconds: 5.25 } });
    lagSeconds = 0;
    assert.deepEqual(await ready(), { status: 200, audit: { ok: true, unwrittenSeconds: 0 } });
  } finally {
    await app.close();
  }
});
