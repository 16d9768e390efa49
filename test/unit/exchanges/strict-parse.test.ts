import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { CustosError } from "../../../src/errors.js";
import { checkStrictRequest, formPairsStrict, parseJsonStrict } from "../../../src/exchanges/strict-parse.js";

const refused = (fn: () => unknown): void => assert.throws(fn, (e: unknown) => e instanceof CustosError && e.code === "INVALID_ARGUMENT");

describe("parseJsonStrict", () => {
  it("reads what JSON.parse reads when no object repeats a key", () => {
    for (const text of ['{"a":1,"b":{"a":2},"c":[{"a":3},{"a":4}]}', "[1,2,3]", '"x"', "7", '{"k":"v \\" \\\\ }{ : ,"}', '{"a":{"b":{"c":{}}},"b":[]}']) {
      assert.deepEqual(parseJsonStrict(text), JSON.parse(text));
    }
  });
  it("refuses a key named twice in one object, at any depth", () => {
    refused(() => parseJsonStrict('{"method":"private/withdraw","method":"private/buy"}'));
    refused(() => parseJsonStrict('{"params":{"amount":1,"amount":1000}}'));
    refused(() => parseJsonStrict('[{"symbol":"A"},{"symbol":"B","symbol":"C"}]'));
    refused(() => parseJsonStrict('{ "a" : 1 , "a" : 2 }'));
  });
  it("compares keys after unescaping, as parsers do", () => {
    refused(() => parseJsonStrict('{"a":1,"\\u0061":2}'));
    refused(() => parseJsonStrict('{"sym\\"bol":1,"sym\\u0022bol":2}'));
  });
  it("does not mistake strings for keys", () => {
    assert.deepEqual(parseJsonStrict('{"a":"b","c":["a","a"],"d":"a\\":"}'), { a: "b", c: ["a", "a"], d: 'a":' });
    // The same key in sibling objects is no repetition.
    assert.deepEqual(parseJsonStrict('[{"a":1},{"a":2}]'), [{ a: 1 }, { a: 2 }]);
  });
  it("refuses what is not JSON", () => {
    refused(() => parseJsonStrict("{"));
    refused(() => parseJsonStrict("a=1"));
  });
});

describe("formPairsStrict", () => {
  it("decodes as URLSearchParams does", () => {
    for (const text of ["a=1&b=2", "a=1&&b=", "a&b=%20c+d", "x=%E2%82%AC&y=1%2B1", "a=1&", "=v&k="]) {
      assert.deepEqual([...formPairsStrict(text)], [...new URLSearchParams(text)], text);
    }
  });
  it("refuses a name given twice, before or after decoding", () => {
    refused(() => formPairsStrict("symbol=ETHUSDT&side=BUY&symbol=BTCUSDT"));
    refused(() => formPairsStrict("symbol=A&sym%62ol=B"));
    const many = Array.from({ length: 40 }, (_, i) => `p${i}=${i}`).join("&");
    assert.equal(formPairsStrict(many).length, 40);
    refused(() => formPairsStrict(`${many}&p7=x`));
  });
  it("answers each text with its own pairs (the one-slot cache compares contents)", () => {
    assert.deepEqual([...formPairsStrict("a=1")], [["a", "1"]]);
    assert.deepEqual([...formPairsStrict("a=2")], [["a", "2"]]);
    assert.deepEqual([...formPairsStrict("a=1")], [["a", "1"]]);
    refused(() => formPairsStrict("a=1&a=1"));
    refused(() => formPairsStrict("a=1&a=1"));
  });
});

describe("checkStrictRequest", () => {
  it("reads the query, and the body as JSON or as a form by its first character", () => {
    checkStrictRequest({ query: "a=1", body: ' {"a":1}' });
    checkStrictRequest({ query: "", body: "a=1&b=2" });
    refused(() => checkStrictRequest({ query: "a=1&a=2", body: "" }));
    refused(() => checkStrictRequest({ query: "", body: '\n{"a":1,"a":2}' }));
    refused(() => checkStrictRequest({ query: "", body: "a=1&a=2" }));
  });
});
