/** The ccxt drop-in: `withCustos(new ccxt.binanceusdm({ apiKey }), { keyId, dataDir })`. */
export { withCustos, closeCustos, type CcxtExchangeLike, type ExchangeRequestSigner, type WithCustosOptions } from "./with-custos.js";
export { CcxtCustosError, type CcxtCustosErrorCode } from "./errors.js";
export { supportedCcxtExchanges } from "./request-shapes.js";
