import assert from "node:assert/strict";
import { after, test } from "node:test";
import pg from "pg";
import { startPostgres } from "../helpers/postgres.js";

const cluster = await startPostgres();
after(() => cluster.close());

test("a throwaway PostgreSQL cluster listens on loopback and keeps committed rows across a restart", async () => {
  assert.match(cluster.url, /^postgres:\/\/postgres@127\.0\.0\.1:\d+\/custos$/);
  const client = new pg.Client({ connectionString: cluster.url });
  await client.connect();
  await client.query("CREATE TABLE t (v integer)");
  await client.query("INSERT INTO t VALUES (7)");
  await client.end();
  cluster.stopServer();
  const refused = new pg.Client({ connectionString: cluster.url });
  await assert.rejects(refused.connect(), (e: NodeJS.ErrnoException) => e.code === "ECONNREFUSED");
  cluster.startServer();
  const again = new pg.Client({ connectionString: cluster.url });
  await again.connect();
  const { rows } = await again.query<{ v: number }>("SELECT v FROM t");
  await again.end();
  assert.deepEqual(rows, [{ v: 7 }]);
});
