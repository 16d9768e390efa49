import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { CustosClient, type ExchangeRequestInput } from "../../src/client/custos-client.js";
import { importSecret, proposeAndApprove, REPO, startInProcess, tempDir, type InProcessService } from "../helpers/harness.js";
import { StandInBinance, standInTls } from "../helpers/stand-in-exchange.js";

/**
 * The Python client (clients/python) against a real custos: SoftHSM2, gRPC over mTLS, SQLite.
 * This test starts custos, imports the documented example keys, records the TypeScript
 * client's output for the same inputs, and runs the Python suite with Debian's python3
 * (pytest reads the data dir, key ids and expected outputs from CUSTOS_PYTEST_FIXTURE). The
 * tests marked custos_stopped run after custos has stopped.
 *
 * custos's egress sends Binance USDⓈ-M requests (send_exchange_request) to an HTTPS stand-in
 * Binance in this process (test/helpers/stand-in-exchange.ts), which verifies and records them;
 * pytest reads what it received and makes it hang through a small control endpoint (standInControl).
 */

// Binance's documented HMAC example ("SIGNED Endpoint Examples for POST /api/v3/order").
const BINANCE = {
  secret: "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j",
  apiKey: "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A",
};
// The keys of test/unit/exchanges/bybit.test.ts and okx.test.ts (their guides publish the text to sign, no secret).
const BYBIT = { secret: "yQ1UpD4mWb2gqz3Vv7XkRkP9tHc6sLJfN0aE", apiKey: "XUwVDQ9tZdFyqPJbE1" };
const OKX = { secret: "22582BD0CFF14C41EDBF1AB98506286D", apiKey: "4f1c2b3a-9d8e-4c7b-a6f5-0e1d2c3b4a59", passphrase: "Correct-Horse-9" };
const BYBIT_T = 1658384314791;
const OKX_T = Date.parse("2020-12-08T09:08:57.715Z");

/** The same inputs pytest signs (snake_case there); fixed timestamps so outputs are comparable. */
const CASES: Array<{ name: string; input: ExchangeRequestInput }> = [
  {
    name: "binance-order",
    input: {
      keyId: "bn",
      method: "POST",
      path: "/api/v3/order",
      query: "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1",
      timestampMs: 1499827319559,
      recvWindowMs: 5000,
    },
  },
  {
    name: "bybit-get",
    input: {
      keyId: "by",
      method: "GET",
      path: "/v5/order/realtime",
      query: "category=option&symbol=BTC-29JUL22-25000-C",
      timestampMs: BYBIT_T,
      recvWindowMs: 5000,
    },
  },
  {
    name: "bybit-order",
    input: {
      keyId: "by",
      method: "POST",
      path: "/v5/order/create",
      timestampMs: BYBIT_T,
      recvWindowMs: 5000,
      body: '{"category":"linear","symbol":"BTCUSDT","side":"Buy","orderType":"Limit","qty":"0.01","price":"30000","timeInForce":"GTC"}',
    },
  },
  {
    name: "okx-balance",
    input: { keyId: "ok", method: "GET", path: "/api/v5/account/balance", query: "ccy=BTC", timestampMs: OKX_T, passphrase: OKX.passphrase },
  },
  {
    name: "okx-order",
    input: {
      keyId: "ok",
      method: "POST",
      path: "/api/v5/trade/order",
      timestampMs: OKX_T,
      passphrase: OKX.passphrase,
      body: '{"instId":"BTC-USDT","tdMode":"cash","side":"buy","ordType":"limit","sz":"0.01","px":"30000"}',
    },
  },
];

/**
 * What pytest may ask of the stand-in, over plain HTTP on loopback: `GET /received` (every request
 * it received: method, target, body, its answer's status) and `PUT /fault` with `hang` or `none`.
 */
function standInControl(binance: StandInBinance): Promise<Server> {
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    let body = "";
    for await (const c of req) body += (c as Buffer).toString();
    if (req.method === "GET" && req.url === "/received") {
      const received = binance.received.map((r) => ({ method: r.method, target: r.target, body: r.body, status: r.outcome.status }));
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(received));
    } else if (req.method === "PUT" && req.url === "/fault" && (body === "hang" || body === "none")) {
      binance.fault = body;
      res.writeHead(204).end();
    } else {
      res.writeHead(404).end();
    }
  };
  const server = createServer((req, res) => void handle(req, res));
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

