import { request as httpRequest, Agent as HttpAgent } from "node:http";
import { request as httpsRequest, Agent as HttpsAgent } from "node:https";

/** An exchange's answer, forwarded to the bot. */
export interface UpstreamAnswer {
  status: number;
  headers: Array<[string, string]>;
  body: Buffer;
}

/**
 * Public market data (exchange info, tickers, server time) needs no key: the gateway fetches it
 * itself, without any credential, from the exchange's host for that path. Only GET requests
 * carrying no credential reach this (see gateway.ts); the origin comes from the gateway's
 * configuration, never from the bot's request.
 */
export interface PublicUpstream {
  get(exchange: string, path: string, query: string): Promise<UpstreamAnswer>;
}

export interface PublicUpstreamOptions {
  /** The origin (scheme://host[:port]) serving `path` of `exchange`; throws when there is none. */
  originFor(exchange: string, path: string): string;
  /** Extra CA certificates (PEM) to trust besides the system's (test stand-ins). */
  ca?: string | Buffer;
  timeoutMs?: number;
  /** Public answers larger than this are cut off with an error (exchange info of a whole venue fits). */
  maxBytes?: number;
}

/** Public GETs over node's HTTP(S) client with keep-alive, a timeout and a size bound. */
export function httpPublicUpstream(opts: PublicUpstreamOptions): PublicUpstream & { close(): void } {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const maxBytes = opts.maxBytes ?? 32 * 1024 * 1024;
  const https = new HttpsAgent({ keepAlive: true, ...(opts.ca ? { ca: opts.ca } : {}) });
  const http = new HttpAgent({ keepAlive: true });
  return {
    get(exchange, path, query) {
      const url = new URL(opts.originFor(exchange, path));
      const secure = url.protocol === "https:";
      const send = secure ? httpsRequest : httpRequest;
      return new Promise((resolve, reject) => {
        const req = send(
          {
            protocol: url.protocol,
            hostname: url.hostname,
            port: url.port,
            method: "GET",
            path: query ? `${path}?${query}` : path,
            agent: secure ? https : http,
            headers: { accept: "application/json" },
            timeout: timeoutMs,
          },
          (res) => {
            const chunks: Buffer[] = [];
            let size = 0;
            res.on("data", (c: Buffer) => {
              size += c.length;
              if (size > maxBytes) return void res.destroy(new Error(`the public answer exceeds ${maxBytes} bytes`));
              chunks.push(c);
            });
            res.on("error", reject);
            res.on("end", () => {
              const headers: Array<[string, string]> = [];
              for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) headers.push([res.rawHeaders[i]!.toLowerCase(), res.rawHeaders[i + 1]!]);
              resolve({ status: res.statusCode ?? 502, headers, body: Buffer.concat(chunks) });
            });
          },
        );
        req.on("timeout", () => req.destroy(new Error(`no public answer within ${timeoutMs} ms`)));
        req.on("error", reject);
        req.end();
      });
    },
    close() {
      https.destroy();
      http.destroy();
    },
  };
}
