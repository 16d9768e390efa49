import { CustosError } from "../errors.js";
import type {
  Dialect,
  EndpointClass,
  ExchangeRequest,
  OrderFact,
  PreparedRequest,
  RequestReading,
  PreparedWebSocketAuth,
  SigningContext,
  WebSocketAuthInput,
} from "./dialect.js";
import { isObject, largestQuantity, oneMac, symbolOf } from "./facts.js";

/*
 * Deribit API v2, HTTP REST with "Deribit signature credentials" (docs.deribit.com, Authentication →
 * "Additional authorization method - Deribit signature credentials"):
 *
 *   RequestData  = UPPERCASE(HTTP_METHOD()) + "\n" + URI() + "\n" + RequestBody + "\n"
 *   StringToSign = Timestamp + "\n" + Nonce + "\n" + RequestData
 *   Signature    = HEX_STRING(HMAC-SHA256(ClientSecret, StringToSign))
 *   Authorization: deri-hmac-sha256 id=ClientId,ts=Timestamp,sig=Signature,nonce=Nonce
 *
 * URI() is the path with its query string (the docs' example signs
 * "/api/v2/private/get_account_summary?currency=BTC"). Timestamp is in milliseconds and valid for 60 s.
 *
 * WebSocket login (docs.deribit.com/articles/authentication, "Client Signature (WebSocket)"): `public/auth`
 * with grant_type "client_signature" and
 *
 *   StringToSign = Timestamp + "\n" + Nonce + "\n" + Data
 *   Signature    = HEX_STRING(HMAC-SHA256(ClientSecret, StringToSign))
 *
 * Timestamp in milliseconds (a JSON number), Nonce single-use, Data optional ("" here: the string still ends
 * with "\n" after Nonce). The nonce may hold no whitespace: a "\n" in it could turn the login string into a
 * REST StringToSign ("ts\nnonce\nGET\n/api/v2/private/withdraw?...\n\n").
 */

const PRIVATE_PREFIX = "/api/v2/private/";
/** Printable ASCII a WHATWG URL keeps as is in a query (no space, ", #, ', <, >): anything else is re-encoded on the way out, so the sent bytes would not be the signed bytes. */
const QUERY_SAFE = /^[\x21\x24-\x26\x28-\x3b\x3d\x3f-\x7e]*$/;
/** Plain segments only: no "..", "%2F" or empty segment for a client to normalise after classification. */
const PATH = /^(\/[A-Za-z0-9_-]+)+$/;
const METHOD_NAME = /^[a-z_]+$/;

const CLASSES = new Map<string, EndpointClass>([
  // Trading. Block trades and mass_quote are left unknown: they place orders this dialect cannot size.
  ...names("trade", [
    "buy",
    "sell",
    "edit",
    "edit_by_label",
    "cancel",
    "cancel_all",
    "cancel_all_by_currency",
    "cancel_all_by_currency_pair",
    "cancel_all_by_instrument",
    "cancel_all_by_kind_or_type",
    "cancel_by_label",
    "cancel_quotes",
    "close_position",
    "enable_cancel_on_disconnect",
    "disable_cancel_on_disconnect",
    "reset_mmp",
    "set_mmp_config",
  ]),
  ...names("read", [
    "get_open_orders",
    "get_open_orders_by_currency",
    "get_open_orders_by_instrument",
    "get_open_orders_by_label",
    "get_order_history_by_currency",
    "get_order_history_by_instrument",
    "get_order_state",
    "get_order_state_by_label",
    "get_order_margin_by_ids",
    "get_trigger_order_history",
    "get_stop_order_history",
    "get_user_trades_by_currency",
    "get_user_trades_by_currency_and_time",
    "get_user_trades_by_instrument",
    "get_user_trades_by_instrument_and_time",
    "get_user_trades_by_order",
    "get_settlement_history_by_instrument",
    "get_settlement_history_by_currency",
    "get_cancel_on_disconnect",
    "get_mmp_config",
    "get_mmp_status",
    "get_margins",
  ]),
  ...names("account", [
    "get_account_summary",
    "get_account_summaries",
    "get_position",
    "get_positions",
    "get_portfolio_margins",
    "get_subaccounts",
    "get_subaccounts_details",
    "get_transaction_log",
    "get_deposits",
    "get_withdrawals",
    "get_transfers",
    "get_current_deposit_address",
    "get_address_book",
    "simulate_portfolio",
  ]),
  // move_positions moves positions between subaccounts at a caller-chosen price: value moves.
  ...names("transfer", ["submit_transfer_to_subaccount", "submit_transfer_between_subaccounts", "cancel_transfer_by_id", "move_positions"]),
  // A transfer to another Deribit user and address-book edits take funds (or open a way for them) out of the owner's accounts.
  ...names("withdraw", [
    "withdraw",
    "cancel_withdrawal",
    "submit_transfer_to_user",
    "add_to_address_book",
    "update_in_address_book",
    "remove_from_address_book",
  ]),
  ...names("key-management", [
    "create_api_key",
    "edit_api_key",
    "change_api_key_name",
    "change_scope_in_api_key",
    "disable_api_key",
    "enable_api_key",
    "list_api_keys",
    "remove_api_key",
    "reset_api_key",
    "set_api_key_as_default",
  ]),
]);

