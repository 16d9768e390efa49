import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { CustosError } from "../../src/errors.js";
import { decideQuorum, validateRules, type QuorumInput, type QuorumOutcome, type QuorumRules, type Vote } from "../../src/governance/quorum.js";

const D = "a".repeat(64);
const OTHER = "b".repeat(64);
const FOUR = ["alice", "bob", "carol", "dave"];

const approve = (officer: string, digest = D): Vote => ({ officer, decision: "approve", digest });
const reject = (officer: string, digest = D): Vote => ({ officer, decision: "reject", digest });

/** alice proposes to alice, bob and carol; 2 approvals besides hers, no veto, 5 s before expiry. */
const BASE: QuorumInput = {
  digest: D,
  proposer: "alice",
  expiresAt: 10_000,
  now: 5_000,
  executed: false,
  activeOfficers: new Set(["alice", "bob", "carol"]),
  votes: [],
  rules: { threshold: 2, proposerCounts: false, veto: false },
};

interface Row {
  name: string;
  input: Omit<Partial<QuorumInput>, "activeOfficers" | "rules"> & { officers?: string[]; rules?: Partial<QuorumRules> };
  expected: QuorumOutcome;
}

function build(overrides: Row["input"]): QuorumInput {
  const { officers, rules, ...rest } = overrides;
  return {
    ...BASE,
    ...rest,
    activeOfficers: officers ? new Set(officers) : BASE.activeOfficers,
    rules: { ...BASE.rules, ...rules },
  };
}

const out = (verdict: QuorumOutcome["verdict"], approvals: string[], rejections: string[], needed: number): QuorumOutcome => ({
  verdict,
  approvals,
  rejections,
  needed,
});

