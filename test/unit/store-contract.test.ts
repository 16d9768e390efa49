import { after } from "node:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import { storeContract } from "../helpers/store-contract.js";

const dir = mkdtempSync(join(tmpdir(), "custos-store-contract-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

// A file (not ":memory:"): WAL, the owner-only file and the migrations are part of what runs.
storeContract("SQLite", async () => new SqliteStore(join(dir, `store-${++n}.db`)));
