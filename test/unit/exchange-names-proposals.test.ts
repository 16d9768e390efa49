import { afterEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import type { NewKeyMetadata, ProposalInput } from "../../src/governance/proposal-input.js";
import type { ProposalContent } from "../../src/governance/proposal.js";
import { alice, auditSince, bob, brief, closeFixtures, envelopeOf, fixture, lastSeq, pass, rejectsWith, vote, type Fixture } from "./governance-fixture.js";

/**
 * A new key's exchange, as governance validates it: an unknown name is refused at Propose, a
 * ccxt alias becomes the dialect's id in the signed content (and so in the store), and a raw-only
 * key is asked for by name and said to be one in the summary officers approve.
 */

afterEach(closeFixtures);

const meta = (keyId: string, exchange: string, over: Partial<NewKeyMetadata> = {}): NewKeyMetadata => ({
  keyId,
  exchange,
  environment: "testnet",
  label: keyId,
  apiKeyId: `api-${keyId}`,
  algorithm: "hmac-sha256",
  maxAgeDays: 45,
  ...over,
});
const importAs = (f: Fixture, keyId: string, exchange: string): ProposalInput => ({
  kind: "import_key",
  key: meta(keyId, exchange),
  envelope: envelopeOf(f, randomBytes(32)),
});
const generateAs = (keyId: string, exchange: string): ProposalInput => ({ kind: "generate_key", key: meta(keyId, exchange, { algorithm: "ed25519" }) });
const signedExchange = (canonical: string) => (JSON.parse(canonical) as ProposalContent).params.exchange;
const RAW_ONLY_LINE = /^RAW-ONLY key/;

describe("exchange names in key proposals", () => {
  it("refuses an unknown exchange at Propose (import and generate): UNKNOWN_EXCHANGE, audited, nothing stored, no HSM call", async () => {
    const f = await fixture({ threshold: 1 });
    const calls = f.hsm.calls.length;
    const seq = await lastSeq(f);
    const refused: ProposalInput[] = [importAs(f, "k-kraken", "kraken"), importAs(f, "k-typo", "binance-futures"), generateAs("k-coinbase", "coinbase")];
    for (const input of refused) await rejectsWith(f.gov.propose(alice.caller, input), "UNKNOWN_EXCHANGE");
    assert.deepEqual(brief(await auditSince(f, seq)), Array(3).fill("proposal.create alice denied UNKNOWN_EXCHANGE"));
    assert.equal((await f.store.governance.listProposals()).length, 0);
    assert.equal(f.hsm.calls.length, calls);
  });

  it("stores a ccxt alias as the dialect's exchange: the signed content, the summary and the key say binance", async () => {
    const f = await fixture({ threshold: 1 });
    const proposed = await f.gov.propose(alice.caller, importAs(f, "k-usdm", "binanceusdm"));
    assert.equal(signedExchange(proposed.record.canonical), "binance");
    assert.match(proposed.summary[0]!, /^import key k-usdm \(binance testnet, hmac-sha256,/);
    assert.ok(!proposed.summary.some((l) => RAW_ONLY_LINE.test(l)), proposed.summary.join("\n"));
    assert.equal((await vote(f, bob, proposed.record.id)).record.state, "executed");
    assert.equal((await f.store.keys.getKey("k-usdm"))?.exchange, "binance");

    const generated = await pass(f, generateAs("k-coinm", "binancecoinm"), [bob]);
    assert.equal(signedExchange(generated.record.canonical), "binance");
    assert.equal((await f.store.keys.getKey("k-coinm"))?.exchange, "binance");
  });

  it("imports a raw-only key asked for as raw, and its summary says so", async () => {
    const f = await fixture({ threshold: 1 });
    const view = await pass(f, importAs(f, "k-raw", "raw"), [bob]);
    assert.equal(signedExchange(view.record.canonical), "raw");
    assert.ok(
      view.summary.some((l) => RAW_ONLY_LINE.test(l)),
      view.summary.join("\n"),
    );
    assert.equal((await f.store.keys.getKey("k-raw"))?.exchange, "raw");
    const generated = await pass(f, generateAs("k-raw-ed", "raw"), [bob]);
    assert.ok(
      generated.summary.some((l) => RAW_ONLY_LINE.test(l)),
      generated.summary.join("\n"),
    );
  });

  it("flags proposals about a key stored under a name without a dialect (before names were checked) as raw-only", async () => {
    const f = await fixture({ threshold: 1 });
    const at = new Date().toISOString();
    await f.store.keys.createKey(
      { id: "k-legacy", exchange: "custom", environment: "testnet", label: "k-legacy", apiKeyId: "x", algorithm: "hmac-sha256", maxAgeDays: 45, createdAt: at },
      { keyId: "k-legacy", version: 1, objectId: "custos:k-legacy:v1", state: "active", createdAt: at, activatedAt: at },
    );
    const policy = await f.gov.propose(alice.caller, { kind: "set_policy", keyId: "k-legacy", policyJson: "{}" });
    assert.ok(
      policy.summary.some((l) => RAW_ONLY_LINE.test(l) && l.includes('"custom"')),
      policy.summary.join("\n"),
    );
    // A dialect key's proposals carry no such line.
    await pass(f, importAs(f, "k-bn", "binance"), [bob]);
    const other = await f.gov.propose(alice.caller, { kind: "set_policy", keyId: "k-bn", policyJson: "{}" });
    assert.ok(!other.summary.some((l) => RAW_ONLY_LINE.test(l)), other.summary.join("\n"));
  });
});
