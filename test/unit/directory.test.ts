import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { CustosError } from "../../src/errors.js";
import type { ClientRecord } from "../../src/signing/clients.js";
import { AccessDirectory, addressAllowed, allowList, parseCidr, type KnownClient } from "../../src/signing/directory.js";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";

const isInvalidArgument = (e: unknown) => e instanceof CustosError && e.code === "INVALID_ARGUMENT";

function client(cidrs: string[]): KnownClient {
  return {
    identity: "spiffe://custos/engine/alpha",
    name: "alpha",
    role: "trader",
    cidrs,
    createdAt: "2025-01-01T00:00:00.000Z",
    allow: allowList(cidrs),
    verdicts: new Map(),
  };
}

describe("parseCidr", () => {
  const valid: Array<[string, [string, number]]> = [
    ["10.0.0.0/8", ["10.0.0.0", 8]],
    ["192.168.1.7/32", ["192.168.1.7", 32]],
    ["192.168.1.7", ["192.168.1.7", 32]], // a bare address is a host
    ["0.0.0.0/0", ["0.0.0.0", 0]],
    ["2001:db8::/32", ["2001:db8::", 32]],
    ["::1", ["::1", 128]],
    ["::1/128", ["::1", 128]],
    ["::/0", ["::", 0]],
  ];
  for (const [text, expected] of valid) {
    it(`parses ${text}`, () => assert.deepEqual(parseCidr(text), expected));
  }

  const malformed = [
    "",
    "/8",
    "10.0.0.0/33",
    "2001:db8::/129",
    "10.0.0.0/-1",
    "10.0.0.0/8.5",
    "10.0.0.256/8",
    "10.0.0/8",
    "localhost/32",
    "not a cidr",
    " 10.0.0.0/8",
    // Must not be read as /0 (allow everything) or as /8.
    "10.0.0.1/",
    "10.0.0.1/ ",
    "10.0.0.0/ 8",
    "10.0.0.0/8/9",
    "10.0.0.0/0x8",
    "10.0.0.0/1e1",
    "10.0.0.0/+8",
  ];
  for (const text of malformed) {
    it(`rejects ${JSON.stringify(text)} with INVALID_ARGUMENT`, () => assert.throws(() => parseCidr(text), isInvalidArgument));
  }
});

describe("allowList", () => {
  it("rejects a list with any malformed entry", () => {
    assert.throws(() => allowList(["10.0.0.0/8", "10.0.0.1/"]), isInvalidArgument);
  });
  it("accepts an empty list", () => {
    assert.equal(allowList([]).check("127.0.0.1", "ipv4"), false);
  });
});

describe("addressAllowed", () => {
  const cases: Array<{ cidrs: string[]; ip: string | null; allowed: boolean }> = [
    { cidrs: ["10.0.0.0/8"], ip: "10.200.3.4", allowed: true },
    { cidrs: ["10.0.0.0/8"], ip: "11.0.0.1", allowed: false },
    { cidrs: ["10.0.0.0/8"], ip: "9.255.255.255", allowed: false },
    { cidrs: ["192.168.1.7/32"], ip: "192.168.1.7", allowed: true },
    { cidrs: ["192.168.1.7/32"], ip: "192.168.1.8", allowed: false },
    { cidrs: ["192.168.1.7"], ip: "192.168.1.6", allowed: false },
    { cidrs: ["0.0.0.0/0"], ip: "203.0.113.9", allowed: true },
    { cidrs: ["2001:db8:1::/48"], ip: "2001:db8:1:ffff::1", allowed: true },
    { cidrs: ["2001:db8:1::/48"], ip: "2001:db8:2::1", allowed: false },
    { cidrs: ["::1/128"], ip: "::1", allowed: true },
    { cidrs: ["::1/128"], ip: "::2", allowed: false },
    { cidrs: ["::/0"], ip: "2001:db8::42", allowed: true },
    // IPv4 rules do not admit IPv6 peers.
    { cidrs: ["0.0.0.0/0"], ip: "2001:db8::1", allowed: false },
    { cidrs: ["127.0.0.0/8", "::1/128"], ip: "::1", allowed: true },
    { cidrs: ["127.0.0.0/8", "::1/128"], ip: "127.0.0.1", allowed: true },
    { cidrs: [], ip: "127.0.0.1", allowed: false },
    // No address: never allowed, even by /0.
    { cidrs: ["0.0.0.0/0", "::/0"], ip: null, allowed: false },
    { cidrs: ["0.0.0.0/0", "::/0"], ip: "", allowed: false },
  ];
  for (const c of cases) {
    it(`${JSON.stringify(c.ip)} in [${c.cidrs.join(", ")}] → ${c.allowed}`, () => {
      assert.equal(addressAllowed(client(c.cidrs), c.ip), c.allowed);
    });
  }
});

describe("AccessDirectory", () => {
  it("reloads clients, grants and keys from the store", async () => {
    const store = new SqliteStore(":memory:");
    const rec: ClientRecord = { identity: "id:a", name: "a", role: "trader", cidrs: ["10.0.0.0/8"], createdAt: "2025-01-01T00:00:00.000Z" };
    await store.clients.upsertClient(rec);
    const now = "2025-01-01T00:00:00.000Z";
    await store.keys.createKey(
      { id: "k1", exchange: "binance", environment: "testnet", label: "", apiKeyId: "pub", algorithm: "hmac-sha256", maxAgeDays: 45, createdAt: now },
      { keyId: "k1", version: 1, objectId: "custos:k1:v1", state: "active", createdAt: now, activatedAt: now },
    );
    await store.clients.addGrant("id:a", "k1");

    const dir = new AccessDirectory();
    assert.equal(dir.client("id:a"), undefined, "empty before reload");
    await dir.reload(store);
    const a = dir.client("id:a")!;
    assert.equal(a.role, "trader");
    assert.equal(addressAllowed(a, "10.1.1.1"), true);
    assert.equal(addressAllowed(a, "192.168.0.1"), false);
    assert.equal(dir.hasGrant("id:a", "k1"), true);
    assert.equal(dir.hasGrant("id:a", "k2"), false);
    assert.equal(dir.hasGrant("id:b", "k1"), false);
    assert.equal(dir.activeVersionOf(dir.key("k1")!)?.objectId, "custos:k1:v1");

    // A change is visible only after the next reload (the sign path reads the snapshot).
    await store.keys.updateVersionState("k1", 1, "destroyed");
    assert.equal(dir.activeVersionOf(dir.key("k1")!)?.version, 1);
    await dir.reload(store);
    assert.equal(dir.activeVersionOf(dir.key("k1")!), undefined);
    await store.close();
  });
});
