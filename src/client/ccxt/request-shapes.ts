/**
 * How each supported ccxt exchange lays out a signed request, so the adapter can hand custos
 * the request ccxt built (minus the signature) together with the timestamp, nonce or expiry ccxt
 * chose. One entry per ccxt exchange id; everything else in the adapter is exchange-neutral.
 */
import type { ExchangeRequestInput } from "../custos-client.js";

/** A request as ccxt's `sign()` built it, the signature still a placeholder token. */
export interface CcxtRequest {
  method: ExchangeRequestInput["method"];
  /** Scheme and host, e.g. "https://fapi.binance.com". */
  origin: string;
  /** The path exactly as in ccxt's URL. */
  path: string;
  /** The query exactly as in ccxt's URL (without "?"), or "". */
  query: string;
  body: string;
  /** Header lookup, case-insensitive. */
  header(name: string): string | undefined;
  /** The exchange's `password` (OKX, Bitget: the API passphrase, sent per request; never KuCoin's). */
  password: string | undefined;
}

/** The fields of a `SignExchangeRequest` that depend on the exchange (key id etc. are added later). */
export type CustosFields = Omit<ExchangeRequestInput, "keyId" | "version">;

/** One exchange's layout: ccxt's request (tokens in place) → what custos must sign. */
export interface RequestShape {
  /** The custos dialect (key exchange) that signs for this ccxt exchange. */
  readonly dialect: string;
  /**
   * Headers custos returns that ccxt does not send, and what to do with them: "add" for signed
   * ones the exchange needs (Kraken Futures' Nonce), "skip" for unsigned ones ccxt leaves out
   * (Bitget's `locale`, which only picks the language of error messages). Any other header
   * custos sets must already be in ccxt's request with the same value.
   */
  readonly extraHeaders?: Readonly<Record<string, "add" | "skip">>;
  /** ccxt sends no nonce, and the exchange takes requests without one (withCustos `omitOptionalNonce`). */
  readonly optionalNonce?: boolean;
  /**
   * The passphrase is part of the custos key (KuCoin: its HMAC is fixed at import): ccxt's
   * `password` is never sent to custos, and ccxt gets a placeholder when it has none.
   */
  readonly passphraseInKey?: boolean;
  toCustos(req: CcxtRequest, tokens: readonly string[]): CustosFields;
}

/** ccxt's request does not have the layout the exchange's entry expects (the adapter sends nothing). */
class ShapeError extends Error {
  override readonly name = "ShapeError";
}

function required(req: CcxtRequest, name: string): string {
  const v = req.header(name);
  if (v === undefined) throw new ShapeError(`ccxt sent no ${name} header`);
  return v;
}

function integer(text: string | undefined, what: string): number {
  if (text === undefined || !/^\d{1,16}$/.test(text)) throw new ShapeError(`${what} ${JSON.stringify(text)} is not an integer`);
  return Number(text);
}

function base(req: CcxtRequest): Pick<CustosFields, "method" | "path" | "query" | "body"> {
  return { method: req.method, path: req.path, query: req.query, body: req.body };
}

function passphrase(req: CcxtRequest): { passphrase?: string } {
  return req.password ? { passphrase: req.password } : {};
}

/** The value of the last `name=` parameter of a form string, if any. */
function formValue(form: string, name: string): string | undefined {
  let found: string | undefined;
  for (const pair of form === "" ? [] : form.split("&")) {
    const eq = pair.indexOf("=");
    if (eq > 0 && pair.slice(0, eq) === name) found = pair.slice(eq + 1);
  }
  return found;
}

/**
 * Binance: ccxt appends `&signature=TOKEN` to the query (GET, DELETE) or to the form body
 * (POST, PUT), after `timestamp` (first) and `recvWindow` (last of the caller's). custos is
 * given the same form without the signature, and accepts `timestamp`/`recvWindow` where ccxt
 * put them because they equal the values it signs with (the caller-supplied timestamp still
 * passes the key's skew policy).
 */
const binance: RequestShape = {
  dialect: "binance",
  toCustos(req, tokens) {
    const [token] = tokens;
    const tail = `&signature=${token}`;
    const inBody = req.body.endsWith(tail);
    const form = inBody ? req.body : req.query;
    if (tokens.length !== 1 || !form.endsWith(tail)) throw new ShapeError("ccxt's binance request does not end with its signature");
    const unsigned = form.slice(0, -tail.length);
    const recvWindow = formValue(unsigned, "recvWindow");
    return {
      ...base(req),
      ...(inBody ? { body: unsigned } : { query: unsigned }),
      timestampMs: integer(formValue(unsigned, "timestamp"), "timestamp"),
      ...(recvWindow !== undefined ? { recvWindowMs: integer(recvWindow, "recvWindow") } : {}),
    };
  },
};

