import { schemaTable, type SchemaTable } from "./param-schema.js";

/*
 * The request parameters of every Bybit v5 endpoint custos signs by default (the trade, read
 * and account entries of bybit.ts's TABLE), copied from the "Request Parameters" table of each
 * endpoint's page in Bybit's official v5 API reference, bybit-exchange.github.io/docs/v5 (the
 * page sources are github.com/bybit-exchange/docs, docs/v5/**.mdx; read at commit 072c197d,
 * 2026-07-24). The comment above each entry names the page. Pages under "abandon/" are the
 * reference's deprecated-endpoint pages: the endpoints still answer and ccxt still calls them.
 *
 * GET: the query parameters; POST: the top-level JSON fields. The v5 signature covers neither
 * the method nor the path (see bybit.ts), so these lists, not the path, decide what a signature
 * can do: a request carrying anything else is refused (policy rule `param-schema`).
 *
 * No parameter is here that the docs do not list: every field ccxt 4.5 sends to these endpoints
 * (createOrder, editOrder, cancelOrder(s), createOrders, fetchOrder, fetch*Orders,
 * fetchMyTrades, fetchBalance, fetchPositions, setLeverage, setMarginMode, setPositionMode,
 * fetchTradingFee(s), fetchLedger, fetchDeposits, fetchDepositAddress, isUnifiedEnabled) is
 * documented. No `values` are needed: no refused endpoint's required parameters fit inside any
 * of these lists by name alone (test/unit/exchanges/bybit-catalog.test.ts).
 */

// ---- orders (docs/v5/order/*) ----

/** The take-profit / stop-loss and trigger fields an order creation and an amendment share. */
const ORDER_TPSL = ["triggerPrice", "triggerBy", "orderIv", "takeProfit", "stopLoss", "tpTriggerBy", "slTriggerBy", "tpslMode", "tpLimitPrice", "slLimitPrice"];

/** One order of "Batch Place Order" (order/batch-place): Place Order's fields but category and five newer ones. */
const CREATE_ITEM = [
  "symbol",
  "isLeverage",
  "side",
  "orderType",
  "qty",
  "marketUnit",
  "price",
  "triggerDirection",
  "orderFilter",
  "timeInForce",
  "positionIdx",
  "orderLinkId",
  "reduceOnly",
  "closeOnTrigger",
  "smpType",
  "mmp",
  "tpOrderType",
  "slOrderType",
  ...ORDER_TPSL,
];
/** One amendment of "Batch Amend Order" (order/batch-amend): the same as Amend Order without category. */
const AMEND_ITEM = ["symbol", "orderId", "orderLinkId", "qty", "price", ...ORDER_TPSL];
/** One cancellation of "Batch Cancel Order" (order/batch-cancel). */
const CANCEL_ITEM = ["symbol", "orderId", "orderLinkId"];

/** Paging and time filters of the list endpoints. */
const PAGE = ["limit", "cursor"];
const SPAN = ["startTime", "endTime"];

/**
 * The documented parameters of each default-allowed Bybit v5 endpoint, keyed "METHOD /path".
 * Batch endpoints list their top-level fields here (`category`, `request`); the fields of one
 * `request` item are in `BYBIT_BATCH_ITEMS`.
 */
