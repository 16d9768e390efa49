import type { Command } from "commander";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { createLogger } from "../log.js";
import { destinationFor, type HostOverrides } from "../egress/destinations.js";
import { grpcSender } from "../gateway/custos-sender.js";
import { gatewayExchanges, gatewayStreamExchanges } from "../gateway/exchanges/index.js";
import { type GatewayListen, startGateway } from "../gateway/gateway.js";
import { httpPublicUpstream } from "../gateway/public-upstream.js";
import { grpcLoginSigner } from "../gateway/custos-login-signer.js";
import { webSocketProxy } from "../gateway/websocket-proxy.js";
import { isStreamOrigin, privateStreamExchanges, privateStreamPaths, privateStreamUrl, type StreamHostOverrides } from "../egress/websocket-destinations.js";
import { connectOpts, withConnection } from "./admin-commands.js";
import { CliError, connect } from "./context.js";
import type { Opts } from "./officer-context.js";

/** The gateway's default port on 127.0.0.1 (custos's own ports are 7400–7402). */
export const GATEWAY_DEFAULT_PORT = 7410;

interface GatewayOpts {
  [connectOption: string]: string | boolean | undefined;
  listen?: string;
  socket?: string;
  allowPublicListen?: boolean;
  testnet?: boolean;
  publicHosts?: string;
  publicCa?: string;
  wsHosts?: string;
}

/** `custos gateway`: the local HTTP endpoint bots in any language point their exchange base URL at (README "Gateway"). */
export function registerGatewayCommand(program: Command): void {
  withConnection(program.command("gateway"))
    .description(
      `a local HTTP endpoint for bots: /<exchange>/<key-id>/<exchange path> is signed and sent by custos (SendExchangeRequest); ${gatewayExchanges().join(", ")}; private WebSocket streams with the login signed by custos: ${gatewayStreamExchanges().join(", ")}`,
    )
    .option("--listen <host:port>", `loopback address to listen on (port 0 = any free port)`, `127.0.0.1:${GATEWAY_DEFAULT_PORT}`)
    .option("--socket <path>", "listen on a unix socket (mode 0600) instead of TCP")
    .option("--allow-public-listen", "allow a --listen address other than loopback: whoever reaches it trades with this certificate")
    .option("--testnet", "use the exchanges' testnet hosts for public market data and private streams")
    .option("--public-hosts <file>", 'JSON {"<exchange>": {"<path prefix>": "https://host[:port]"}} replacing public-data hosts (as custos.json egress.hosts)')
    .option("--public-ca <file>", "PEM CA certificates trusted for public-data and private-stream hosts besides the system's")
    .option("--ws-hosts <file>", 'JSON {"<exchange>": {"<stream path>": "wss://host[:port]"}} replacing private WebSocket stream hosts')
    .action(async (o: GatewayOpts) => {
      const { signer } = connect(connectOpts(o as Opts), "client");
      const overrides = o.publicHosts ? readHostOverrides(o.publicHosts, "--public-hosts", (v) => /^https:\/\/[^/?#@]+$/.test(v), "https://host[:port]") : {};
      const environment = o.testnet ? "testnet" : "mainnet";
      const upstream = httpPublicUpstream({
        originFor: (exchange, path) => destinationFor(exchange, environment, path, overrides).origin,
        ...(o.publicCa ? { ca: readFileSync(o.publicCa) } : {}),
      });
      const logger = createLogger(process.env.CUSTOS_LOG_LEVEL ?? "info");
      const streamHosts = o.wsHosts ? readStreamHosts(o.wsHosts) : {};
      const websocket = webSocketProxy({
        signer: grpcLoginSigner(signer),
        upstreamUrlFor: (exchange, path) => privateStreamUrl(exchange, environment, path, streamHosts),
        ...(o.publicCa ? { ca: readFileSync(o.publicCa) } : {}),
        logger,
      });
      const gateway = await startGateway({
        sender: grpcSender(signer),
        publicUpstream: upstream,
        logger,
        listen: listenOf(o),
        allowNonLoopback: o.allowPublicListen === true,
        websocket,
      }).catch((e: unknown) => {
        throw new CliError((e as Error).message);
      });
      process.stderr.write(`custos gateway listening on ${gateway.url}\n  routes ${gateway.url}/<exchange>/<key-id>/<exchange path>\n`);
      const stop = () => {
        void gateway.close().then(() => {
          upstream.close();
          signer.close();
          process.exit(0);
        });
      };
      process.once("SIGTERM", stop);
      process.once("SIGINT", stop);
    });
}

function listenOf(o: GatewayOpts): GatewayListen {
  if (o.socket) return { socket: resolve(o.socket) };
  const m = /^(\[[0-9a-fA-F:]+\]|[^:]+):(\d{1,5})$/.exec(o.listen ?? "");
  if (!m) throw new CliError("--listen must be HOST:PORT");
  return { host: m[1]!.replace(/^\[|\]$/g, ""), port: Number(m[2]) };
}

function readHostOverrides(file: string, option: string, isOrigin: (v: string) => boolean, shape: string): HostOverrides {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    throw new CliError(`${option} ${file}: ${(e as Error).message}`);
  }
  const valid =
    typeof raw === "object" &&
    raw !== null &&
    Object.values(raw).every(
      (routes) => typeof routes === "object" && routes !== null && Object.values(routes).every((v) => typeof v === "string" && isOrigin(v)),
    );
  if (!valid) throw new CliError(`${option} ${file}: expected {"<exchange>": {"<path>": "${shape}"}}`);
  return raw as HostOverrides;
}

/** `--ws-hosts`: origins for the table's own exchanges and stream paths only (a typo would otherwise be ignored silently). */
function readStreamHosts(file: string): StreamHostOverrides {
  const hosts = readHostOverrides(file, "--ws-hosts", isStreamOrigin, "wss://host[:port]");
  for (const [exchange, paths] of Object.entries(hosts)) {
    if (!privateStreamExchanges().includes(exchange)) throw new CliError(`--ws-hosts ${file}: no private stream of ${exchange} is proxied`);
    for (const path of Object.keys(paths)) {
      if (!privateStreamPaths(exchange).includes(path)) {
        throw new CliError(`--ws-hosts ${file}: ${exchange}'s private streams are ${privateStreamPaths(exchange).join(", ")}`);
      }
    }
  }
  return hosts;
}
