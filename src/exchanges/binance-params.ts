import { schemaTable, type SchemaTable } from "./param-schema.js";

/*
 * The parameters of every Binance REST endpoint the default policy signs (binance.ts TABLE,
 * classes trade/read/account), from Binance's API references:
 *   - USDⓈ-M futures: developers.binance.com/docs/derivatives/usds-margined-futures/{trade,account,user-data-streams}/rest-api
 *   - COIN-M futures: developers.binance.com/docs/derivatives/coin-margined-futures/{trade,account,user-data-streams}/rest-api
 *   - spot: binance-spot-api-docs rest-api.md, "Trading endpoints" and "Account endpoints"
 *   - wallet: developers.binance.com/docs/wallet/{capital,account,asset}
 * (cross-checked against the request builders Binance generates from the same references,
 * binance/binance-connector-js clients/*). `timestamp`, `recvWindow` and `signature` are
 * custos's and never listed. Binance's signature covers neither the method nor the path, so a
 * request signed for one of these endpoints must not carry a parameter its endpoint does not
 * document: test/unit/exchanges/binance-catalog.test.ts shows that then no withdrawal, transfer
 * or key-management endpoint's required parameters fit.
 */

/** Space-separated names, so that one endpoint fits on one line. */
const w = (names: string): string[] => names.split(" ").filter((n) => n !== "");

// `type` is shared with /sapi/v1/asset/transfer (MAIN_UMFUTURE, …): orders list the order types.
const FUTURES_ORDER_TYPES = w("LIMIT MARKET STOP STOP_MARKET TAKE_PROFIT TAKE_PROFIT_MARKET TRAILING_STOP_MARKET");
const SPOT_ORDER_TYPES = w("LIMIT MARKET STOP_LOSS STOP_LOSS_LIMIT TAKE_PROFIT TAKE_PROFIT_LIMIT LIMIT_MAKER");
/** positionMargin: 1 adds margin, 2 reduces it (and its history filters by the same). */
const MARGIN_CHANGE_TYPES = ["1", "2"];

const futuresOrder = (names: string) => ({ names: w(names), values: { type: FUTURES_ORDER_TYPES } });
const spotOrder = (names: string) => ({ names: w(names), values: { type: SPOT_ORDER_TYPES } });

// ---- shared parameter lists ----

/**
 * Futures new order. The conditional fields (stopPrice … priceProtect) moved to the algo
 * order service on USDⓈ-M, but order/test and COIN-M still document them.
 */
const FUTURES_ORDER =
  "symbol side positionSide type timeInForce reduceOnly quantity price newClientOrderId newOrderRespType priceMatch selfTradePreventionMode goodTillDate " +
  "stopPrice closePosition activationPrice callbackRate workingType priceProtect";
const FUTURES_MODIFY = "orderId origClientOrderId symbol side quantity price priceMatch modifyId";
const ORDER_ID = "symbol orderId origClientOrderId";
const BATCH_CANCEL = "symbol orderIdList origClientOrderIdList";
const DOWNLOAD_RANGE = "startTime endTime";

const SPOT_ORDER =
  "symbol side type timeInForce quantity quoteOrderQty price newClientOrderId strategyId strategyType stopPrice trailingDelta icebergQty " +
  "newOrderRespType selfTradePreventionMode pegPriceType pegOffsetValue pegOffsetType";
const SPOT_CANCEL_REPLACE = `${SPOT_ORDER} cancelReplaceMode cancelNewClientOrderId cancelOrigClientOrderId cancelOrderId cancelRestrictions orderRateLimitExceededMode`;
const SPOT_SOR = "symbol side type timeInForce quantity price newClientOrderId strategyId strategyType icebergQty newOrderRespType selfTradePreventionMode";
/** One leg of an order list, by prefix (working, pending, above, below, pendingAbove, pendingBelow). */
const leg = (p: string, type = true) =>
  `${type ? `${p}Type ` : ""}${p}ClientOrderId ${p}Price ${p}StopPrice ${p}TrailingDelta ${p}IcebergQty ${p}TimeInForce ${p}StrategyId ${p}StrategyType ` +
  `${p}PegPriceType ${p}PegOffsetType ${p}PegOffsetValue`;
const LIST_HEAD = "symbol listClientOrderId newOrderRespType selfTradePreventionMode";
const WORKING =
  "workingType workingSide workingClientOrderId workingPrice workingQuantity workingIcebergQty workingTimeInForce workingStrategyId " +
  "workingStrategyType workingPegPriceType workingPegOffsetType workingPegOffsetValue";