function runPytest(fixture: string, marker: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const proc = spawn("/usr/bin/python3", ["-m", "pytest", "-q", "-p", "no:cacheprovider", "--durations=5", "-m", marker, "clients/python/tests"], {
      cwd: REPO,
      env: { ...process.env, CUSTOS_PYTEST_FIXTURE: fixture, PYTHONDONTWRITEBYTECODE: "1" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    proc.stdout.on("data", (d: Buffer) => (output += d.toString()));
    proc.stderr.on("data", (d: Buffer) => (output += d.toString()));
    proc.on("close", (code) => resolve({ code, output }));
  });
}

describe("the Python client against a real custos", () => {
  let svc: InProcessService;
  let stopped = false;
  let control: Server | undefined;
  const work = tempDir("custos-python-");
  const fixture = join(work, "fixture.json");
  const binance = new StandInBinance(new Map([[BINANCE.apiKey, BINANCE.secret]]));

  before(async () => {
    const tls = await standInTls();
    const caFile = join(work, "exchange-ca.pem");
    writeFileSync(caFile, tls.caPem);
    const binanceUrl = await binance.start({ tls });
    control = await standInControl(binance);
    svc = await startInProcess((c) => {
      // A hung exchange is given up on after 1 s (EXCHANGE_UNAVAILABLE), well inside pytest's 10 s deadline.
      c.egress = { ...c.egress, hosts: { binance: { "/fapi/": binanceUrl, "/sapi/": binanceUrl } }, trustedCaFile: caFile, responseTimeoutMs: 1_000 };
    });
    await importSecret(svc.custody, "bn", Buffer.from(BINANCE.secret), { exchange: "binance", apiKeyId: BINANCE.apiKey });
    await importSecret(svc.custody, "bn-eo", Buffer.from(BINANCE.secret), { exchange: "binance", apiKeyId: BINANCE.apiKey });
    const policy = await proposeAndApprove(svc.custody, {
      kind: { $case: "setPolicy", setPolicy: { keyId: "bn-eo", policyJson: JSON.stringify({ egressOnly: true }) } },
      ttlSeconds: 0,
    });
    assert.equal(policy.state, "executed", policy.failure);
    await importSecret(svc.custody, "by", Buffer.from(BYBIT.secret), { exchange: "bybit", apiKeyId: BYBIT.apiKey });
    await importSecret(svc.custody, "ok", Buffer.from(OKX.secret), { exchange: "okx", apiKeyId: OKX.apiKey });
    await importSecret(svc.custody, "raw", Buffer.from("python-raw-secret-0123456789abcdef0123456789"));
    const client = CustosClient.fromDataDir(svc.dir);
    try {
      const cases = [];
      for (const c of CASES) cases.push({ name: c.name, input: c.input, typescript: await client.signExchangeRequest(c.input) });
      const { port } = control.address() as AddressInfo;
      writeFileSync(
        fixture,
        JSON.stringify({
          dataDir: svc.dir,
          work,
          keys: { binance: "bn", binanceEgressOnly: "bn-eo", bybit: "by", okx: "ok", raw: "raw" },
          cases,
          standIn: `http://127.0.0.1:${port}`,
        }),
      );
    } finally {
      client.close();
    }
  });
  after(async () => {
    if (svc && !stopped) await svc.stop();
    await binance.stop();
    await new Promise((resolve) => (control ? control.close(resolve) : resolve(undefined)));
    rmSync(work, { recursive: true, force: true });
  });

  it("passes the Python suite while custos serves (pytest exits 0, every test collected)", async (t) => {
    const r = await runPytest(fixture, "not custos_stopped");
    t.diagnostic(r.output.trim().split("\n").slice(-12).join(" | "));
    assert.equal(r.code, 0, r.output);
    assert.match(r.output, /\b45 passed, 2 deselected\b/);
    // Over the whole suite, hung and failed sends included, no order reached the stand-in twice.
    const orders = binance.received.filter((x) => x.target.startsWith("/fapi/v1/order?"));
    const ids = orders.map((x) => new URLSearchParams(x.target.split("?")[1]).get("newClientOrderId"));
    assert.ok(orders.length > 0 && ids.every((id) => id), "every order the suite sent carries its own newClientOrderId");
    assert.equal(new Set(ids).size, ids.length, `an order was sent twice: ${ids.join(" ")}`);
  });

  it("passes the Python suite's unavailability tests once custos has stopped", async (t) => {
    svc.custody.close();
    svc.signer.close();
    // A stopped custos removes its connection.json; a bot configured from it still has the address.
    const connection = readFileSync(join(svc.dir, "connection.json"));
    await svc.service.stop();
    stopped = true;
    writeFileSync(join(svc.dir, "connection.json"), connection);
    try {
      const r = await runPytest(fixture, "custos_stopped");
      t.diagnostic(r.output.trim().split("\n").at(-1) ?? "");
      assert.equal(r.code, 0, r.output);
      assert.match(r.output, /\b2 passed, 45 deselected\b/);
    } finally {
      rmSync(svc.dir, { recursive: true, force: true });
    }
  });
});
