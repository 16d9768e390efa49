import { randomBytes } from "node:crypto";
import type { Egress, ExchangeReply } from "../egress/http-egress.js";
import { CustosError } from "../errors.js";
import type { ExchangeRequest, SigningContext } from "../exchanges/dialect.js";
import { dialectFor } from "../exchanges/registry.js";
import { readStrict } from "../exchanges/strict-parse.js";
import type { Signer } from "../hsm/hsm.js";
import { activeVersion, apiKeyIdOf, type KeyWithVersions } from "../keys/model.js";
import type { PermissionProbe } from "./facts.js";

/** What custos needs to sign and send a request of its own: the HSM and the egress. */
export interface OwnRequestDeps {
  hsm: Signer;
  egress: Egress;
  now: () => number;
}

/** The exchange's answer to custos's own request, and where it went. */
export interface OwnReply {
  reply: ExchangeReply;
  version: number;
  origin: string;
  /** The exchange API key id the request was signed for. */
  apiKeyId: string;
}

/**
 * Signs a probe's fixed read request with the key's active version and sends it through the egress:
 * custos's own request, never a caller's, so no caller policy applies to it (the request is a constant
 * of custos's table). A frozen key signs nothing, this included. The signature never leaves custos.
 * `passphrase` (OKX, Bitget) is one a caller sent for this version; it goes only into the request's header.
 */
export async function sendOwnRequest(deps: OwnRequestDeps, key: KeyWithVersions, probe: PermissionProbe, passphrase?: string): Promise<OwnReply> {
  if (key.frozenAt) throw new CustosError("KEY_FROZEN", "key is frozen");
  const v = activeVersion(key);
  if (!v) throw new CustosError("KEY_NOT_ACTIVE", "key has no active version");
  const apiKeyId = apiKeyIdOf(key, v);
  if (!apiKeyId) throw new CustosError("NO_API_KEY_ID", `key ${key.id} has no exchange API key id`);
  const dialect = dialectFor(key.exchange);
  if (!dialect) throw new CustosError("NO_DIALECT", `custos has no request dialect for ${key.exchange}`);
  const now = deps.now();
  const ctx: SigningContext = {
    timestamp: now,
    expires: Math.floor(now / 1000) + 30,
    // Single-use: a login nonce (Deribit) must never repeat; time-like where the exchange reads it as time.
    nonce: dialect.nonceIsTime ? String(now) : randomBytes(12).toString("hex"),
    apiKeyId,
    keyAlgorithm: key.algorithm,
    ...(v.signedPassphrase ? { signedPassphrase: v.signedPassphrase } : {}),
    ...(passphrase ? { passphrase } : {}),
  };
  let out: ExchangeRequest & { headers: ReadonlyArray<readonly [string, string]> };
  if (probe.kind === "login") {
    if (!dialect.websocketAuth) throw new CustosError("NO_DIALECT", `custos cannot sign a ${key.exchange} login`);
    const prepared = dialect.websocketAuth({}, ctx);
    const signed = prepared.finish(await signEach(deps.hsm, v.objectId, key, prepared.toSign));
    out = { ...probe.request, query: new URLSearchParams(signed.fields).toString(), headers: [] };
  } else {
    const reading = dialect.read(probe.request, readStrict(probe.request));
    const prepared = reading.prepare(ctx);
    const signed = prepared.finish(await signEach(deps.hsm, v.objectId, key, prepared.toSign));
    out = { ...probe.request, query: signed.query, body: signed.body, headers: signed.headers };
  }
  const destination = deps.egress.route(key.exchange, key.environment, out.path, out.query);
  const reply = await deps.egress.send(key.exchange, destination, out);
  return { reply, version: v.version, origin: destination.origin, apiKeyId };
}

async function signEach(hsm: Signer, objectId: string, key: KeyWithVersions, data: Buffer[]): Promise<Buffer[]> {
  const macs: Buffer[] = [];
  for (const d of data) macs.push(await hsm.sign(objectId, key.algorithm, d));
  return macs;
}
