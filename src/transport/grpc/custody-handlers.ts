import type { ServerUnaryCall, sendUnaryData } from "@grpc/grpc-js";
import type { Logger } from "pino";
import { Environment, type ClientInfo, type CustodyServer, type KeyInfo } from "../../gen/custos/v1/custody.js";
import { DEFAULT_MAX_AGE_DAYS, type CustodyService } from "../../keys/custody-service.js";
import { activeVersion, dueAt, type KeyWithVersions } from "../../keys/model.js";
import type { ClientRecord } from "../../signing/clients.js";
import { callerOf, type PeerInfo } from "./caller.js";
import { ALGORITHM_ENUM, ALGORITHM_NAMES } from "./enums.js";
import { toServiceError } from "./status.js";

let counter = 0;

/** Wraps a domain call: answers exactly once, errors mapped at the edge. */
function unary<Req, Res>(log: Logger, fn: (call: ServerUnaryCall<Req, Res> & PeerInfo) => Promise<Res> | Res) {
  return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>): void => {
    Promise.resolve()
      .then(() => fn(call))
      .then(
        (res) => callback(null, res),
        (e: unknown) => callback(toServiceError(e, log, `admin-${++counter}`)),
      );
  };
}

export function custodyHandlers(custody: CustodyService, log: Logger): CustodyServer {
  return {
    getWrappingKey: unary(log, (call) => {
      const w = custody.wrappingKey(callerOf(call));
      return { spkiPem: w.spkiPem, fingerprint: w.fingerprint, envelopeFormat: "custos.rsa-oaep-aes-kwp.v1", oaepHash: w.oaepHash };
    }),
    importKey: unary(log, async (call) => {
      const r = call.request;
      const key = await custody.importKey(callerOf(call), {
        keyId: r.keyId,
        exchange: r.exchange,
        environment: r.environment === Environment.ENVIRONMENT_TESTNET ? "testnet" : r.environment === Environment.ENVIRONMENT_MAINNET ? "mainnet" : ("" as never),
        label: r.label || r.keyId,
        apiKeyId: r.apiKeyId,
        algorithm: ALGORITHM_NAMES[r.algorithm] ?? ("" as never),
        maxAgeDays: r.maxAgeDays || DEFAULT_MAX_AGE_DAYS,
        envelope: r.envelope
          ? {
              format: r.envelope.format,
              oaepHash: r.envelope.oaepHash as "sha1" | "sha256",
              encryptedAesKey: r.envelope.encryptedAesKey,
              wrappedKey: r.envelope.wrappedKey,
              wrappingKeyFingerprint: r.envelope.wrappingKeyFingerprint,
            }
          : undefined,
      });
      return keyInfo(key);
    }),
    listKeys: unary(log, async (call) => ({ keys: (await custody.listKeys(callerOf(call))).map(keyInfo) })),
    addClient: unary(log, async (call) => {
      const r = call.request;
      return clientInfo({ ...(await custody.addClient(callerOf(call), r)), grants: [] });
    }),
    grantKey: unary(log, async (call) => {
      const caller = callerOf(call);
      await custody.grant(caller, call.request.identity, call.request.keyId);
      const c = (await custody.listClients(caller)).find((x) => x.identity === call.request.identity)!;
      return clientInfo(c);
    }),
    listClients: unary(log, async (call) => ({ clients: (await custody.listClients(callerOf(call))).map(clientInfo) })),
  };
}

function keyInfo(k: KeyWithVersions): KeyInfo {
  return {
    keyId: k.id,
    exchange: k.exchange,
    environment: k.environment === "mainnet" ? Environment.ENVIRONMENT_MAINNET : Environment.ENVIRONMENT_TESTNET,
    label: k.label,
    apiKeyId: k.apiKeyId,
    algorithm: ALGORITHM_ENUM[k.algorithm],
    activeVersion: activeVersion(k)?.version ?? 0,
    versions: k.versions.map((v) => ({ version: v.version, state: v.state, createdAt: v.createdAt, activatedAt: v.activatedAt ?? "" })),
    createdAt: k.createdAt,
    maxAgeDays: k.maxAgeDays,
    dueAt: dueAt(k)?.toISOString() ?? "",
  };
}

function clientInfo(c: ClientRecord & { grants: string[] }): ClientInfo {
  return { identity: c.identity, name: c.name, role: c.role, cidrs: c.cidrs, grantedKeys: c.grants, createdAt: c.createdAt };
}
