import { describe, it } from "node:test";
import assert from "node:assert/strict";
import pkcs11js from "pkcs11js";
import { CustosError } from "../../src/errors.js";
import { ckrName, ckrOf, isSessionLost, toCustosError } from "../../src/hsm/pkcs11/ckr.js";

/** An error as pkcs11js throws it. */
const ckr = (code: number, method = "C_Sign") => new pkcs11js.Pkcs11Error(`${ckrName(code)}:${code}`, code, method);

describe("toCustosError", () => {
  // Session, login or device gone: the caller retries once the HSM is reopened.
  const lost: Array<[number, string]> = [
    [0x05, "CKR_GENERAL_ERROR"],
    [0x30, "CKR_DEVICE_ERROR"],
    [0x31, "CKR_DEVICE_MEMORY"],
    [0x32, "CKR_DEVICE_REMOVED"],
    [0xb0, "CKR_SESSION_CLOSED"],
    [0xb3, "CKR_SESSION_HANDLE_INVALID"],
    [0xe0, "CKR_TOKEN_NOT_PRESENT"],
    [0x101, "CKR_USER_NOT_LOGGED_IN"],
    [0x190, "CKR_CRYPTOKI_NOT_INITIALIZED"],
    [0x1a0, "CKR_FUNCTION_REJECTED"],
  ];
  for (const [code, name] of lost) {
    it(`${name} → HSM_UNAVAILABLE, retryable`, () => {
      for (const unwrapping of [false, true]) {
        const e = toCustosError(ckr(code), "C_Sign", { unwrapping });
        assert.equal(e.code, "HSM_UNAVAILABLE");
        assert.equal(e.retryable, true);
      }
      assert.equal(isSessionLost(ckr(code)), true);
    });
  }

  it("CKR_KEY_SIZE_RANGE → HSM_KEY_SIZE, not retryable", () => {
    for (const unwrapping of [false, true]) {
      const e = toCustosError(ckr(0x62), "C_SignInit", { unwrapping });
      assert.equal(e.code, "HSM_KEY_SIZE");
      assert.equal(e.retryable, false);
    }
  });

  // Data errors mean a bad envelope only while unwrapping; elsewhere they are HSM faults.
  const envelope: Array<[number, string]> = [
    [0x20, "CKR_DATA_INVALID"],
    [0x21, "CKR_DATA_LEN_RANGE"],
    [0x40, "CKR_ENCRYPTED_DATA_INVALID"],
    [0x41, "CKR_ENCRYPTED_DATA_LEN_RANGE"],
    [0x110, "CKR_WRAPPED_KEY_INVALID"],
    [0x112, "CKR_WRAPPED_KEY_LEN_RANGE"],
    [0x07, "CKR_ARGUMENTS_BAD"],
  ];
  for (const [code, name] of envelope) {
    it(`${name} → ENVELOPE_INVALID while unwrapping, HSM_ERROR otherwise`, () => {
      assert.equal(toCustosError(ckr(code, "C_UnwrapKey"), "C_UnwrapKey", { unwrapping: true }).code, "ENVELOPE_INVALID");
      assert.equal(toCustosError(ckr(code), "C_Sign").code, "HSM_ERROR");
      assert.equal(toCustosError(ckr(code), "C_Sign", { unwrapping: false }).code, "HSM_ERROR");
      assert.equal(isSessionLost(ckr(code)), false);
    });
  }

  it("any other CKR → HSM_ERROR, not retryable", () => {
    for (const code of [0x82 /* OBJECT_HANDLE_INVALID */, 0x90 /* OPERATION_ACTIVE */, 0x150 /* BUFFER_TOO_SMALL */, 0x12345]) {
      const e = toCustosError(ckr(code), "C_Sign", { unwrapping: true });
      assert.equal(e.code, "HSM_ERROR", `0x${code.toString(16)}`);
      assert.equal(e.retryable, false);
    }
  });

  it("a non-PKCS#11 error → HSM_ERROR with the original as cause", () => {
    for (const thrown of [new Error("native crash"), new TypeError("x is undefined"), "string", null, { code: "EIO" }]) {
      const e = toCustosError(thrown, "C_Sign");
      assert.equal(e.code, "HSM_ERROR");
      assert.equal(e.retryable, false);
      assert.equal(e.cause, thrown);
      assert.equal(isSessionLost(thrown), false);
    }
  });

  it("keeps the PKCS#11 error as cause", () => {
    const original = ckr(0xb3);
    assert.equal(toCustosError(original, "C_Sign").cause, original);
  });

  it("passes a CustosError through unchanged", () => {
    const original = new CustosError("ENVELOPE_INVALID", "x");
    assert.equal(toCustosError(original, "C_UnwrapKey"), original);
  });
});

describe("ckrOf / ckrName", () => {
  it("reads the numeric code of a pkcs11js error only", () => {
    assert.equal(ckrOf(ckr(0xb3)), 0xb3);
    assert.equal(ckrOf({ code: 5 }), 5);
    for (const v of [new Error("x"), { code: "EIO" }, null, undefined, 7]) assert.equal(ckrOf(v), undefined);
  });

  it("names codes from the pkcs11js constants", () => {
    assert.equal(ckrName(0xb3), "CKR_SESSION_HANDLE_INVALID");
    assert.equal(ckrName(0x62), "CKR_KEY_SIZE_RANGE");
    assert.equal(ckrName(0x110), "CKR_WRAPPED_KEY_INVALID");
    assert.equal(ckrName(0), "CKR_OK");
  });

  it("names unknown codes in hex", () => {
    assert.equal(ckrName(0x12345), "CKR_0x12345");
  });
});