/** Methods whose `amount` is an order quantity on `instrument_name` (none for `edit`, which names an order id). */
const ORDER_METHODS = new Set(["buy", "sell", "edit", "edit_by_label"]);

/**
 * Deribit v2 REST with the `deri-hmac-sha256` Authorization header. Requests are JSON-RPC methods
 * addressed as `/api/v2/private/<method>?<params>` (or POSTed as a JSON-RPC body); they are classified by
 * method name, and a body that names another method than the path is `unknown`.
 */
export const deribit = {
  exchange: "deribit",
  /** ts + nonce + METHOD + URI + body; the client id travels unsigned. Every such string is also a login string. */
  binding: { method: true, path: true, query: true, body: true, apiKey: false, timestamp: true, nonce: true, headers: [], host: false },
  signaturesAreLogins: true,
  algorithm: "hmac-sha256",
  secretEncoding: "utf8",

  /** One reading: query and JSON body parsed once for class, symbols and orders. */
  read(req: ExchangeRequest): RequestReading {
    const params = new Params(req);
    return {
      endpointClass: deribit.classify(req, params),
      symbols: deribit.symbols(req, params),
      orders: deribit.orders(req, params),
      schemaMisfit: undefined,
      prepare: (ctx) => deribit.prepare(req, ctx),
    };
  },

  classify(req: ExchangeRequest, params = new Params(req)): EndpointClass {
    if (req.method !== "GET" && req.method !== "POST") return "unknown";
    const method = rpcMethod(req, params.body);
    return (method !== null && CLASSES.get(method)) || "unknown";
  },

  symbols(req: ExchangeRequest, params = new Params(req)): string[] {
    return [...new Set(params.values("instrument_name").map(symbolOf))];
  },

  orders(req: ExchangeRequest, params = new Params(req)): OrderFact[] {
    const method = rpcMethod(req, params.body);
    if (method === null || !ORDER_METHODS.has(method)) return [];
    // `contracts` is a second size form (contracts × contract size = amount): custos cannot measure it in
    // amount units, so an order naming it counts as unmeasurable (NaN fails every quantity limit).
    const quantity = params.values("contracts").length > 0 ? Number.NaN : largestQuantity(params.values("amount"));
    const symbols = deribit.symbols(req, params);
    // "" = the request names no instrument (edit by order id): only a "*" limit can apply to it.
    return (symbols.length > 0 ? symbols : [""]).map((symbol) => ({ symbol, quantity }));
  },

  prepare(req: ExchangeRequest, ctx: SigningContext): PreparedRequest {
    if (!PATH.test(req.path)) invalid(`path ${JSON.stringify(req.path)} is not a plain REST path`);
    if (!QUERY_SAFE.test(req.query)) invalid("the query must be percent-encoded printable ASCII");
    if (!Number.isSafeInteger(ctx.timestamp) || ctx.timestamp < 0) invalid("timestamp must be a non-negative integer of milliseconds");
    // Both travel inside a comma-separated header: a comma, "=" or whitespace would forge a field.
    if (!headerToken(ctx.nonce)) invalid("nonce must be printable ASCII without spaces, commas or '='");
    if (!headerToken(ctx.apiKeyId)) invalid("client id must be printable ASCII without spaces, commas or '='");
    const ts = String(ctx.timestamp);
    const uri = req.query === "" ? req.path : `${req.path}?${req.query}`;
    const stringToSign = `${ts}\n${ctx.nonce}\n${req.method}\n${uri}\n${req.body}\n`;
    return {
      toSign: [Buffer.from(stringToSign, "utf8")],
      finish(macs: Buffer[]) {
        const signature = oneMac("deribit", "hmac-sha256", macs).toString("hex");
        return {
          headers: [["Authorization", `deri-hmac-sha256 id=${ctx.apiKeyId},ts=${ts},sig=${signature},nonce=${ctx.nonce}`]],
          params: [],
          query: req.query,
          body: req.body,
          signature,
          timestamp: ts,
        };
      },
    };
  },

  /**
   * The `public/auth` request with `client_signature`. The message carries no JSON-RPC `id`, which Deribit
   * makes optional ("If it is included, then the response will contain the same identifier"): a client that
   * correlates responses adds its own; it is not signed.
   */
  websocketAuth(_input: WebSocketAuthInput, ctx: SigningContext): PreparedWebSocketAuth {
    if (!Number.isSafeInteger(ctx.timestamp) || ctx.timestamp <= 0) invalid("timestamp must be a positive integer of milliseconds");
    if (!/^[\x21-\x7e]+$/.test(ctx.nonce)) invalid("nonce must be printable ASCII without whitespace");
    if (!/^[\x21-\x7e]+$/.test(ctx.apiKeyId)) invalid("client id must be printable ASCII without spaces");
    const ts = String(ctx.timestamp);
    const data = "";
    return {
      toSign: [Buffer.from(`${ts}\n${ctx.nonce}\n${data}`, "utf8")],
      finish(macs: Buffer[]) {
        const signature = oneMac("deribit", "hmac-sha256", macs).toString("hex");
        const params = { grant_type: "client_signature", client_id: ctx.apiKeyId, timestamp: ctx.timestamp, nonce: ctx.nonce, data, signature };
        return {
          fields: Object.entries(params).map(([k, v]): [string, string] => [k, String(v)]),
          message: JSON.stringify({ jsonrpc: "2.0", method: "public/auth", params }),
          signature,
          timestamp: ts,
        };
      },
    };
  },
} satisfies Dialect;

