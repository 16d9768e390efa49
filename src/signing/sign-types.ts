import type { SignedExchangeRequest, SignedWebSocketAuth, ExchangeRequest, WebSocketAuthInput } from "../exchanges/dialect.js";

/*
 * The sign path's request and result shapes (SignService's methods take and return them).
 */

/** SignExchangeRequest and SendExchangeRequest, as the domain reads them. */
export interface ExchangeSignRequest {
  keyId: string;
  version: number;
  request: ExchangeRequest;
  /** 0 / "" = custos chooses. */
  timestampMs: number;
  nonce: string;
  expires: number;
  recvWindowMs: number;
  /** The key's API passphrase (OKX, Bitget; KuCoin's is fixed at import); never logged or stored. */
  passphrase: string;
  /** The API key's version at the exchange (KuCoin "2" / "3"); "" = the dialect's default. */
  apiKeyVersion?: string;
  /** Sign with no nonce where the exchange makes it optional; the key's policy must allow it. */
  omitNonce?: boolean;
}

export interface WebSocketAuthSignRequest {
  keyId: string;
  version: number;
  input: WebSocketAuthInput;
  timestampMs: number;
  nonce: string;
  expires: number;
  passphrase: string;
}

export interface WebSocketAuthSignResult extends SignedWebSocketAuth {
  version: number;
  apiKeyId: string;
}

export interface ExchangeSignResult extends SignedExchangeRequest {
  version: number;
  apiKeyId: string;
  endpointClass: string;
}

/** SendExchangeRequest's result: the exchange's answer, verbatim, with the key version that signed. */
export interface ExchangeSendResult {
  status: number;
  /** Lower-case names, in the order received. */
  headers: Array<[string, string]>;
  body: Buffer;
  version: number;
  endpointClass: string;
  roundTripUs: number;
}
