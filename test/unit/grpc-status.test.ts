import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { status } from "@grpc/grpc-js";
import { CustosError, type CustosErrorCode } from "../../src/errors.js";
import { ErrorInfo, Status } from "../../src/gen/google/rpc/status.js";
import { createLogger } from "../../src/log.js";
import { ERROR_DOMAIN, REASON_HEADER, describeError, reasonOf, toServiceError } from "../../src/transport/grpc/status.js";

// Typed as a Record so a new CustosErrorCode without an expected status fails to compile.
const EXPECTED: Record<CustosErrorCode, status> = {
  UNAUTHENTICATED: status.UNAUTHENTICATED,
  UNKNOWN_CLIENT: status.UNAUTHENTICATED,
  ADDRESS_NOT_ALLOWED: status.PERMISSION_DENIED,
  NO_GRANT: status.PERMISSION_DENIED,
  ROLE_NOT_ALLOWED: status.PERMISSION_DENIED,
  RATE_LIMITED: status.RESOURCE_EXHAUSTED,
  KEY_NOT_FOUND: status.NOT_FOUND,
  KEY_EXISTS: status.ALREADY_EXISTS,
  VERSION_NOT_FOUND: status.NOT_FOUND,
  VERSION_NOT_USABLE: status.FAILED_PRECONDITION,
  KEY_NOT_ACTIVE: status.FAILED_PRECONDITION,
  KEY_FROZEN: status.FAILED_PRECONDITION,
  CLIENT_FROZEN: status.FAILED_PRECONDITION,
  GOVERNANCE_NOT_INITIALISED: status.FAILED_PRECONDITION,
  GOVERNANCE_EXISTS: status.ALREADY_EXISTS,
  NOT_AN_OFFICER: status.PERMISSION_DENIED,
  PROPOSAL_NOT_FOUND: status.NOT_FOUND,
  PROPOSAL_CLOSED: status.FAILED_PRECONDITION,
  DIGEST_MISMATCH: status.FAILED_PRECONDITION,
  BAD_SIGNATURE: status.PERMISSION_DENIED,
  PRECONDITION_FAILED: status.FAILED_PRECONDITION,
  NONCE_INVALID: status.FAILED_PRECONDITION,
  PASSKEY_INVALID: status.PERMISSION_DENIED,
  SESSION_EXPIRED: status.UNAUTHENTICATED,
  CSRF_REJECTED: status.PERMISSION_DENIED,
  POLICY_DENIED: status.PERMISSION_DENIED,
  NO_DIALECT: status.FAILED_PRECONDITION,
  UNKNOWN_EXCHANGE: status.INVALID_ARGUMENT,
  NO_API_KEY_ID: status.FAILED_PRECONDITION,
  EXCHANGE_UNAVAILABLE: status.UNAVAILABLE,
  EXCHANGE_RESPONSE_TOO_LARGE: status.UNAVAILABLE,
  INVALID_ARGUMENT: status.INVALID_ARGUMENT,
  MALFORMED_REQUEST: status.INVALID_ARGUMENT,
  PAYLOAD_TOO_LARGE: status.INVALID_ARGUMENT,
  ENVELOPE_INVALID: status.INVALID_ARGUMENT,
  HSM_UNAVAILABLE: status.UNAVAILABLE,
  HSM_KEY_SIZE: status.FAILED_PRECONDITION,
  HSM_UNSUPPORTED: status.FAILED_PRECONDITION,
  HSM_ERROR: status.INTERNAL,
  AUDIT_REWOUND: status.FAILED_PRECONDITION,
  AUDIT_CHECKPOINT_INVALID: status.FAILED_PRECONDITION,
  STORE_ERROR: status.UNAVAILABLE,
  INTERNAL: status.INTERNAL,
};

/** Codes whose own message may reach the client; all others get a generic one. */
const HIDDEN = new Set<CustosErrorCode>([
  "ENVELOPE_INVALID",
  "HSM_UNAVAILABLE",
  "HSM_KEY_SIZE",
  "HSM_ERROR",
  "AUDIT_REWOUND",
  "AUDIT_CHECKPOINT_INVALID",
  "STORE_ERROR",
  "INTERNAL",
]);

const SECRETISH = "C_Sign: CKR_GENERAL_ERROR (slot 0, object custos:k1:v1, /var/lib/custos/db)";

function logSink() {
  const stream = new PassThrough();
  let text = "";
  stream.on("data", (d: Buffer) => (text += d.toString()));
  return { logger: createLogger("info", stream), text: () => text };
}

/** The google.rpc.Status and ErrorInfo carried in grpc-status-details-bin. */
function decodeDetails(err: ReturnType<typeof toServiceError>) {
  const bin = err.metadata!.get("grpc-status-details-bin")[0];
  assert.ok(Buffer.isBuffer(bin), "binary trailer");
  const st = Status.decode(bin);
  assert.equal(st.details.length, 1);
  assert.equal(st.details[0]!.typeUrl, "type.googleapis.com/google.rpc.ErrorInfo");
  return { status: st, info: ErrorInfo.decode(st.details[0]!.value) };
}

