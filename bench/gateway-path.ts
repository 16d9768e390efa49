/**
 * The gateway path of the egress group (bench/egress.ts): the bench's Binance USDⓈ-M order as a
 * bot sends it to `custos gateway` (plain HTTP on loopback, keep-alive), which strips
 * `recvWindow` and hands the request to SendExchangeRequest. The gateway runs in the orchestrator
 * as `custos gateway` runs it (its per-request info log included, written to a discarding sink).
 */
import { Writable } from "node:stream";
import { Pool } from "undici";
import { grpcSender } from "../src/gateway/custos-sender.js";
import { startGateway } from "../src/gateway/gateway.js";
import type { SignerClient } from "../src/gen/custos/v1/signer.js";
import { createLogger } from "../src/log.js";
import { EXCHANGE_KEY_ID, EXCHANGE_QUERY } from "./common.js";

/** One call through the gateway, and the gateway's shutdown. */
export interface GatewayPath {
  call(): Promise<void>;
  close(): Promise<void>;
}

export async function gatewayPath(signer: SignerClient): Promise<GatewayPath> {
  const discard = new Writable({ write: (_chunk, _enc, done) => done() });
  const gateway = await startGateway({
    sender: grpcSender(signer),
    publicUpstream: { get: () => Promise.reject(new Error("the bench sends no public request")) },
    logger: createLogger("info", discard),
    listen: { host: "127.0.0.1", port: 0 },
  });
  // The bot's keep-alive pool, the same settings as the other paths' senders.
  const pool = new Pool(gateway.url, { connections: 16, pipelining: 1 });
  const path = `/binance/${EXCHANGE_KEY_ID}/fapi/v1/order?${EXCHANGE_QUERY}&recvWindow=5000`;
  return {
    async call() {
      const res = await pool.request({ method: "POST", path, headers: ["x-mbx-apikey", "held-by-custos"] });
      const body = await res.body.text();
      if (res.statusCode !== 200) throw new Error(`the gateway answered ${res.statusCode} ${body}`);
    },
    async close() {
      await pool.close();
      await gateway.close();
    },
  };
}
