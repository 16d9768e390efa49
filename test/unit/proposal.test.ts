import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import canonicalizeModule from "canonicalize";
import { CustosError } from "../../src/errors.js";
import {
  DEFAULT_PROPOSAL_TTL_MS,
  approvalMessage,
  buildProposal,
  canonicalProposal,
  newNonce,
  proposalDigest,
  type ProposalContent,
} from "../../src/governance/proposal.js";

const canonicalize = canonicalizeModule as unknown as (input: unknown) => string;

const isInvalid = (e: unknown) => e instanceof CustosError && e.code === "INVALID_ARGUMENT";

const BASE: ProposalContent = {
  kind: "import_key",
  target: "binance-main",
  params: { algorithm: "hmac-sha256", grants: ["engine-a", "engine-b"], limits: { perSecond: 50, burst: 100 }, note: "é 😀" },
  materialSha256: "1".repeat(64),
  proposer: "alice",
  createdAt: "2025-03-01T10:00:00.000Z",
  expiresAt: "2025-03-02T10:00:00.000Z",
  nonce: "0123456789abcdef0123456789abcdef",
};

describe("canonicalProposal / proposalDigest", () => {
  it("equals the RFC 8785 library's output for the wrapped object, and the digest is its SHA-256", () => {
    const expected = canonicalize({ v: "custos.proposal.v1", ...BASE });
    assert.equal(canonicalProposal(BASE), expected);
    assert.equal(proposalDigest(BASE), createHash("sha256").update(expected, "utf8").digest("hex"));
    assert.match(proposalDigest(BASE), /^[0-9a-f]{64}$/);
    assert.ok(canonicalProposal(BASE).startsWith('{"createdAt":'), "keys sorted");
  });

  it("is stable across the key order of params and of the content", () => {
    const reordered: ProposalContent = {
      nonce: BASE.nonce,
      expiresAt: BASE.expiresAt,
      createdAt: BASE.createdAt,
      proposer: BASE.proposer,
      materialSha256: BASE.materialSha256!,
      params: { note: "é 😀", limits: { burst: 100, perSecond: 50 }, grants: ["engine-a", "engine-b"], algorithm: "hmac-sha256" },
      target: BASE.target,
      kind: BASE.kind,
    };
    assert.equal(proposalDigest(reordered), proposalDigest(BASE));
    assert.equal(canonicalProposal(reordered), canonicalProposal(BASE));
  });

  it("covers every field: any single change changes the digest", () => {
    const changes: Array<[string, Partial<ProposalContent>]> = [
      ["kind", { kind: "rotate_key" }],
      ["target", { target: "binance-alt" }],
      ["a param value", { params: { ...BASE.params, algorithm: "hmac-sha512" } }],
      ["a nested param", { params: { ...BASE.params, limits: { perSecond: 50, burst: 101 } } }],
      ["array order in params", { params: { ...BASE.params, grants: ["engine-b", "engine-a"] } }],
      ["an added param", { params: { ...BASE.params, extra: null } }],
      ["materialSha256", { materialSha256: "2".repeat(64) }],
      ["materialSha256 removed", { materialSha256: undefined }],
      ["proposer", { proposer: "bob" }],
      ["createdAt", { createdAt: "2025-03-01T10:00:00.001Z" }],
      ["expiresAt", { expiresAt: "2025-03-02T10:00:00.001Z" }],
      ["nonce", { nonce: "f123456789abcdef0123456789abcdef" }],
    ];
    const base = proposalDigest(BASE);
    const seen = new Set([base]);
    for (const [what, change] of changes) {
      const changed = proposalDigest({ ...BASE, ...change });
      assert.notEqual(changed, base, what);
      seen.add(changed);
    }
    assert.equal(seen.size, changes.length + 1, "all distinct");
  });

  it("copies only ProposalContent's fields: extra properties can neither enter nor replace v", () => {
    const withExtras = { ...BASE, v: "custos.proposal.v0", state: "executed", id: "p-1" } as ProposalContent;
    assert.equal(canonicalProposal(withExtras), canonicalProposal(BASE));
  });

  it("omits materialSha256 when there is none", () => {
    const { materialSha256: _, ...noMaterial } = BASE;
    assert.ok(!canonicalProposal(noMaterial).includes("materialSha256"));
  });

  const badParams: Array<[string, unknown]> = [
    ["an undefined value", { a: undefined }],
    ["a nested undefined value", { a: { b: [1, undefined] } }],
    // biome-ignore lint/suspicious/noSparseArray: the hole is the case under test
    ["a hole in an array", { a: [1, , 3] }],
    ["NaN", { a: Number.NaN }],
    ["Infinity", { a: [Number.POSITIVE_INFINITY] }],
    ["-Infinity", { a: { b: Number.NEGATIVE_INFINITY } }],
    ["a function", { a: () => 1 }],
    ["a bigint", { a: 1n }],
    ["a symbol", { a: Symbol("s") }],
    ["a Date", { a: new Date(0) }],
    ["a Buffer", { a: Buffer.from("x") }],
    ["an array as params", [1, 2]],
    ["null as params", null],
  ];
  for (const [what, params] of badParams) {
    it(`refuses ${what} in params with INVALID_ARGUMENT`, () => {
      assert.throws(() => canonicalProposal({ ...BASE, params: params as Record<string, unknown> }), isInvalid);
    });
  }

  it("refuses a cyclic params object", () => {
    const a: Record<string, unknown> = { x: 1 };
    a.self = a;
    assert.throws(() => canonicalProposal({ ...BASE, params: a }), isInvalid);
  });

  it("accepts the same object twice in params (shared, not cyclic)", () => {
    const shared = { x: 1 };
    assert.doesNotThrow(() => canonicalProposal({ ...BASE, params: { a: shared, b: [shared, shared] } }));
  });

  const badFields: Array<[string, Partial<ProposalContent>]> = [
    ["an unknown kind", { kind: "format_disk" as ProposalContent["kind"] }],
    ["an empty target", { target: "" }],
    ["an empty proposer", { proposer: "" }],
    ["an upper-case materialSha256", { materialSha256: "A".repeat(64) }],
    ["a short materialSha256", { materialSha256: "1".repeat(63) }],
    ["a short nonce", { nonce: "0123" }],
    ["a non-hex nonce", { nonce: "z".repeat(32) }],
    ["a time without zone", { createdAt: "2025-03-01T10:00:00" }],
    ["a time with an offset", { createdAt: "2025-03-01T11:00:00.000+01:00" }],
    ["a time that is not a time", { expiresAt: "tomorrow" }],
    ["expiry before creation", { expiresAt: "2025-03-01T09:00:00.000Z" }],
    ["expiry equal to creation", { expiresAt: BASE.createdAt }],
  ];
  for (const [what, change] of badFields) {
    it(`refuses ${what} with INVALID_ARGUMENT`, () => {
      assert.throws(() => canonicalProposal({ ...BASE, ...change }), isInvalid);
    });
  }
});

