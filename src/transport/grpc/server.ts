import { readFileSync } from "node:fs";
import type { EventEmitter } from "node:events";
import tls, { type PeerCertificate, type TLSSocket } from "node:tls";
import { fileURLToPath } from "node:url";
import { Server, ServerCredentials } from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { ReflectionService } from "@grpc/reflection";
import { HealthImplementation } from "grpc-health-check";
import type { Logger } from "pino";
import { CustodyService as CustodyDefinition, GuardService as GuardDefinition } from "../../gen/custos/v1/custody.js";
import { SignerService as SignerDefinition } from "../../gen/custos/v1/signer.js";
import type { GovernanceService } from "../../governance/governance-service.js";
import { peerAddressIp } from "../../pki/index.js";
import type { SignService } from "../../signing/sign-service.js";
import { custodyHandlers, guardHandlers } from "./custody-handlers.js";
import { encodeSignedExchangeRequest } from "./exchange-response-encoder.js";
import { InFlight, signerHandlers } from "./signer-handlers.js";
import { EdgeRefusals, refuseMalformed, tolerantDecoding, type RefusalRecorder } from "./refusals.js";

const PROTO_ROOT = fileURLToPath(new URL("../../../../proto/", import.meta.url));

export interface GrpcServerOptions {
  host: string;
  port: number;
  caPem: Buffer;
  certPem: Buffer;
  keyPem: Buffer;
  maxPayloadBytes: number;
  /** Called for every connection refused during the TLS handshake (no/foreign cert, TLS < 1.3). */
  onTlsRefused?: (info: { ip: string | null; reason: string }) => void;
  /** Where refusals decided by the transport (malformed messages, bad arguments) are audited. */
  refusals: RefusalRecorder;
}

export interface RunningGrpc {
  port: number;
  health: HealthImplementation;
  inFlight: InFlight;
  /** Stops accepting calls, waits for in-flight ones, then closes. */
  shutdown(graceMs: number): Promise<void>;
}

/**
 * gRPC over TLS 1.3 with client certificates required. grpc-js has no minimum-version
 * option, so the process-wide TLS default is raised before the server's secure context is
 * created (this process serves nothing that needs TLS 1.2).
 */
export async function startGrpcServer(opts: GrpcServerOptions, signer: SignService, governance: GovernanceService, log: Logger): Promise<RunningGrpc> {
  tls.DEFAULT_MIN_VERSION = "TLSv1.3";
  const server = new Server({
    // Room for the largest payload plus framing; larger messages are refused by grpc-js.
    "grpc.max_receive_message_length": opts.maxPayloadBytes + 4096,
    "grpc.keepalive_permit_without_calls": 1,
  });
  const inFlight = new InFlight();
  const edge = new EdgeRefusals(opts.refusals, log);
  // SignExchangeRequest's reply is encoded directly (exchange-response-encoder.ts): same bytes, a third of the time.
  const signerDefinition = tolerantDecoding({
    ...SignerDefinition,
    signExchangeRequest: { ...SignerDefinition.signExchangeRequest, responseSerialize: encodeSignedExchangeRequest },
  });
  // Undecodable messages reach custos as MalformedRequest: refused with a reason and audited, never grpc-js's bare INTERNAL.
  const custody = tolerantDecoding(CustodyDefinition);
  const guard = tolerantDecoding(GuardDefinition);
  server.addService(signerDefinition, refuseMalformed(signerDefinition, signerHandlers(signer, log, inFlight, edge), edge));
  server.addService(custody, refuseMalformed(custody, custodyHandlers(governance, edge), edge));
  server.addService(guard, refuseMalformed(guard, guardHandlers(governance, edge), edge));

  const health = new HealthImplementation({ "": "SERVING", "custos.v1.Signer": "SERVING", "custos.v1.Custody": "SERVING" });
  health.addToServer(server);
  const definitions = loadSync(["custos/v1/signer.proto", "custos/v1/custody.proto"], { includeDirs: [PROTO_ROOT, "/usr/include"] });
  new ReflectionService(definitions).addToServer(server);

  const credentials = ServerCredentials.createSsl(opts.caPem, [{ private_key: opts.keyPem, cert_chain: opts.certPem }], true);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${opts.host.includes(":") ? `[${opts.host}]` : opts.host}:${opts.port}`, credentials, (err, p) => (err ? reject(err) : resolve(p))),
  );
  if (opts.onTlsRefused) watchTlsRefusals(server, opts.onTlsRefused);
  memoizePeerCertificates(server);
  return {
    port,
    health,
    inFlight,
    async shutdown(graceMs: number) {
      for (const s of ["", "custos.v1.Signer", "custos.v1.Custody"]) health.setStatus(s, "NOT_SERVING");
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      await inFlight.drained();
    },
  };
}

/**
 * grpc-js has no hook for failed handshakes, so reach its http2 servers (a private field)
 * and listen for `tlsClientError`. If the field ever moves, refusals still happen; only
 * their audit record is lost — so warn loudly.
 */
function watchTlsRefusals(server: Server, onRefused: NonNullable<GrpcServerOptions["onTlsRefused"]>): void {
  const http2Servers = (server as unknown as { http2Servers?: Map<EventEmitter, unknown> }).http2Servers;
  if (!(http2Servers instanceof Map)) throw new Error("grpc-js internals changed: cannot audit refused TLS connections");
  for (const h2 of http2Servers.keys()) {
    h2.on("tlsClientError", (err: Error & { code?: string }, socket: TLSSocket) => {
      // A certificate that fails verification (e.g. another CA) is refused by Node after the
      // handshake: the socket is destroyed and reported here as ECONNRESET. The real reason is
      // its authorizationError (a code string at runtime); the peer address is already gone.
      const verifyError = (socket as { authorizationError?: unknown }).authorizationError;
      onRefused({ ip: peerAddressIp(socket.remoteAddress), reason: typeof verifyError === "string" ? verifyError : (err.code ?? err.message) });
    });
  }
}

/**
 * grpc-js's getAuthContext() calls socket.getPeerCertificate() on every call, which converts
 * the whole certificate into a JS object (three fingerprints included): ~15–40 µs a unary
 * call, the largest custos cost after the HSM (bench/README.md). A TLS 1.3 connection's
 * peer certificate cannot change after the handshake (1.3 has no renegotiation), so each
 * socket answers with the object it built first. An optimisation only: if grpc-js
 * internals move, calls still work, at the old cost.
 */
function memoizePeerCertificates(server: Server): void {
  const http2Servers = (server as unknown as { http2Servers?: Map<EventEmitter, unknown> }).http2Servers;
  if (!(http2Servers instanceof Map)) return;
  for (const h2 of http2Servers.keys()) {
    h2.on("secureConnection", (socket: TLSSocket) => {
      const original = socket.getPeerCertificate;
      let cached: PeerCertificate | undefined;
      socket.getPeerCertificate = function (this: TLSSocket, detailed?: boolean) {
        if (detailed) return original.call(this, true);
        if (cached) return cached;
        const cert = original.call(this, false);
        if (cert?.raw) cached = cert; // only a real certificate, never the pre-handshake {}
        return cert;
      } as TLSSocket["getPeerCertificate"];
    });
  }
}

export function readPem(path: string): Buffer {
  return readFileSync(path);
}
