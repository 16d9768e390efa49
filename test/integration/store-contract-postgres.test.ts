import { after } from "node:test";
import { PgStore } from "../../src/store/postgres/pg-store.js";
import { storeContract } from "../helpers/store-contract.js";
import { startPostgres } from "../helpers/postgres.js";

// The same contract the SQLite store passes (test/unit/store-contract.test.ts), on a real
// PostgreSQL cluster: each test gets a fresh database, migrated by PgStore.open.
const cluster = await startPostgres();
after(() => cluster.close());
let n = 0;

storeContract("PostgreSQL", async () => PgStore.open(await cluster.createDatabase(`contract_${++n}`)));
