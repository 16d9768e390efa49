import { cliInvocation, shellQuote } from "./invocation.js";

/**
 * The start banner's first commands on the embedded default: an import of a Binance key and a
 * signed order that the default policy allows, for the data dir being served, each runnable as
 * printed once $SECRET and $API_KEY_ID hold the key's secret and id.
 */
export function tryCommands(dataDir: string): string[] {
  const custos = cliInvocation();
  const dir = `--data-dir ${shellQuote(dataDir)}`;
  return [
    "",
    "  try (with $SECRET and $API_KEY_ID set to a Binance API key's secret and id):",
    `    printf '%s' "$SECRET" | ${custos} key import --key demo --exchange binance --api-key-id "$API_KEY_ID" ${dir}`,
    `    ${custos} sign-request --key demo --method POST --path /api/v3/order ${dir} \\`,
    `      --query 'symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.01&price=20000'`,
  ];
}