const SPOT_OCO_LEGACY =
  "symbol listClientOrderId side quantity limitClientOrderId price limitStrategyId limitStrategyType limitIcebergQty trailingDelta stopClientOrderId " +
  "stopPrice stopStrategyId stopStrategyType stopLimitPrice stopIcebergQty stopLimitTimeInForce newOrderRespType selfTradePreventionMode";

/** Parameters of each REST endpoint custos signs, keyed "METHOD /path". */
export const BINANCE_REST_PARAMS: SchemaTable = schemaTable({
  // ---- USDⓈ-M futures: Trade (…/usds-margined-futures/trade/rest-api) ----
  "POST /fapi/v1/order": futuresOrder(FUTURES_ORDER),
  "POST /fapi/v1/order/test": futuresOrder(FUTURES_ORDER),
  "PUT /fapi/v1/order": w(FUTURES_MODIFY),
  "DELETE /fapi/v1/order": w(ORDER_ID),
  // batchOrders is a JSON list; its items are read (and their sizes checked) by binance.ts.
  "POST /fapi/v1/batchOrders": w("batchOrders"),
  "PUT /fapi/v1/batchOrders": w("batchOrders"),
  // `orderidlist`: the lower-case spelling ccxt sends (cancelOrders); not in the reference.
  "DELETE /fapi/v1/batchOrders": w(`${BATCH_CANCEL} orderidlist`),
  "POST /fapi/v1/countdownCancelAll": w("symbol countdownTime"),
  "POST /fapi/v1/leverage": w("symbol leverage"),
  "POST /fapi/v1/marginType": w("symbol marginType"),
  "POST /fapi/v1/positionSide/dual": w("dualSidePosition"),
  "POST /fapi/v1/positionMargin": { names: w("symbol positionSide amount type"), values: { type: MARGIN_CHANGE_TYPES } },
  "POST /fapi/v1/multiAssetsMargin": w("multiAssetsMargin"),
  "POST /fapi/v1/algoOrder": {
    names: w(
      "algoType symbol side positionSide type timeInForce quantity price triggerPrice workingType priceMatch closePosition priceProtect reduceOnly " +
        "activatePrice callbackRate clientAlgoId newOrderRespType selfTradePreventionMode goodTillDate",
    ),
    values: { type: FUTURES_ORDER_TYPES, algoType: ["CONDITIONAL"] },
  },
  "DELETE /fapi/v1/allOpenOrders": w("symbol"),
  "DELETE /fapi/v1/algoOrder": w("algoId clientAlgoId"),
  "DELETE /fapi/v1/algoOpenOrders": w("symbol"),
  "GET /fapi/v1/order": w(ORDER_ID),
  "GET /fapi/v1/openOrder": w(ORDER_ID),
  "GET /fapi/v1/openOrders": w("symbol"),
  "GET /fapi/v1/allOrders": w("symbol orderId startTime endTime limit"),
  "GET /fapi/v1/userTrades": w("symbol orderId startTime endTime fromId limit"),
  "GET /fapi/v1/forceOrders": w("symbol autoCloseType startTime endTime limit"),
  "GET /fapi/v1/orderAmendment": w("symbol orderId origClientOrderId startTime endTime limit"),
  "GET /fapi/v1/rateLimit/order": [],
  "GET /fapi/v1/algoOrder": w("algoId clientAlgoId"),
  "GET /fapi/v1/openAlgoOrders": w("algoType symbol algoId"),
  "GET /fapi/v1/allAlgoOrders": w("symbol algoId startTime endTime limit"),
  "GET /fapi/v1/order/asyn": w(DOWNLOAD_RANGE),
  "GET /fapi/v1/order/asyn/id": w("downloadId"),
  "GET /fapi/v1/trade/asyn": w(DOWNLOAD_RANGE),
  "GET /fapi/v1/trade/asyn/id": w("downloadId"),
  // ---- USDⓈ-M futures: Account (…/usds-margined-futures/account/rest-api) ----
  "GET /fapi/v2/account": [],
  "GET /fapi/v3/account": [],
  "GET /fapi/v2/balance": [],
  "GET /fapi/v3/balance": [],
  "GET /fapi/v2/positionRisk": w("symbol"),
  "GET /fapi/v3/positionRisk": w("symbol"),
  "GET /fapi/v1/positionSide/dual": [],
  "GET /fapi/v1/multiAssetsMargin": [],
  // `page` is documented but left out: page+limit would also fit GET /sapi/v1/sub-account/futures/accountSummary.
  "GET /fapi/v1/income": w("symbol incomeType startTime endTime limit"),
  "GET /fapi/v1/income/asyn": w(DOWNLOAD_RANGE),
  "GET /fapi/v1/income/asyn/id": w("downloadId"),
  "GET /fapi/v1/leverageBracket": w("symbol"),
  "GET /fapi/v1/adlQuantile": w("symbol"),
  "GET /fapi/v1/commissionRate": w("symbol"),
  "GET /fapi/v1/apiTradingStatus": w("symbol"),
  "GET /fapi/v1/positionMargin/history": { names: w("symbol type startTime endTime limit"), values: { type: MARGIN_CHANGE_TYPES } },
  "GET /fapi/v1/accountConfig": [],
  "GET /fapi/v1/symbolConfig": w("symbol"),
  "GET /fapi/v1/feeBurn": [],
  "GET /fapi/v1/pmAccountInfo": w("asset"),
  // ---- USDⓈ-M futures: User Data Streams (listenKey: API key only, no parameters) ----
  "POST /fapi/v1/listenKey": [],
  "PUT /fapi/v1/listenKey": [],
  "DELETE /fapi/v1/listenKey": [],

  // ---- COIN-M futures: Trade (…/coin-margined-futures/trade/rest-api) ----
  "POST /dapi/v1/order": futuresOrder(FUTURES_ORDER.replace(" goodTillDate", "")),
  "PUT /dapi/v1/order": w(FUTURES_MODIFY),
  "DELETE /dapi/v1/order": w(ORDER_ID),
  "POST /dapi/v1/batchOrders": w("batchOrders"),
  "PUT /dapi/v1/batchOrders": w("batchOrders"),
  "DELETE /dapi/v1/batchOrders": w(`${BATCH_CANCEL} orderidlist`),
  "POST /dapi/v1/countdownCancelAll": w("symbol countdownTime"),
  "POST /dapi/v1/leverage": w("symbol leverage"),
  "POST /dapi/v1/marginType": w("symbol marginType"),
  "POST /dapi/v1/positionSide/dual": w("dualSidePosition"),
  "POST /dapi/v1/positionMargin": { names: w("symbol positionSide amount type"), values: { type: MARGIN_CHANGE_TYPES } },
  "DELETE /dapi/v1/allOpenOrders": w("symbol"),
  "GET /dapi/v1/order": w(ORDER_ID),
  "GET /dapi/v1/openOrder": w(ORDER_ID),
  "GET /dapi/v1/openOrders": w("symbol pair"),
  "GET /dapi/v1/allOrders": w("symbol pair orderId startTime endTime limit"),
  "GET /dapi/v1/userTrades": w("symbol pair orderId startTime endTime fromId limit"),
  "GET /dapi/v1/forceOrders": w("symbol autoCloseType startTime endTime limit"),
  "GET /dapi/v1/orderAmendment": w("symbol orderId origClientOrderId startTime endTime limit"),
  "GET /dapi/v1/order/asyn": w(DOWNLOAD_RANGE),
  "GET /dapi/v1/order/asyn/id": w("downloadId"),
  "GET /dapi/v1/trade/asyn": w(DOWNLOAD_RANGE),
  "GET /dapi/v1/trade/asyn/id": w("downloadId"),
  // ---- COIN-M futures: Account (…/coin-margined-futures/account/rest-api) ----
  "GET /dapi/v1/account": [],
  "GET /dapi/v1/balance": [],
  "GET /dapi/v1/positionRisk": w("marginAsset pair"),
  "GET /dapi/v1/positionSide/dual": [],
  // `page` left out as on /fapi/v1/income.
  "GET /dapi/v1/income": w("symbol incomeType startTime endTime limit"),
  "GET /dapi/v1/income/asyn": w(DOWNLOAD_RANGE),
  "GET /dapi/v1/income/asyn/id": w("downloadId"),
  "GET /dapi/v1/leverageBracket": w("pair"),
  "GET /dapi/v2/leverageBracket": w("symbol"),
  "GET /dapi/v1/adlQuantile": w("symbol"),
  "GET /dapi/v1/commissionRate": w("symbol"),
  "GET /dapi/v1/positionMargin/history": { names: w("symbol type startTime endTime limit"), values: { type: MARGIN_CHANGE_TYPES } },
  // Portfolio Margin endpoints, "Classic Portfolio Margin Account Information".
  "GET /dapi/v1/pmAccountInfo": w("asset"),
  "POST /dapi/v1/listenKey": [],
  "PUT /dapi/v1/listenKey": [],
  "DELETE /dapi/v1/listenKey": [],

  // ---- Spot: Trading endpoints (rest-api.md) ----
  "POST /api/v3/order": spotOrder(SPOT_ORDER),
  "POST /api/v3/order/test": spotOrder(`${SPOT_ORDER} computeCommissionRates`),
  "POST /api/v3/order/cancelReplace": spotOrder(SPOT_CANCEL_REPLACE),
  "POST /api/v3/order/oco": w(SPOT_OCO_LEGACY),
  "POST /api/v3/orderList/oco": w(`symbol listClientOrderId side quantity newOrderRespType selfTradePreventionMode ${leg("above")} ${leg("below")}`),
  "POST /api/v3/orderList/oto": w(`${LIST_HEAD} ${WORKING} pendingSide pendingQuantity ${leg("pending")}`),
  "POST /api/v3/orderList/otoco": w(`${LIST_HEAD} ${WORKING} pendingSide pendingQuantity ${leg("pendingAbove")} ${leg("pendingBelow")}`),
  // OPO: the pending order's size is the working order's filled quantity (no pendingQuantity).
  "POST /api/v3/orderList/opo": w(`${LIST_HEAD} ${WORKING} pendingSide ${leg("pending")}`),
  "POST /api/v3/orderList/opoco": w(`${LIST_HEAD} ${WORKING} pendingSide ${leg("pendingAbove")} ${leg("pendingBelow")}`),
  "POST /api/v3/sor/order": { names: w(SPOT_SOR), values: { type: ["LIMIT", "MARKET"] } },
  "POST /api/v3/sor/order/test": { names: w(`${SPOT_SOR} computeCommissionRates`), values: { type: ["LIMIT", "MARKET"] } },
  "DELETE /api/v3/order": w(`${ORDER_ID} newClientOrderId cancelRestrictions`),
  "DELETE /api/v3/openOrders": w("symbol"),
  "DELETE /api/v3/orderList": w("symbol orderListId listClientOrderId newClientOrderId"),
  "PUT /api/v3/order/amend/keepPriority": w(`${ORDER_ID} newClientOrderId newQty`),
  // ---- Spot: Account endpoints (rest-api.md) ----
  "GET /api/v3/order": w(ORDER_ID),
  "GET /api/v3/openOrders": w("symbol"),
  "GET /api/v3/allOrders": w("symbol orderId startTime endTime limit"),
  "GET /api/v3/orderList": w("orderListId origClientOrderId"),
  "GET /api/v3/allOrderList": w("fromId startTime endTime limit"),
  "GET /api/v3/openOrderList": [],
  "GET /api/v3/myTrades": w("symbol orderId startTime endTime fromId limit"),
  "GET /api/v3/myPreventedMatches": w("symbol preventedMatchId orderId fromPreventedMatchId limit"),
  "GET /api/v3/myAllocations": w("symbol startTime endTime fromAllocationId limit orderId"),
  "GET /api/v3/rateLimit/order": [],
  "GET /api/v3/order/amendments": w("symbol orderId fromExecutionId limit"),
  "GET /api/v3/account": w("omitZeroBalances"),
  "GET /api/v3/account/commission": w("symbol"),
  // listenKey endpoints, retired 2026-02-20 (CHANGELOG 2026-01-21); as last documented (user-data-stream.md).
  "POST /api/v3/userDataStream": [],
  "PUT /api/v3/userDataStream": w("listenKey"),
  "DELETE /api/v3/userDataStream": w("listenKey"),

  // ---- Wallet (…/docs/wallet): balances and status ----
  "GET /sapi/v1/capital/config/getall": [],
  "GET /sapi/v1/account/status": [],
  "GET /sapi/v1/account/apiTradingStatus": [],
  "GET /sapi/v1/asset/tradeFee": w("symbol"),
  "GET /sapi/v1/capital/deposit/hisrec": w("includeSource coin status startTime endTime offset limit txId"),
  "GET /sapi/v1/capital/deposit/address": w("coin network amount"),
  "POST /sapi/v1/asset/get-funding-asset": w("asset needBtcValuation"),
  "POST /sapi/v3/asset/getUserAsset": w("asset needBtcValuation"),
  // ---- Margin market data (…/docs/margin_trading/market-data): Get All Cross Margin Pairs, Query Isolated Margin All Symbol ----
  "GET /sapi/v1/margin/allPairs": w("symbol"),
  "GET /sapi/v1/margin/isolated/allPairs": w("symbol"),
});