const bybit: RequestShape = {
  dialect: "bybit",
  toCustos(req) {
    return {
      ...base(req),
      timestampMs: integer(required(req, "X-BAPI-TIMESTAMP"), "X-BAPI-TIMESTAMP"),
      recvWindowMs: integer(required(req, "X-BAPI-RECV-WINDOW"), "X-BAPI-RECV-WINDOW"),
    };
  },
};

const okx: RequestShape = {
  dialect: "okx",
  toCustos(req) {
    const iso = required(req, "OK-ACCESS-TIMESTAMP");
    const ms = Date.parse(iso);
    if (!Number.isSafeInteger(ms)) throw new ShapeError(`OK-ACCESS-TIMESTAMP ${JSON.stringify(iso)} is not a time`);
    return { ...base(req), timestampMs: ms, ...passphrase(req) };
  },
};

/** Deribit: `Authorization: deri-hmac-sha256 id=…,ts=…,sig=TOKEN,nonce=…`. */
const deribit: RequestShape = {
  dialect: "deribit",
  toCustos(req) {
    const auth = required(req, "Authorization");
    const m = /^deri-hmac-sha256 id=[^,]*,ts=(\d+),sig=[^,]*,nonce=([^,]*)$/.exec(auth);
    if (!m) throw new ShapeError("ccxt's deribit Authorization header has an unexpected form");
    return { ...base(req), timestampMs: integer(m[1], "ts"), nonce: m[2]! };
  },
};

const bitmex: RequestShape = {
  dialect: "bitmex",
  toCustos(req) {
    return { ...base(req), expires: integer(required(req, "api-expires"), "api-expires") };
  },
};

/**
 * Kraken Futures: ccxt sends no `Nonce`, so nothing limits how long its signature can be
 * replayed. By default custos signs with its own strictly increasing nonce and the adapter adds
 * the `Nonce` header it returns: the one byte-level difference from plaintext ccxt. With
 * `omitOptionalNonce` (and a key policy that allows untimed requests) the bytes are ccxt's.
 */
const krakenfutures: RequestShape = {
  dialect: "krakenfutures",
  extraHeaders: { nonce: "add" },
  optionalNonce: true,
  toCustos(req) {
    return base(req);
  },
};

const bitget: RequestShape = {
  dialect: "bitget",
  extraHeaders: { locale: "skip" },
  toCustos(req) {
    return { ...base(req), timestampMs: integer(required(req, "ACCESS-TIMESTAMP"), "ACCESS-TIMESTAMP"), ...passphrase(req) };
  },
};

/** Gate signs whole seconds (ccxt: nonce() / 1000); custos derives the same seconds from ms. */
const gate: RequestShape = {
  dialect: "gate",
  toCustos(req) {
    return { ...base(req), timestampMs: integer(required(req, "Timestamp"), "Timestamp") * 1000 };
  },
};

/**
 * KuCoin: one MAC, of the request; the key version comes from ccxt's header. ccxt's passphrase
 * MAC (a placeholder token here) is bound to the KC-API-PASSPHRASE custos stores with the key,
 * so no passphrase is sent: custos refuses one rather than HMAC caller bytes.
 */
const kucoinfutures: RequestShape = {
  dialect: "kucoinfutures",
  passphraseInKey: true,
  toCustos(req) {
    return {
      ...base(req),
      timestampMs: integer(required(req, "KC-API-TIMESTAMP"), "KC-API-TIMESTAMP"),
      apiKeyVersion: required(req, "KC-API-KEY-VERSION"),
    };
  },
};

/** ccxt exchange id → layout. ccxt 4.5.78 is the last release with a `bitmex` class; later releases have none. */
const SHAPES: ReadonlyMap<string, RequestShape> = new Map([
  ["binance", binance],
  ["binanceusdm", binance],
  ["binancecoinm", binance],
  ["bybit", bybit],
  ["okx", okx],
  ["deribit", deribit],
  ["bitmex", bitmex],
  ["krakenfutures", krakenfutures],
  ["bitget", bitget],
  ["gate", gate],
  ["kucoinfutures", kucoinfutures],
]);

/** The layout for a ccxt exchange id, or undefined when the adapter does not cover it. */
export function requestShapeFor(ccxtId: string): RequestShape | undefined {
  return SHAPES.get(ccxtId);
}

/** The ccxt exchange ids the adapter covers. */
export function supportedCcxtExchanges(): string[] {
  return [...SHAPES.keys()];
}

export { ShapeError };
