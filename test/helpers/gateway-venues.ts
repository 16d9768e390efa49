/**
 * A custos whose egress reaches three HTTPS stand-in exchanges (Binance USDⓈ-M, Bybit, OKX; a
 * test CA custos is configured to trust), each holding one account whose secret custos holds.
 * Shared by the gateway's tests (ccxt, Python).
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { HostOverrides } from "../../src/egress/destinations.js";
import { dialectFor } from "../../src/exchanges/registry.js";
import { importSecret, startInProcess, tempDir, type InProcessService } from "./harness.js";
import { CcxtBinanceUsdm, CcxtBybit, CcxtOkx } from "./stand-in-ccxt-venues.js";
import { standInTls } from "./stand-in-exchange.js";

/** One exchange account: custos key id, the exchange's API key and secret (and OKX passphrase). */
export interface VenueAccount {
  /** ccxt exchange id. */
  ccxtId: "binanceusdm" | "bybit" | "okx";
  /** custos dialect, the gateway route's first segment. */
  exchange: "binance" | "bybit" | "okx";
  keyId: string;
  apiKey: string;
  secret: string;
  passphrase?: string;
}

export const VENUE_ACCOUNTS: readonly VenueAccount[] = [
  {
    ccxtId: "binanceusdm",
    exchange: "binance",
    keyId: "gw-binance",
    apiKey: "gwKeyBn0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUV",
    secret: "gwSecBn0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUV",
  },
  { ccxtId: "bybit", exchange: "bybit", keyId: "gw-bybit", apiKey: "gwBybitKey012345678", secret: "gwBybitSecret0123456789abcdefghijklmn" },
  {
    ccxtId: "okx",
    exchange: "okx",
    keyId: "gw-okx",
    apiKey: "1a2b3c4d-5e6f-7890-abcd-ef0123456789",
    secret: "FEDCBA9876543210FEDCBA9876543210",
    passphrase: "Okx-Gateway-Passphrase-1",
  },
];

export interface Venues {
  svc: InProcessService;
  binance: CcxtBinanceUsdm;
  bybit: CcxtBybit;
  okx: CcxtOkx;
  /** custos.json-style host overrides pointing every route at the stand-ins. */
  hosts: HostOverrides;
  /** The stand-ins' test CA (PEM) and its file. */
  caPem: string;
  caFile: string;
  /** The stand-ins' server certificate and key (for more stand-ins under the same CA). */
  tls: { certPem: string; keyPem: string };
  stop(): Promise<void>;
}

/** Starts the stand-ins (HTTPS) and an in-process custos whose egress goes to them, with the three keys imported. */
export async function startVenues(): Promise<Venues> {
  const tls = await standInTls();
  const accounts = (e: VenueAccount["exchange"]) => {
    const a = VENUE_ACCOUNTS.find((x) => x.exchange === e)!;
    return new Map([[a.apiKey, a.secret]]);
  };
  const okxAccount = VENUE_ACCOUNTS.find((x) => x.exchange === "okx")!;
  const binance = new CcxtBinanceUsdm(accounts("binance"));
  const bybit = new CcxtBybit(accounts("bybit"));
  const okx = new CcxtOkx(accounts("okx"), new Map([[okxAccount.apiKey, okxAccount.passphrase!]]));
  const [bn, bb, ok] = await Promise.all([binance.start({ tls }), bybit.start({ tls }), okx.start({ tls })]);
  const hosts: HostOverrides = { binance: { "/fapi/": bn, "/sapi/": bn, "/api/": bn }, bybit: { "/": bb }, okx: { "/": ok } };
  const caFile = join(tempDir("custos-gw-ca-"), "stand-in-ca.pem");
  writeFileSync(caFile, tls.caPem);
  const svc = await startInProcess((c) => {
    c.egress.hosts = hosts;
    c.egress.trustedCaFile = caFile;
  });
  for (const a of VENUE_ACCOUNTS) {
    const dialect = dialectFor(a.exchange)!;
    await importSecret(svc.custody, a.keyId, Buffer.from(a.secret, "utf8"), { exchange: a.exchange, algorithm: dialect.algorithm, apiKeyId: a.apiKey });
  }
  return {
    svc,
    binance,
    bybit,
    okx,
    hosts,
    caPem: tls.caPem,
    caFile,
    tls,
    async stop() {
      await svc.stop();
      await Promise.all([binance.stop(), bybit.stop(), okx.stop()]);
    },
  };
}
