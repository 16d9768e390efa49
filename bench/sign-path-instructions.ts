/**
 * The pure part of SignExchangeRequest for the bench's Binance order — strict read, the dialect's
 * reading (class, symbols, orders, schema fit), the policy, and `prepare` — N times in one process,
 * each call with its own newClientOrderId. Run under callgrind twice (N = 5,000 and 45,000): the
 * difference of the two instruction totals ÷ 40,000 is instructions per call, a figure that does
 * not depend on what else the machine runs (bench/README.md).
 *
 *   valgrind --tool=callgrind --callgrind-out-file=/dev/null node dist/bench/sign-path-instructions.js 45000
 *
 * It drives whichever dialect API the build has: `Dialect.read` (one reading), or the earlier
 * classify / symbols / orders / schemaMisfit / prepare, so one script measures both sides of a change.
 */
import type { ExchangeRequest, PreparedRequest, SigningContext } from "../src/exchanges/dialect.js";
import { dialectFor } from "../src/exchanges/registry.js";
import * as strictParse from "../src/exchanges/strict-parse.js";
import { checkParameterSchema, checkRequest, type KeyPolicy, type RequestFacts } from "../src/policy/policy.js";

interface OneRead {
  read(req: ExchangeRequest, strict?: unknown): RequestFacts & { schemaMisfit: string | undefined; prepare(ctx: SigningContext): PreparedRequest };
}
interface Readers {
  classify(req: ExchangeRequest): RequestFacts["endpointClass"];
  symbols(req: ExchangeRequest): string[];
  orders(req: ExchangeRequest): RequestFacts["orders"];
  schemaMisfit(req: ExchangeRequest): string | undefined;
  prepare(req: ExchangeRequest, ctx: SigningContext): PreparedRequest;
}

const calls = Number(process.argv[2] ?? 45_000);
const dialect = dialectFor("binance")!;
const policy: KeyPolicy = { maxQuantity: { "*": 1 } };
const policies = new Map([["bench", policy]]);
const strict = strictParse as unknown as { readStrict?: (r: ExchangeRequest) => unknown; checkStrictRequest: (r: ExchangeRequest) => void };
const oneRead = "read" in dialect ? (dialect as unknown as OneRead) : undefined;
const readers = dialect as unknown as Readers;

let bytes = 0;
for (let i = 0; i < calls; i++) {
  const req: ExchangeRequest = {
    method: "POST",
    path: "/fapi/v1/order",
    query: `symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.0015&price=64250.10&newClientOrderId=bench-${i.toString(16)}&newOrderRespType=RESULT`,
    body: "",
  };
  const ctx: SigningContext = { timestamp: 1_735_689_600_000 + i, expires: 0, nonce: "", recvWindow: 5000, apiKeyId: "api-bench", keyAlgorithm: "hmac-sha256" };
  let prepared: PreparedRequest;
  if (oneRead && strict.readStrict) {
    const p = policies.get("bench")!;
    const reading = oneRead.read(req, strict.readStrict(req));
    checkRequest(p, req, reading);
    checkParameterSchema(p, reading.schemaMisfit);
    prepared = reading.prepare(ctx);
  } else {
    // The earlier sign path looked the policy up for the timing check and again for the content rules.
    policies.get("bench");
    const p = policies.get("bench")!;
    strict.checkStrictRequest(req);
    checkRequest(p, req, { endpointClass: readers.classify(req), symbols: readers.symbols(req), orders: readers.orders(req) });
    checkParameterSchema(p, readers.schemaMisfit(req));
    prepared = readers.prepare(req, ctx);
  }
  bytes += prepared.toSign[0]!.length;
}
process.stdout.write(`${calls} calls, ${bytes} bytes to sign\n`);