export const BYBIT_PARAMS: SchemaTable = schemaTable({
  // order/create-order
  "POST /v5/order/create": ["category", ...CREATE_ITEM, "rpiTakerAccess", "slippageToleranceType", "slippageTolerance", "bboSideType", "bboLevel"],
  // order/amend-order
  "POST /v5/order/amend": ["category", ...AMEND_ITEM],
  // order/cancel-order
  "POST /v5/order/cancel": ["category", ...CANCEL_ITEM, "orderFilter"],
  // order/cancel-all
  "POST /v5/order/cancel-all": ["category", "symbol", "baseCoin", "settleCoin", "orderFilter", "stopOrderType"],
  // order/batch-place, order/batch-amend, order/batch-cancel: the category is top-level only
  "POST /v5/order/create-batch": ["category", "request"],
  "POST /v5/order/amend-batch": ["category", "request"],
  "POST /v5/order/cancel-batch": ["category", "request"],
  // order/dcp
  "POST /v5/order/disconnected-cancel-all": ["product", "timeWindow"],

  // ---- positions (docs/v5/position/*) ----
  // position/leverage
  "POST /v5/position/set-leverage": ["category", "symbol", "buyLeverage", "sellLeverage"],
  // abandon/cross-isolate
  "POST /v5/position/switch-isolated": ["category", "symbol", "tradeMode", "buyLeverage", "sellLeverage"],
  // position/position-mode
  "POST /v5/position/switch-mode": ["category", "symbol", "coin", "mode"],
  // abandon/tpsl-mode
  "POST /v5/position/set-tpsl-mode": ["category", "symbol", "tpSlMode"],
  // abandon/set-risk-limit
  "POST /v5/position/set-risk-limit": ["category", "symbol", "riskId", "positionIdx"],
  // position/trading-stop
  "POST /v5/position/trading-stop": [
    "category",
    "symbol",
    "tpslMode",
    "positionIdx",
    "takeProfit",
    "stopLoss",
    "trailingStop",
    "tpTriggerBy",
    "slTriggerBy",
    "activePrice",
    "tpSize",
    "slSize",
    "tpLimitPrice",
    "slLimitPrice",
    "tpOrderType",
    "slOrderType",
  ],
  // position/auto-add-margin
  "POST /v5/position/set-auto-add-margin": ["category", "symbol", "autoAddMargin", "positionIdx"],
  // position/manual-add-margin
  "POST /v5/position/add-margin": ["category", "symbol", "margin", "positionIdx"],
  // position/confirm-mmr
  "POST /v5/position/confirm-pending-mmr": ["category", "symbol"],

  // ---- account settings (docs/v5/account/*) ----
  // account/set-margin-mode
  "POST /v5/account/set-margin-mode": ["setMarginMode"],
  // account/set-spot-hedge
  "POST /v5/account/set-hedging-mode": ["setHedgingMode"],

  // ---- reads ----
  // order/open-order
  "GET /v5/order/realtime": ["category", "symbol", "baseCoin", "settleCoin", "orderId", "orderLinkId", "openOnly", "orderFilter", ...PAGE],
  // order/order-list
  "GET /v5/order/history": ["category", "symbol", "baseCoin", "settleCoin", "orderId", "orderLinkId", "orderFilter", "orderStatus", ...SPAN, ...PAGE],
  // order/spot-borrow-quota
  "GET /v5/order/spot-borrow-check": ["category", "symbol", "side"],
  // order/execution
  // `size`: not in the reference; ccxt's fetchFundingHistory sends it (Bybit ignores it).
  "GET /v5/execution/list": ["category", "symbol", "orderId", "orderLinkId", "baseCoin", "settleCoin", ...SPAN, "execType", ...PAGE, "size"],
  // account/wallet-balance
  "GET /v5/account/wallet-balance": ["accountType", "coin"],
  // account/account-info: no parameters
  "GET /v5/account/info": [],
  // account/fee-rate
  "GET /v5/account/fee-rate": ["category", "symbol", "baseCoin"],
  // account/transaction-log
  "GET /v5/account/transaction-log": ["accountType", "category", "currency", "baseCoin", "type", "transSubType", ...SPAN, ...PAGE],
  // abandon/contract-transaction-log
  "GET /v5/account/contract-transaction-log": ["currency", "baseCoin", "type", ...SPAN, ...PAGE],
  // account/collateral-info
  "GET /v5/account/collateral-info": ["currency"],
  // account/borrow-history
  "GET /v5/account/borrow-history": ["currency", ...SPAN, ...PAGE],
  // position/position
  "GET /v5/position/list": ["category", "symbol", "baseCoin", "settleCoin", ...PAGE],
  // position/close-pnl
  "GET /v5/position/closed-pnl": ["category", "symbol", ...SPAN, ...PAGE],
  // position/close-position
  "GET /v5/position/get-closed-positions": ["category", "symbol", ...SPAN, ...PAGE],
  // position/move-position-history
  "GET /v5/position/move-history": ["category", "symbol", ...SPAN, "status", "blockTradeId", ...PAGE],
  // asset/balance/all-balance
  "GET /v5/asset/transfer/query-account-coins-balance": ["memberId", "accountType", "coin", "withBonus"],
  // asset/balance/account-coin-balance
  "GET /v5/asset/transfer/query-account-coin-balance": [
    "memberId",
    "toMemberId",
    "accountType",
    "toAccountType",
    "coin",
    "withBonus",
    "withTransferSafeAmount",
    "withLtvTransferSafeAmount",
  ],
  // abandon/asset-info
  "GET /v5/asset/transfer/query-asset-info": ["accountType", "coin"],
  // asset/coin-info
  "GET /v5/asset/coin/query-info": ["coin"],
  // asset/balance/asset-overview
  "GET /v5/asset/asset-overview": ["memberId", "valuationCurrency", "accountType"],
  // asset/deposit/master-deposit-addr
  "GET /v5/asset/deposit/query-address": ["coin", "chainType"],
  // asset/deposit/deposit-record
  "GET /v5/asset/deposit/query-record": ["id", "txID", "coin", ...SPAN, ...PAGE],
  // user/apikey-info: no parameters
  "GET /v5/user/query-api": [],
});

/**
 * The fields of one item of a batch endpoint's `request` array (the docs' "> field" rows). The
 * docs list no per-item `category`: Bybit reads the top-level one, so an item naming its own
 * is refused (bybit.ts).
 */
export const BYBIT_BATCH_ITEMS: SchemaTable = schemaTable({
  "POST /v5/order/create-batch": CREATE_ITEM,
  "POST /v5/order/amend-batch": AMEND_ITEM,
  "POST /v5/order/cancel-batch": CANCEL_ITEM,
});