describe("buildProposal", () => {
  it("fills createdAt, a 24 h expiry and a fresh nonce", () => {
    const now = new Date("2025-03-01T10:00:00.000Z");
    const p = buildProposal({ kind: "set_threshold", target: "governance", params: { threshold: 3 }, proposer: "alice", now });
    assert.deepEqual(p, {
      kind: "set_threshold",
      target: "governance",
      params: { threshold: 3 },
      proposer: "alice",
      createdAt: "2025-03-01T10:00:00.000Z",
      expiresAt: "2025-03-02T10:00:00.000Z",
      nonce: p.nonce,
    });
    assert.equal(DEFAULT_PROPOSAL_TTL_MS, 86_400_000);
    assert.match(p.nonce, /^[0-9a-f]{32}$/);
    assert.ok(!("materialSha256" in p) && !("now" in p) && !("ttlMs" in p));
  });

  it("keeps materialSha256, honours ttlMs, and two builds of the same input differ only by nonce", () => {
    const input = { kind: "rotate_key" as const, target: "k", params: {}, proposer: "bob", materialSha256: "c".repeat(64), now: new Date(0), ttlMs: 60_000 };
    const a = buildProposal(input);
    const b = buildProposal(input);
    assert.equal(a.materialSha256, "c".repeat(64));
    assert.equal(a.expiresAt, "1970-01-01T00:01:00.000Z");
    assert.notEqual(a.nonce, b.nonce);
    assert.notEqual(proposalDigest(a), proposalDigest(b));
    assert.deepEqual({ ...a, nonce: "" }, { ...b, nonce: "" });
  });

  for (const ttlMs of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 9e15]) {
    it(`refuses ttlMs ${ttlMs}`, () => {
      assert.throws(() => buildProposal({ kind: "thaw", target: "k", params: {}, proposer: "a", ttlMs }), isInvalid);
    });
  }

  it("refuses bad params at build time", () => {
    assert.throws(() => buildProposal({ kind: "thaw", target: "k", params: { a: undefined }, proposer: "a" }), isInvalid);
    assert.throws(() => buildProposal({ kind: "thaw", target: "k", params: {}, proposer: "a", now: new Date(Number.NaN) }), isInvalid);
  });

  it("newNonce is 16 random bytes of hex", () => {
    const nonces = new Set(Array.from({ length: 100 }, newNonce));
    assert.equal(nonces.size, 100);
    for (const n of nonces) assert.match(n, /^[0-9a-f]{32}$/);
  });
});

describe("approvalMessage", () => {
  const digest = proposalDigest(BASE);

  it("is the UTF-8 of custos.approval.v1, the decision and the digest, one per line", () => {
    assert.deepEqual(approvalMessage("approve", digest), Buffer.from(`custos.approval.v1\napprove\n${digest}`, "utf8"));
    assert.deepEqual(approvalMessage("reject", digest), Buffer.from(`custos.approval.v1\nreject\n${digest}`, "utf8"));
  });

  it("differs for approve and reject, and for different digests", () => {
    assert.notDeepEqual(approvalMessage("approve", digest), approvalMessage("reject", digest));
    assert.notDeepEqual(approvalMessage("approve", digest), approvalMessage("approve", "0".repeat(64)));
  });

  const badDigests = ["", "0".repeat(63), "0".repeat(65), "A".repeat(64), "g".repeat(64), ` ${"0".repeat(63)}`, `${"0".repeat(64)}\n`];
  for (const bad of badDigests) {
    it(`refuses the digest ${JSON.stringify(bad)}`, () => {
      assert.throws(() => approvalMessage("approve", bad), isInvalid);
    });
  }

  it("refuses a decision other than approve or reject", () => {
    assert.throws(() => approvalMessage("abstain" as "approve", digest), isInvalid);
  });
});
