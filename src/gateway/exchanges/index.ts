import { binanceGateway } from "./binance.js";
import { bitgetGateway } from "./bitget.js";
import { bybitGateway } from "./bybit.js";
import type { GatewayExchange } from "./gateway-exchange.js";
import { okxGateway } from "./okx.js";

export * from "./gateway-exchange.js";
export * from "./websocket-login.js";

/** The exchanges the gateway serves, by the name in its routes (the custos dialect's name). */
const GATEWAY_EXCHANGES: ReadonlyMap<string, GatewayExchange> = new Map([binanceGateway, bybitGateway, okxGateway, bitgetGateway].map((g) => [g.exchange, g]));

/** The gateway's reading of `exchange`'s requests, or undefined when the gateway does not serve it. */
export function gatewayExchangeFor(exchange: string): GatewayExchange | undefined {
  return GATEWAY_EXCHANGES.get(exchange);
}

/** Every exchange the gateway serves. */
export function gatewayExchanges(): string[] {
  return [...GATEWAY_EXCHANGES.keys()];
}

/** The exchanges whose private WebSocket streams the gateway proxies. */
export function gatewayStreamExchanges(): string[] {
  return [...GATEWAY_EXCHANGES.values()].filter((g) => g.websocket !== undefined).map((g) => g.exchange);
}
