import type { GatewayWebSocketLogin } from "./websocket-login.js";

/** A request as a bot sent it to the gateway, with the route's prefix removed. */
export interface BotRequest {
  method: string;
  /** The exchange path, e.g. /fapi/v1/order. */
  path: string;
  /** The query exactly as sent (without "?"), or "". */
  query: string;
  body: string;
  /** Header lookup, case-insensitive. */
  header(name: string): string | undefined;
}

/** What the gateway asks custos to sign and send: the bot's request minus what custos owns. */
export interface StrippedRequest {
  query: string;
  body: string;
  recvWindowMs?: number;
  passphrase?: string;
}

/** How the gateway answers a refusal, in the exchange's terms (so ccxt raises a fitting class). */
export interface RefusalAnswer {
  status: number;
  body: unknown;
}

/** Refusals the gateway shapes per exchange; "unavailable" and "rate-limited" are the same plain 503/429 everywhere. */
export type ShapedRefusal = "denied" | "invalid";

/** custos's reason and rule, carried in the refusal body for people reading logs (ccxt ignores them). */
export interface RefusalDetail {
  reason: string;
  rule?: string;
  message: string;
}

/**
 * One exchange as the gateway reads a bot's requests: which carry credentials (and so must be
 * signed by custos), what to strip before custos re-signs (signature, timestamps, the API key),
 * and how to shape refusals. One module per exchange behind `gatewayExchangeFor`.
 */
export interface GatewayExchange {
  /** The custos dialect (and egress table) name. */
  readonly exchange: string;
  /** The request carries the exchange's credentials (API key, signature or timestamp header/parameter). */
  carriesCredentials(req: BotRequest): boolean;
  /** The request without what custos re-signs; throws GatewayRequestError when it cannot be read. */
  strip(req: BotRequest): StrippedRequest;
  refusal(kind: ShapedRefusal, detail: RefusalDetail): RefusalAnswer;
  /** The private-stream login, where the gateway proxies the exchange's private WebSocket. */
  readonly websocket?: GatewayWebSocketLogin;
}

/** The bot's request cannot be turned into one custos signs (answered 400 in the exchange's terms). */
export class GatewayRequestError extends Error {
  override readonly name = "GatewayRequestError";
}

/** A form string without the named parameters, and the last value of each removed one. */
export function withoutParams(form: string, names: ReadonlySet<string>): { form: string; removed: Map<string, string> } {
  const removed = new Map<string, string>();
  const kept: string[] = [];
  for (const pair of form === "" ? [] : form.split("&")) {
    const eq = pair.indexOf("=");
    const name = eq < 0 ? pair : pair.slice(0, eq);
    if (names.has(name)) removed.set(name, eq < 0 ? "" : pair.slice(eq + 1));
    else kept.push(pair);
  }
  return { form: kept.join("&"), removed };
}

/** A receive window in ms as the bot stated it, or undefined; refuses a malformed one. */
export function recvWindow(text: string | undefined): number | undefined {
  if (text === undefined || text === "") return undefined;
  if (!/^\d{1,6}$/.test(text)) throw new GatewayRequestError("the receive window is not a whole number of milliseconds");
  return Number(text);
}
