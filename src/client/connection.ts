import { readFileSync } from "node:fs";
import { join } from "node:path";
import { type ChannelCredentials, Metadata, credentials, type CallOptions, type ChannelOptions, type ServiceError } from "@grpc/grpc-js";
import { CustodyClient, GuardClient } from "../gen/custos/v1/custody.js";
import { SignerClient } from "../gen/custos/v1/signer.js";

/** DIR/connection.json as written by `custos serve`. */
export interface ConnectionFile {
  /** One gRPC address: the service's, or with replicas the oldest live replica's. */
  grpc: string;
  http: string;
  /** Every live replica's gRPC address, oldest first (`grpc` is the first); absent in files of older releases. */
  addresses?: string[];
  /** The officer console (HTTPS), when enabled. */
  console?: string;
  /** Name the server certificate is issued for (dialled addresses may differ). */
  serverName: string;
  caPath: string;
  wrappingKeyFingerprint: string;
  /** Embedded default only: the dev administrator and trading-client certificates. */
  admin?: { certPath: string; keyPath: string };
  client?: { certPath: string; keyPath: string };
  /** Embedded default only: the local dev officer (mTLS certificate, and its encrypted Ed25519 key). */
  officer?: { id: string; certPath: string; keyPath: string; officerKeyPath: string; passphraseFile: string };
}

export function readConnectionFile(dataDir: string): ConnectionFile {
  const path = join(dataDir, "connection.json");
  try {
    return JSON.parse(readFileSync(path, "utf8")) as ConnectionFile;
  } catch {
    throw new Error(`no ${path}: is \`custos serve --data-dir ${dataDir}\` running?`);
  }
}

/** The addresses a client may use: every replica's when the file lists them, else its one address. */
export function connectionAddresses(conn: Pick<ConnectionFile, "grpc" | "addresses">): string[] {
  return conn.addresses?.length ? [...conn.addresses] : [conn.grpc];
}

export interface ClientIdentity {
  caPath: string;
  certPath: string;
  keyPath: string;
}

/** mTLS channel credentials; the client also insists on TLS 1.3. */
export function channelCredentials(id: ClientIdentity): ChannelCredentials {
  return credentials.createSsl(readFileSync(id.caPath), readFileSync(id.keyPath), readFileSync(id.certPath));
}

export function channelOptions(serverName: string): ChannelOptions {
  // Dialling 127.0.0.1 with a certificate issued for "localhost".
  return { "grpc.ssl_target_name_override": serverName, "grpc.default_authority": serverName };
}

export function signerClient(address: string, id: ClientIdentity, serverName = "localhost"): SignerClient {
  return new SignerClient(address, channelCredentials(id), channelOptions(serverName));
}

export function custodyClient(address: string, id: ClientIdentity, serverName = "localhost"): CustodyClient {
  return new CustodyClient(address, channelCredentials(id), channelOptions(serverName));
}

export function guardClient(address: string, id: ClientIdentity, serverName = "localhost"): GuardClient {
  return new GuardClient(address, channelCredentials(id), channelOptions(serverName));
}

/* eslint-disable @typescript-eslint/no-explicit-any */
type UnaryFn<Req, Res> = (req: Req, metadata: Metadata, options: Partial<CallOptions>, callback: (err: ServiceError | null, res: Res) => void) => unknown;

/** Promisifies one unary call of a generated grpc-js client: `unary(client, "sign", req)`. */
export function unary<C, K extends keyof C>(
  client: C,
  method: K,
  // biome-ignore lint/suspicious/noExplicitAny: only the request type is inferred; the response side must accept any
  req: C[K] extends UnaryFn<infer Req, any> ? Req : never,
  options: Partial<CallOptions> = {},
  // biome-ignore lint/suspicious/noExplicitAny: only the response type is inferred
): Promise<C[K] extends UnaryFn<any, infer Res> ? Res : never> {
  const fn = client[method] as unknown as UnaryFn<unknown, unknown>;
  return new Promise((resolve, reject) => fn.call(client, req, new Metadata(), options, (err, res) => (err ? reject(err) : resolve(res as never))));
}
