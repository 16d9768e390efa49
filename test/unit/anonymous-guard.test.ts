import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { AuditEvent } from "../../src/audit/audit-log.js";
import { AnonymousFailures, challengeOwner, sourceOf, SourceRateLimiter } from "../../src/transport/http/console/anonymous-guard.js";

describe("console anonymous guard", () => {
  it("a source is the IPv4 address (mapped or not) or the IPv6 /64", () => {
    const cases: Array<[string | undefined, string]> = [
      ["127.0.0.2", "127.0.0.2"],
      ["::ffff:10.1.2.3", "10.1.2.3"],
      ["2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"],
      ["2001:db8:1:2:ffff:ffff:ffff:fffe", "2001:db8:1:2::/64"],
      ["2001:db8::1", "2001:db8:0:0::/64"],
      ["::1", "0:0:0:0::/64"],
      ["not an address", "unknown"],
      [undefined, "unknown"],
    ];
    assert.deepEqual(
      cases.map(([ip]) => sourceOf(ip)),
      cases.map(([, want]) => want),
    );
  });

  it("binds challenges to opaque tags: another browser or another source is another owner", () => {
    const a = challengeOwner("127.0.0.2", "cookie-a");
    assert.deepEqual(a, challengeOwner("127.0.0.2", "cookie-a"));
    assert.notEqual(challengeOwner("127.0.0.2", "cookie-b").browser, a.browser);
    assert.notEqual(challengeOwner("127.0.0.3", "cookie-a").source, a.source);
    assert.match(`${a.source}${a.browser}`, /^[0-9a-f]{48}$/, "no address or cookie in the store key");
  });

  it("limits each source to its burst, refills with time, and keeps other sources apart", () => {
    let t = 0;
    const limiter = new SourceRateLimiter({ perSecond: 0.5, burst: 3 }, () => t, 2);
    assert.deepEqual(
      [1, 2, 3, 4].map(() => limiter.take("a")),
      [true, true, true, false],
    );
    assert.equal(limiter.take("b"), true, "another source has its own bucket");
    t = 2_000;
    assert.deepEqual([limiter.take("a"), limiter.take("a")], [true, false], "one token back after 2 s");
  });

  it("writes one event per source and interval with counts per endpoint and reason", () => {
    let t = Date.parse("2026-01-05T10:00:00.000Z");
    const written: AuditEvent[] = [];
    const failures = new AnonymousFailures(
      (e) => written.push(e),
      () => t,
      60_000,
      2,
    );
    for (let i = 0; i < 500; i++) failures.note("127.0.0.2", "login", "NONCE_INVALID");
    for (let i = 0; i < 3; i++) failures.note("127.0.0.2", "enroll", "UNAUTHENTICATED");
    failures.note("127.0.0.4", "login", "RATE_LIMITED");
    failures.note("127.0.0.5", "enroll", "RATE_LIMITED");
    t += 60_000;
    failures.flush();
    assert.deepEqual(
      written.map((e) => [e.kind, e.peer, e.details]),
      [
        [
          "console.anonymous_failures",
          "127.0.0.2",
          { from: "2026-01-05T10:00:00.000Z", to: "2026-01-05T10:01:00.000Z", total: 503, "login.NONCE_INVALID": 500, "enroll.UNAUTHENTICATED": 3 },
        ],
        ["console.anonymous_failures", "127.0.0.4", { from: "2026-01-05T10:00:00.000Z", to: "2026-01-05T10:01:00.000Z", total: 1, "login.RATE_LIMITED": 1 }],
        ["console.anonymous_failures", "other", { from: "2026-01-05T10:00:00.000Z", to: "2026-01-05T10:01:00.000Z", total: 1, "enroll.RATE_LIMITED": 1 }],
      ],
    );
    failures.close();
    assert.equal(written.length, 3, "nothing new: nothing written");
  });
});
