import type { RefusalDetail } from "./gateway-exchange.js";

/** What the gateway keeps from a bot's login frame: never its signature, timestamp or API key. */
export interface BotLogin {
  /** OKX: the API passphrase the bot sent (OKX wants it in clear; custos never stores it). */
  passphrase?: string;
  /** The bot's own request id, echoed in the signed frame so the bot can match the answer. */
  requestId?: string | number;
}

/**
 * One exchange's private-stream login as the gateway handles it: which bot frame is the login,
 * how custos's signed login is framed, and how a refused login is answered in the exchange's
 * terms (so a client such as ccxt raises an authentication error) before the socket closes.
 */
export interface GatewayWebSocketLogin {
  /** The bot's text frame as a login, or undefined when it is anything else. */
  login(frame: string): BotLogin | undefined;
  /** The frame sent upstream: custos's signed message, with the bot's request id kept. */
  signedFrame(bot: BotLogin, custosMessage: string): string;
  /** The exchange's login-failure frame for a login custos refused. */
  refusalFrame(bot: BotLogin, detail: RefusalDetail): string;
}

/** A frame as a JSON object, or undefined (not JSON, or not an object). */
export function jsonObject(frame: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(frame);
    return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The login layout OKX and Bitget share, `{"op":"login","args":[{apiKey, passphrase, timestamp,
 * sign}]}`: only the passphrase is kept (the exchange wants it in clear; custos signs the rest).
 */
export function passphraseLogin(frame: string): BotLogin | undefined {
  const msg = jsonObject(frame);
  if (msg?.op !== "login") return undefined;
  const args = Array.isArray(msg.args) ? (msg.args[0] as Record<string, unknown> | undefined) : undefined;
  const passphrase = typeof args?.passphrase === "string" ? args.passphrase : undefined;
  return passphrase ? { passphrase } : {};
}
