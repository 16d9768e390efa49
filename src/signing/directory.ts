import { BlockList, isIPv4, isIPv6 } from "node:net";
import { CustosError } from "../errors.js";
import { activeVersion, type KeyWithVersions } from "../keys/model.js";
import { parsePolicy, type KeyPolicy } from "../policy/policy.js";
import type { StoreSlice } from "../store/store.js";
import type { ClientRecord } from "./clients.js";

export interface KnownClient extends ClientRecord {
  allow: BlockList;
  /** Peer IP → allowed, memoised: BlockList.check builds a SocketAddress on every call. */
  verdicts: Map<string, boolean>;
}

/**
 * An in-memory snapshot of clients, grants and keys, so the sign path never touches the
 * database. Reloaded after every change this process makes (a replica set will also
 * reload on notification).
 */
export class AccessDirectory {
  private clients = new Map<string, KnownClient>();
  private grants = new Map<string, Set<string>>();
  private keys = new Map<string, KeyWithVersions>();
  private policies = new Map<string, KeyPolicy>();

  async reload(store: StoreSlice<"clients" | "keys">): Promise<void> {
    const [clients, grants, keys] = await Promise.all([store.clients.listClients(), store.clients.listGrants(), store.keys.listKeys()]);
    const policies = new Map<string, KeyPolicy>();
    for (const k of keys) {
      const json = await store.keys.getPolicy(k.id);
      if (json) policies.set(k.id, parsePolicy(json));
    }
    this.clients = new Map(clients.map((c) => [c.identity, { ...c, allow: allowList(c.cidrs), verdicts: new Map<string, boolean>() }]));
    this.grants = grants;
    this.keys = new Map(keys.map((k) => [k.id, k]));
    this.policies = policies;
  }

  /** The key's request policy; the empty (default) policy when none was set. */
  policy(keyId: string): KeyPolicy {
    return this.policies.get(keyId) ?? NO_POLICY;
  }

  client(identity: string): KnownClient | undefined {
    return this.clients.get(identity);
  }

  key(id: string): KeyWithVersions | undefined {
    return this.keys.get(id);
  }

  /** Every key of the snapshot (a replica compares two snapshots to find destroyed versions). */
  allKeys(): Iterable<KeyWithVersions> {
    return this.keys.values();
  }

  hasGrant(identity: string, keyId: string): boolean {
    return this.grants.get(identity)?.has(keyId) ?? false;
  }

  activeVersionOf(key: KeyWithVersions) {
    return activeVersion(key);
  }
}

const NO_POLICY: KeyPolicy = Object.freeze({});

/** A CIDR list → BlockList. Throws INVALID_ARGUMENT on a malformed entry. */
export function allowList(cidrs: readonly string[]): BlockList {
  const list = new BlockList();
  for (const cidr of cidrs) {
    const [addr, bits] = parseCidr(cidr);
    list.addSubnet(addr, bits, isIPv4(addr) ? "ipv4" : "ipv6");
  }
  return list;
}

export function parseCidr(cidr: string): [string, number] {
  const parts = cidr.split("/");
  const [addr = "", bitsText] = parts;
  const family = isIPv4(addr) ? 4 : isIPv6(addr) ? 6 : 0;
  // Decimal digits only: Number("") and Number(" ") are 0, so "10.0.0.1/" would allow everything.
  const bits = bitsText === undefined ? (family === 4 ? 32 : 128) : /^\d{1,3}$/.test(bitsText) ? Number(bitsText) : NaN;
  if (parts.length > 2 || family === 0 || !Number.isInteger(bits) || bits < 0 || bits > (family === 4 ? 32 : 128)) {
    throw new CustosError("INVALID_ARGUMENT", `not a CIDR: ${JSON.stringify(cidr)}`);
  }
  return [addr, bits];
}

/** True if `ip` is inside the client's allowlist. */
export function addressAllowed(client: KnownClient, ip: string | null): boolean {
  if (!ip) return false;
  let verdict = client.verdicts.get(ip);
  if (verdict === undefined) {
    verdict = client.allow.check(ip, isIPv4(ip) ? "ipv4" : "ipv6");
    if (client.verdicts.size >= 1024) client.verdicts.clear(); // bounded: a client has few addresses
    client.verdicts.set(ip, verdict);
  }
  return verdict;
}