describe("describeError", () => {
  for (const [code, expected] of Object.entries(EXPECTED) as Array<[CustosErrorCode, status]>) {
    it(`${code} → ${status[expected]}`, () => {
      const d = describeError(new CustosError(code, SECRETISH));
      assert.equal(d.code, expected);
      assert.equal(d.reason, code);
      if (HIDDEN.has(code)) {
        assert.ok(!d.message.includes("CKR"), `message leaks: ${d.message}`);
        assert.ok(!d.message.includes("custos:k1"), `message leaks: ${d.message}`);
        assert.ok(d.message.length > 0);
      } else {
        assert.equal(d.message, SECRETISH, "denials explain themselves");
      }
    });
  }

  it("answers a plain Error with a generic INTERNAL", () => {
    const d = describeError(new Error("ENOENT /etc/custos/secrets/user.pin CKR_PIN_INCORRECT"));
    assert.equal(d.code, status.INTERNAL);
    assert.equal(d.reason, "INTERNAL");
    assert.ok(!/CKR|pin|ENOENT/i.test(d.message), `message leaks: ${d.message}`);
  });

  it("answers a thrown non-Error with a generic INTERNAL", () => {
    for (const thrown of ["CKR_DEVICE_ERROR", 42, null, undefined, { code: "NO_GRANT" }]) {
      const d = describeError(thrown);
      assert.equal(d.code, status.INTERNAL);
      assert.equal(d.reason, "INTERNAL");
      assert.ok(!d.message.includes("CKR"));
    }
  });
});

describe("toServiceError", () => {
  for (const code of Object.keys(EXPECTED) as CustosErrorCode[]) {
    it(`carries ${code} in the custos-reason trailer and in ErrorInfo`, () => {
      const err = toServiceError(new CustosError(code, SECRETISH), logSink().logger, "req-123");
      assert.equal(err.code, EXPECTED[code]);
      assert.equal(err.metadata!.get(REASON_HEADER)[0], code);
      assert.equal(reasonOf({ metadata: err.metadata! }), code);
      const { status: st, info } = decodeDetails(err);
      assert.equal(st.code, EXPECTED[code]);
      assert.equal(st.message, err.details);
      assert.equal(info.reason, code);
      assert.equal(info.domain, ERROR_DOMAIN);
      assert.equal(ERROR_DOMAIN, "custos.dev");
      assert.equal(info.metadata.requestId, "req-123");
      if (HIDDEN.has(code)) {
        // Neither the status text nor the binary trailer carries the internal message.
        assert.ok(!err.details!.includes("CKR"));
        assert.ok(!err.metadata!.get("grpc-status-details-bin")[0]!.toString().includes("CKR"));
      }
    });
  }

  it("keeps an HSM failure's CKR name out of everything sent to the client", () => {
    const err = toServiceError(new CustosError("HSM_ERROR", "C_Sign: CKR_GENERAL_ERROR"), logSink().logger, "r1");
    assert.equal(err.code, status.INTERNAL);
    const wire = [err.details!, ...Object.values(err.metadata!.getMap()).map((v) => v.toString())].join("\n");
    assert.ok(!wire.includes("CKR"), wire);
    assert.ok(!decodeDetails(err).status.message.includes("CKR"));
  });

  it("maps a plain Error to INTERNAL with reason INTERNAL", () => {
    const err = toServiceError(new Error("CKR_TOKEN_NOT_PRESENT"), logSink().logger, "r2");
    assert.equal(err.code, status.INTERNAL);
    assert.equal(reasonOf({ metadata: err.metadata! }), "INTERNAL");
    assert.equal(decodeDetails(err).info.reason, "INTERNAL");
    assert.ok(!err.details!.includes("CKR"));
  });

  it("logs failures (with the request id) but not denials", () => {
    const sink = logSink();
    toServiceError(new CustosError("NO_GRANT", "no grant"), sink.logger, "deny-1");
    toServiceError(new CustosError("RATE_LIMITED", "slow down"), sink.logger, "deny-2");
    assert.equal(sink.text(), "");
    toServiceError(new CustosError("HSM_UNAVAILABLE", "C_Sign: CKR_SESSION_HANDLE_INVALID"), sink.logger, "fail-1");
    toServiceError(new Error("boom"), sink.logger, "fail-2");
    const lines = sink
      .text()
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(
      lines.map((l) => [l.requestId, l.reason, l.level]),
      [
        ["fail-1", "HSM_UNAVAILABLE", "error"],
        ["fail-2", "INTERNAL", "error"],
      ],
    );
  });
});
