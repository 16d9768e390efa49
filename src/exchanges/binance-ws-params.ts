import { schemaTable, type SchemaTable } from "./param-schema.js";

/*
 * The parameters of every Binance WebSocket API method the default policy signs
 * (binance-websocket.ts CLASSES), from:
 *   - spot: binance-spot-api-docs web-socket-api.md ("Trading requests", "Account requests",
 *     "User Data Stream requests");
 *   - USDⓈ-M / COIN-M: developers.binance.com/docs/derivatives/{usds,coin}-margined-futures/
 *     {trade,account,user-data-streams}/websocket-api.
 * A method shared by spot and futures (order.place, order.status, …) takes the union: custos
 * does not know which server the engine talks to. `apiKey`, `timestamp`, `signature` and
 * `recvWindow` are custos's (or checked by it) and never listed. The signature covers the
 * sorted parameters but not the method, so it is valid for any method (or REST endpoint, with
 * apiKey as a parameter) whose parameters fit: binance-catalog.test.ts checks these too.
 */

const w = (names: string): string[] => names.split(" ").filter((n) => n !== "");

/** `type` is shared with /sapi/v1/asset/transfer: orders take order types only. */
const ORDER_TYPES = w(
  "LIMIT MARKET STOP STOP_MARKET TAKE_PROFIT TAKE_PROFIT_MARKET TRAILING_STOP_MARKET STOP_LOSS STOP_LOSS_LIMIT TAKE_PROFIT_LIMIT LIMIT_MAKER",
);
const order = (names: string) => ({ names: w(names), values: { type: ORDER_TYPES } });

/** order.place: spot, plus the futures fields (positionSide … goodTillDate). */
const PLACE =
  "symbol side type timeInForce price quantity quoteOrderQty newClientOrderId newOrderRespType stopPrice trailingDelta icebergQty strategyId " +
  "strategyType selfTradePreventionMode pegPriceType pegOffsetValue pegOffsetType " +
  "positionSide reduceOnly closePosition activationPrice callbackRate workingType priceProtect priceMatch goodTillDate";
const SPOT_PLACE =
  "symbol side type timeInForce price quantity quoteOrderQty newClientOrderId newOrderRespType stopPrice trailingDelta icebergQty strategyId " +
  "strategyType selfTradePreventionMode pegPriceType pegOffsetValue pegOffsetType";
const SOR = "symbol side type quantity timeInForce price newClientOrderId newOrderRespType icebergQty strategyId strategyType selfTradePreventionMode";
const ORDER_ID = "symbol orderId origClientOrderId";
const leg = (p: string) =>
  `${p}Type ${p}ClientOrderId ${p}Price ${p}StopPrice ${p}TrailingDelta ${p}IcebergQty ${p}TimeInForce ${p}StrategyId ${p}StrategyType ` +
  `${p}PegPriceType ${p}PegOffsetType ${p}PegOffsetValue`;
const LIST_HEAD = "symbol listClientOrderId newOrderRespType selfTradePreventionMode";
const WORKING =
  "workingType workingSide workingClientOrderId workingPrice workingQuantity workingIcebergQty workingTimeInForce workingStrategyId " +
  "workingStrategyType workingPegPriceType workingPegOffsetType workingPegOffsetValue";

/** Parameters of each WebSocket API method custos signs, keyed by method name. */
export const BINANCE_WS_PARAMS: SchemaTable = schemaTable({
  // ---- Trading requests (spot web-socket-api.md; futures trade/websocket-api) ----
  "order.place": order(PLACE),
  "order.test": order(`${SPOT_PLACE} computeCommissionRates`),
  "order.cancel": w(`${ORDER_ID} newClientOrderId cancelRestrictions`),
  "order.modify": w(`${ORDER_ID} side quantity price priceMatch modifyId`),
  "order.cancelReplace": order(
    `${SPOT_PLACE} cancelReplaceMode cancelOrderId cancelOrigClientOrderId cancelNewClientOrderId cancelRestrictions orderRateLimitExceededMode`,
  ),
  "order.amend.keepPriority": w(`${ORDER_ID} newClientOrderId newQty`),
  "openOrders.cancelAll": w("symbol"),
  "orderList.place": w(
    "symbol side price quantity listClientOrderId limitClientOrderId limitIcebergQty limitStrategyId limitStrategyType stopPrice trailingDelta " +
      "stopClientOrderId stopLimitPrice stopLimitTimeInForce stopIcebergQty stopStrategyId stopStrategyType newOrderRespType selfTradePreventionMode",
  ),
  "orderList.place.oco": w(`symbol side quantity listClientOrderId newOrderRespType selfTradePreventionMode ${leg("above")} ${leg("below")}`),
  "orderList.place.oto": w(`${LIST_HEAD} ${WORKING} pendingSide pendingQuantity ${leg("pending")}`),
  "orderList.place.otoco": w(`${LIST_HEAD} ${WORKING} pendingSide pendingQuantity ${leg("pendingAbove")} ${leg("pendingBelow")}`),
  "orderList.cancel": w("symbol orderListId listClientOrderId newClientOrderId"),
  "sor.order.place": { names: w(SOR), values: { type: ["LIMIT", "MARKET"] } },
  "sor.order.test": { names: w(`${SOR} computeCommissionRates`), values: { type: ["LIMIT", "MARKET"] } },
  // USDⓈ-M only (trade/websocket-api, "New Algo Order", "Cancel Algo Order").
  "algoOrder.place": {
    names: w(
      "algoType symbol side type positionSide timeInForce quantity price triggerPrice workingType priceMatch closePosition priceProtect reduceOnly " +
        "activatePrice callbackRate clientAlgoId newOrderRespType selfTradePreventionMode goodTillDate",
    ),
    values: { type: ORDER_TYPES, algoType: ["CONDITIONAL"] },
  },
  "algoOrder.cancel": w("algoId clientAlgoId"),

  // ---- Account requests (spot) / Trade queries (futures) ----
  "order.status": w(ORDER_ID),
  "openOrders.status": w("symbol"),
  allOrders: w("symbol orderId startTime endTime limit"),
  myTrades: w("symbol orderId startTime endTime fromId limit"),
  myPreventedMatches: w("symbol preventedMatchId orderId fromPreventedMatchId limit"),
  myAllocations: w("symbol startTime endTime fromAllocationId limit orderId"),
  "orderList.status": w("origClientOrderId orderListId"),
  "openOrderLists.status": [],
  allOrderLists: w("fromId startTime endTime limit"),
  "account.rateLimits.orders": [],
  "account.commission": w("symbol"),
  // Spot account.status takes omitZeroBalances; futures account.status/balance take none.
  "account.status": w("omitZeroBalances"),
  "account.balance": [],
  // USDⓈ-M: symbol; COIN-M: marginAsset, pair.
  "account.position": w("symbol marginAsset pair"),
  "v2/account.status": [],
  "v2/account.balance": [],
  "v2/account.position": w("symbol"),

  // ---- User data streams: futures start/ping/stop take the API key only; spot's took a
  // listenKey (retired 2026-02-20). subscribe/unsubscribe: spot, on a logged-on session. ----
  "userDataStream.start": [],
  "userDataStream.ping": w("listenKey"),
  "userDataStream.stop": w("listenKey"),
  "userDataStream.subscribe": [],
  "userDataStream.unsubscribe": w("subscriptionId"),
});
