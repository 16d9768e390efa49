import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { decodeJobs, decodeOutcomes, encodeJobs, encodeOutcomes, type SignJob, type SignOutcome } from "../../src/hsm/pkcs11/sign-batch.js";

describe("signing-thread batches", () => {
  it("jobs survive the trip byte for byte, including empty and pooled payloads", () => {
    const pooled = Buffer.from("symbol=BTCUSDT"); // a view into Node's shared pool slab
    const jobs: SignJob[] = [
      { id: 1, keyIndex: 0, mechanism: 0x251, macBytes: 32, data: pooled },
      { id: 2, keyIndex: 7, mechanism: 0x261, macBytes: 48, data: new Uint8Array(0) },
      { id: 4_000_000_000, keyIndex: 1, mechanism: 0x271, macBytes: 64, data: randomBytes(65_536) },
    ];
    const buf = encodeJobs(jobs);
    // Only the batch travels: its size is the payloads plus a fixed header, not a pool slab.
    assert.equal(buf.byteLength, 4 + 3 * 20 + pooled.byteLength + 65_536);
    const back = decodeJobs(buf);
    assert.equal(back.length, 3);
    back.forEach((j, i) => {
      const { data, ...rest } = jobs[i]!;
      assert.deepEqual({ ...j, data: undefined }, { ...rest, data: undefined });
      assert.deepEqual(Buffer.from(j.data), Buffer.from(data));
    });
  });

  it("outcomes keep signatures and CKR codes, in order", () => {
    const sigA = randomBytes(32);
    const sigB = randomBytes(64);
    const outcomes: SignOutcome[] = [
      { id: 10, signature: sigA },
      { id: 11, ckr: 0xb3 }, // CKR_SESSION_HANDLE_INVALID
      { id: 12, ckr: -1 }, // not a PKCS#11 error
      { id: 4_000_000_013, signature: sigB },
    ];
    const back = decodeOutcomes(encodeOutcomes(outcomes));
    assert.equal(back.length, 4);
    assert.deepEqual(Buffer.from((back[0] as { signature: Uint8Array }).signature), sigA);
    assert.deepEqual(back[1], { id: 11, ckr: 0xb3 });
    assert.deepEqual(back[2], { id: 12, ckr: -1 });
    assert.deepEqual(Buffer.from((back[3] as { signature: Uint8Array }).signature), sigB);
    assert.equal(back[3]!.id, 4_000_000_013, "ids above 2^31 stay unsigned");
  });

  it("an empty batch is valid both ways", () => {
    assert.deepEqual(decodeJobs(encodeJobs([])), []);
    assert.deepEqual(decodeOutcomes(encodeOutcomes([])), []);
  });
});