const ROWS: Row[] = [
  // plain 2-of-3
  { name: "2-of-3, no votes: pending", input: {}, expected: out("pending", [], [], 2) },
  { name: "2-of-3, one approval: pending", input: { votes: [approve("bob")] }, expected: out("pending", ["bob"], [], 1) },
  { name: "2-of-3, two approvals: approved", input: { votes: [approve("carol"), approve("bob")] }, expected: out("approved", ["bob", "carol"], [], 0) },

  // self-approval
  {
    name: "proposer's approval does not count without proposerCounts",
    input: { votes: [approve("alice"), approve("bob")] },
    expected: out("pending", ["bob"], [], 1),
  },
  {
    name: "proposer's approval counts with proposerCounts",
    input: { votes: [approve("alice"), approve("bob")], rules: { proposerCounts: true } },
    expected: out("approved", ["alice", "bob"], [], 0),
  },
  {
    name: "1-of-N: the proposer alone approves with proposerCounts",
    input: { votes: [approve("alice")], rules: { threshold: 1, proposerCounts: true } },
    expected: out("approved", ["alice"], [], 0),
  },
  {
    name: "1-of-N: the proposer alone does not approve without proposerCounts",
    input: { votes: [approve("alice")], rules: { threshold: 1 } },
    expected: out("pending", [], [], 1),
  },

  // duplicates
  {
    name: "the same approval three times counts once",
    input: { votes: [approve("bob"), approve("bob"), approve("bob")] },
    expected: out("pending", ["bob"], [], 1),
  },
  {
    name: "duplicates plus one more officer: approved",
    input: { votes: [approve("bob"), approve("bob"), approve("carol")] },
    expected: out("approved", ["bob", "carol"], [], 0),
  },
  {
    name: "the same rejection twice counts once (veto off, 4 officers)",
    input: { officers: FOUR, votes: [reject("bob"), reject("bob")] },
    expected: out("pending", [], ["bob"], 2),
  },

  // veto
  {
    name: "veto on: one rejection rejects",
    input: { officers: FOUR, votes: [approve("bob"), reject("carol")], rules: { veto: true } },
    expected: out("rejected", ["bob"], ["carol"], 1),
  },
  {
    name: "veto off: one rejection leaves it pending while the threshold is reachable",
    input: { officers: FOUR, votes: [approve("bob"), reject("carol")] },
    expected: out("pending", ["bob"], ["carol"], 1),
  },
  {
    name: "veto off: approved despite a rejection",
    input: { officers: FOUR, votes: [approve("bob"), reject("carol"), approve("dave")] },
    expected: out("approved", ["bob", "dave"], ["carol"], 0),
  },
  {
    name: "veto on: a rejection after the threshold was reached still rejects before execution",
    input: { officers: FOUR, votes: [approve("bob"), approve("carol"), reject("dave")], rules: { veto: true } },
    expected: out("rejected", ["bob", "carol"], ["dave"], 0),
  },
  {
    name: "veto on: the proposer's own rejection withdraws the proposal",
    input: { votes: [approve("bob"), reject("alice")], rules: { veto: true } },
    expected: out("rejected", ["bob"], ["alice"], 1),
  },
  {
    name: "veto off: the proposer's rejection is listed but changes nothing",
    input: { officers: FOUR, votes: [approve("bob"), reject("alice")] },
    expected: out("pending", ["bob"], ["alice"], 1),
  },
  {
    name: "veto off: rejected once the rest can no longer reach the threshold",
    input: { officers: FOUR, votes: [reject("carol"), reject("dave")] },
    expected: out("rejected", [], ["carol", "dave"], 2),
  },
  {
    name: "veto off, 2-of-3: one rejection already leaves one possible approver",
    input: { votes: [approve("bob"), reject("carol")] },
    expected: out("rejected", ["bob"], ["carol"], 1),
  },

  // the same officer approves and rejects
  {
    name: "reject after approve by the same officer: the reject wins",
    input: { officers: FOUR, votes: [approve("bob"), reject("bob")] },
    expected: out("pending", [], ["bob"], 2),
  },
  {
    name: "approve after reject by the same officer: the reject still wins",
    input: { officers: FOUR, votes: [reject("bob"), approve("bob")] },
    expected: out("pending", [], ["bob"], 2),
  },
  {
    name: "a withdrawn approval no longer makes the quorum",
    input: { officers: FOUR, votes: [approve("bob"), approve("carol"), reject("carol")] },
    expected: out("pending", ["bob"], ["carol"], 1),
  },
  {
    name: "reject after approve with veto: rejected",
    input: { officers: FOUR, votes: [approve("bob"), approve("carol"), reject("carol")], rules: { veto: true } },
    expected: out("rejected", ["bob"], ["carol"], 1),
  },

  // expiry
  { name: "1 ms before expiry: still pending", input: { now: 9_999, votes: [approve("bob")] }, expected: out("pending", ["bob"], [], 1) },
  { name: "at expiresAt without quorum: expired", input: { now: 10_000, votes: [approve("bob")] }, expected: out("expired", ["bob"], [], 1) },
  { name: "long after expiry without votes: expired", input: { now: 99_000 }, expected: out("expired", [], [], 2) },
  {
    name: "quorum reached (before expiry) stays approved after expiry",
    input: { now: 20_000, votes: [approve("bob"), approve("carol")] },
    expected: out("approved", ["bob", "carol"], [], 0),
  },
  { name: "a NaN expiry counts as expired", input: { expiresAt: Number.NaN }, expected: out("expired", [], [], 2) },
  {
    name: "vetoed and then expired stays rejected",
    input: { now: 20_000, votes: [reject("bob")], rules: { veto: true } },
    expected: out("rejected", [], ["bob"], 2),
  },

  // officers removed mid-flight
  {
    name: "a removed officer's approval stops counting",
    input: { officers: ["alice", "bob", "dave"], votes: [approve("bob"), approve("carol")] },
    expected: out("pending", ["bob"], [], 1),
  },
  {
    name: "a removed officer's veto stops counting",
    input: { officers: ["alice", "bob", "dave"], votes: [approve("bob"), reject("carol")], rules: { veto: true } },
    expected: out("pending", ["bob"], [], 1),
  },
  {
    name: "votes from someone who never was an officer are ignored",
    input: { votes: [approve("bob"), approve("mallory"), reject("eve")], rules: { veto: true } },
    expected: out("pending", ["bob"], [], 1),
  },

  // threshold change: the same votes, different thresholds
  {
    name: "same votes, threshold 1: approved",
    input: { officers: FOUR, votes: [approve("bob"), approve("carol")], rules: { threshold: 1 } },
    expected: out("approved", ["bob", "carol"], [], 0),
  },
  {
    name: "same votes, threshold 2: approved",
    input: { officers: FOUR, votes: [approve("bob"), approve("carol")], rules: { threshold: 2 } },
    expected: out("approved", ["bob", "carol"], [], 0),
  },
  {
    name: "same votes, threshold raised to 3: pending again",
    input: { officers: FOUR, votes: [approve("bob"), approve("carol")], rules: { threshold: 3 } },
    expected: out("pending", ["bob", "carol"], [], 1),
  },

  // digests
  {
    name: "votes for another digest are ignored",
    input: { votes: [approve("bob", OTHER), approve("carol")] },
    expected: out("pending", ["carol"], [], 1),
  },
  {
    name: "a rejection of another digest does not veto",
    input: { votes: [reject("bob", OTHER), approve("carol")], rules: { veto: true } },
    expected: out("pending", ["carol"], [], 1),
  },
  {
    name: "an approval of another digest neither cancels a rejection nor counts",
    input: { officers: FOUR, votes: [reject("bob"), approve("bob", OTHER), approve("carol")] },
    expected: out("pending", ["carol"], ["bob"], 1),
  },

  // executed
  { name: "executed stays executed", input: { executed: true, votes: [approve("bob"), approve("carol")] }, expected: out("executed", ["bob", "carol"], [], 0) },
  {
    name: "executed stays executed after expiry, a veto and an officer removal",
    input: { executed: true, now: 99_000, officers: ["alice", "carol"], votes: [approve("bob"), reject("carol")], rules: { veto: true } },
    expected: out("executed", [], ["carol"], 0),
  },

  // thresholds that can never be met
  {
    name: "threshold above all officers: pending, not rejected",
    input: { votes: [approve("bob"), approve("carol")], rules: { threshold: 4 } },
    expected: out("pending", ["bob", "carol"], [], 2),
  },
  {
    name: "threshold equal to all officers but the proposer does not count: pending forever",
    input: { votes: [approve("alice"), approve("bob"), approve("carol")], rules: { threshold: 3 } },
    expected: out("pending", ["bob", "carol"], [], 1),
  },
  {
    name: "unreachable threshold with rejections (veto off): still pending, not rejected",
    input: { votes: [reject("bob"), reject("carol")], rules: { threshold: 4 } },
    expected: out("pending", [], ["bob", "carol"], 4),
  },
  { name: "unreachable threshold: expires", input: { now: 10_000, rules: { threshold: 4 } }, expected: out("expired", [], [], 4) },
  {
    name: "threshold 0 never approves",
    input: { votes: [approve("bob"), approve("carol")], rules: { threshold: 0 } },
    expected: out("pending", ["bob", "carol"], [], Number.POSITIVE_INFINITY),
  },
  {
    name: "negative threshold never approves",
    input: { votes: [approve("bob")], rules: { threshold: -1 } },
    expected: out("pending", ["bob"], [], Number.POSITIVE_INFINITY),
  },
  {
    name: "fractional threshold never approves",
    input: { votes: [approve("bob"), approve("carol")], rules: { threshold: 1.5 } },
    expected: out("pending", ["bob", "carol"], [], Number.POSITIVE_INFINITY),
  },
  {
    name: "NaN threshold never approves",
    input: { votes: [approve("bob"), approve("carol")], rules: { threshold: Number.NaN } },
    expected: out("pending", ["bob", "carol"], [], Number.POSITIVE_INFINITY),
  },
];