function names(cls: EndpointClass, methods: string[]): Array<[string, EndpointClass]> {
  return methods.map((m) => [m, cls]);
}

/** The private method a request calls, or null when it is not one, or path and body disagree. */
function rpcMethod(req: ExchangeRequest, body = jsonBody(req.body)): string | null {
  let fromPath: string | null = null;
  if (req.path.startsWith(PRIVATE_PREFIX)) {
    fromPath = req.path.slice(PRIVATE_PREFIX.length);
    if (!METHOD_NAME.test(fromPath)) return null;
  } else if (req.path !== "/api/v2") {
    return null;
  }
  if (body === null) return null;
  if (body === undefined || body.method === undefined) return fromPath;
  if (typeof body.method !== "string" || !body.method.startsWith("private/")) return null;
  const fromBody = body.method.slice("private/".length);
  if (!METHOD_NAME.test(fromBody) || (fromPath !== null && fromPath !== fromBody)) return null;
  return fromBody;
}

/** undefined for an empty body, null for anything but a JSON object. */
function jsonBody(body: string): Record<string, unknown> | null | undefined {
  if (body.trim() === "") return undefined;
  try {
    const v: unknown = JSON.parse(body);
    return isObject(v) ? v : null;
  } catch {
    return null;
  }
}

/** A request's query and JSON body, parsed once per reading. */
class Params {
  private readonly query: URLSearchParams;
  /** undefined for an empty body, null for anything but a JSON object. */
  readonly body: Record<string, unknown> | null | undefined;

  constructor(req: ExchangeRequest) {
    this.query = new URLSearchParams(req.query);
    this.body = jsonBody(req.body);
  }

  /** Every value a parameter has, wherever the exchange might read it: query, JSON-RPC params, body root. */
  values(name: string): unknown[] {
    const out: unknown[] = this.query.getAll(name);
    const body = this.body;
    if (body) {
      if (Object.hasOwn(body, name)) out.push(body[name]);
      if (isObject(body.params) && Object.hasOwn(body.params, name)) out.push(body.params[name]);
    }
    return out;
  }
}

function headerToken(s: string): boolean {
  return /^[\x21-\x7e]+$/.test(s) && !/[,=]/.test(s);
}

function invalid(message: string): never {
  throw new CustosError("INVALID_ARGUMENT", `deribit: ${message}`);
}
