import { createHmac } from "node:crypto";
import { join } from "node:path";
import { REPO } from "../test/helpers/harness.js";
import { JsonChild, KEY_ID, PAYLOAD, SECRET } from "./common.js";

/** Where a bench server listens and the trading client's mTLS files. */
export interface StreamTarget {
  grpc: string;
  caPath: string;
  client: { certPath: string; keyPath: string };
}

/**
 * The Python client's stream load (bench/python_stream.py under Debian's python3): one
 * custos_client SignStream, raw Sign of the bench payload, `inFlight` outstanding; it speaks
 * client.js's protocol (window markers, then a ClientResult line).
 */
export function pythonStreamChild(target: StreamTarget, inFlight: number, seconds: number): JsonChild {
  const job = {
    grpc: target.grpc,
    caPath: target.caPath,
    ...target.client,
    keyId: KEY_ID,
    inFlight,
    seconds,
    warmupSeconds: 1.5,
    payloadHex: PAYLOAD.toString("hex"),
    expectedHex: createHmac("sha256", SECRET).update(PAYLOAD).digest("hex"),
  };
  return new JsonChild([join(REPO, "bench/python_stream.py"), JSON.stringify(job)], {}, [], "/usr/bin/python3");
}