describe("decideQuorum", () => {
  for (const row of ROWS) {
    it(row.name, () => {
      assert.deepEqual(decideQuorum(build(row.input)), row.expected);
    });
  }

  it("does not depend on the order of the votes, and does not change its input", () => {
    const votes = [approve("bob"), reject("carol"), approve("carol"), approve("dave", OTHER), approve("dave"), approve("alice")];
    const input = build({ officers: FOUR, votes });
    const snapshot = structuredClone(input);
    const expected = decideQuorum(input);
    for (let i = 0; i < 50; i++) {
      const shuffled = [...votes].sort(() => Math.random() - 0.5);
      assert.deepEqual(decideQuorum({ ...input, votes: shuffled }), expected);
    }
    assert.deepEqual(input, snapshot);
  });
});

describe("validateRules", () => {
  const ok: Array<[QuorumRules, number]> = [
    [{ threshold: 1, proposerCounts: true, veto: false }, 1],
    [{ threshold: 2, proposerCounts: false, veto: false }, 3],
    [{ threshold: 3, proposerCounts: true, veto: true }, 3],
    [{ threshold: 1, proposerCounts: false, veto: true }, 2],
  ];
  for (const [rules, officers] of ok) {
    it(`accepts threshold ${rules.threshold} of ${officers} (proposerCounts ${rules.proposerCounts})`, () => {
      assert.doesNotThrow(() => validateRules(rules, officers));
    });
  }

  const bad: Array<[string, QuorumRules, number]> = [
    ["threshold 0", { threshold: 0, proposerCounts: true, veto: false }, 3],
    ["negative threshold", { threshold: -2, proposerCounts: true, veto: false }, 3],
    ["fractional threshold", { threshold: 1.5, proposerCounts: true, veto: false }, 3],
    ["NaN threshold", { threshold: Number.NaN, proposerCounts: true, veto: false }, 3],
    ["threshold above the officer count", { threshold: 4, proposerCounts: true, veto: false }, 3],
    ["threshold equal to the officer count when the proposer does not count", { threshold: 3, proposerCounts: false, veto: false }, 3],
    ["any threshold with a single officer who may not approve their own proposals", { threshold: 1, proposerCounts: false, veto: false }, 1],
    ["no officers", { threshold: 1, proposerCounts: true, veto: false }, 0],
    ["fractional officer count", { threshold: 1, proposerCounts: true, veto: false }, 2.5],
    ["negative officer count", { threshold: 1, proposerCounts: true, veto: false }, -1],
    ["non-boolean proposerCounts", { threshold: 1, proposerCounts: "yes" as unknown as boolean, veto: false }, 3],
  ];
  for (const [name, rules, officers] of bad) {
    it(`refuses ${name} with INVALID_ARGUMENT`, () => {
      assert.throws(
        () => validateRules(rules, officers),
        (e: unknown) => e instanceof CustosError && e.code === "INVALID_ARGUMENT",
      );
    });
  }
});
