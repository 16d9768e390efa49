import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { status } from "@grpc/grpc-js";
import { ERROR_TABLE, GrpcCode, describeCustosError } from "../../src/error-table.js";
import { CustosError, type CustosErrorCode } from "../../src/errors.js";
import { describeError } from "../../src/transport/grpc/status.js";

// Typed as a Record so a new CustosErrorCode missing here fails to compile; the test then checks the table has it too.
const EVERY_CODE: Record<CustosErrorCode, true> = {
  UNAUTHENTICATED: true,
  UNKNOWN_CLIENT: true,
  ADDRESS_NOT_ALLOWED: true,
  NO_GRANT: true,
  ROLE_NOT_ALLOWED: true,
  RATE_LIMITED: true,
  KEY_NOT_FOUND: true,
  KEY_EXISTS: true,
  VERSION_NOT_FOUND: true,
  VERSION_NOT_USABLE: true,
  KEY_NOT_ACTIVE: true,
  KEY_FROZEN: true,
  CLIENT_FROZEN: true,
  GOVERNANCE_NOT_INITIALISED: true,
  GOVERNANCE_EXISTS: true,
  NOT_AN_OFFICER: true,
  PROPOSAL_NOT_FOUND: true,
  PROPOSAL_CLOSED: true,
  DIGEST_MISMATCH: true,
  BAD_SIGNATURE: true,
  PRECONDITION_FAILED: true,
  NONCE_INVALID: true,
  PASSKEY_INVALID: true,
  SESSION_EXPIRED: true,
  CSRF_REJECTED: true,
  POLICY_DENIED: true,
  NO_DIALECT: true,
  UNKNOWN_EXCHANGE: true,
  NO_API_KEY_ID: true,
  EXCHANGE_UNAVAILABLE: true,
  EXCHANGE_RESPONSE_TOO_LARGE: true,
  INVALID_ARGUMENT: true,
  MALFORMED_REQUEST: true,
  PAYLOAD_TOO_LARGE: true,
  ENVELOPE_INVALID: true,
  HSM_UNAVAILABLE: true,
  HSM_KEY_SIZE: true,
  HSM_UNSUPPORTED: true,
  HSM_ERROR: true,
  AUDIT_REWOUND: true,
  AUDIT_CHECKPOINT_INVALID: true,
  STORE_ERROR: true,
  INTERNAL: true,
};

/** The HTTP status class each gRPC status may take (a console answer never contradicts the gRPC one). */
const HTTP_FOR_GRPC: Record<number, number[]> = {
  [status.INVALID_ARGUMENT]: [400, 413],
  [status.NOT_FOUND]: [404],
  [status.ALREADY_EXISTS]: [409],
  [status.PERMISSION_DENIED]: [403],
  [status.RESOURCE_EXHAUSTED]: [429],
  [status.FAILED_PRECONDITION]: [400, 409],
  [status.INTERNAL]: [500],
  [status.UNAVAILABLE]: [503],
  [status.UNAUTHENTICATED]: [401, 404],
};

describe("the one error table (gRPC and the console)", () => {
  it("has an entry for every code in the union, with a gRPC status and an HTTP status that agree", () => {
    const codes = Object.keys(EVERY_CODE) as CustosErrorCode[];
    assert.deepEqual(Object.keys(ERROR_TABLE).sort(), [...codes].sort());
    for (const code of codes) {
      const { grpc, http } = ERROR_TABLE[code];
      assert.ok(HTTP_FOR_GRPC[grpc]?.includes(http), `${code}: HTTP ${http} for gRPC ${grpc}`);
    }
  });

  it("uses google.rpc.Code numbers, as grpc-js's status enum does", () => {
    for (const [name, value] of Object.entries(GrpcCode)) assert.equal(value, status[name as keyof typeof status], name);
  });

  it("gives HSM_UNAVAILABLE and STORE_ERROR 503 and KEY_FROZEN 409 (they were console 500s)", () => {
    assert.equal(ERROR_TABLE.HSM_UNAVAILABLE.http, 503);
    assert.equal(ERROR_TABLE.STORE_ERROR.http, 503);
    assert.equal(ERROR_TABLE.KEY_FROZEN.http, 409);
  });

  it("is what the gRPC edge answers, and hides the same messages", () => {
    for (const code of Object.keys(EVERY_CODE) as CustosErrorCode[]) {
      const e = new CustosError(code, "detail: CKR_DEVICE_ERROR");
      const grpc = describeError(e);
      const both = describeCustosError(e);
      assert.equal(grpc.code as number, both.grpc, code);
      assert.equal(grpc.message, both.message, code);
      assert.equal(grpc.reason, code);
    }
    assert.deepEqual(describeCustosError(new Error("CKR_GENERAL_ERROR")), { reason: "INTERNAL", grpc: status.INTERNAL, http: 500, message: "internal error" });
  });
});
