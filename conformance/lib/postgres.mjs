// A fresh PostgreSQL database per test file, for the multi-node tests
// (test/multinode*.test.mjs): several `ferry serve` processes with
// DATABASE_URL pointing at it share one app.
//
//   const pg = pgDatabase('failover');
//   describe('…', { skip: pg.skip }, () => { … startNodes(pg, 3, { schema }) … });
//   after(() => pg.drop());
//
// PostgreSQL is expected on 127.0.0.1:5432 with trust auth (override the
// admin URL with FERRY_TEST_POSTGRES_ADMIN). Without it the tests are skipped
// with a message saying so, except under CI=true, where that is an error.
// Ferry-only: the reference server has no PostgreSQL backend.
import { spawnSync } from 'node:child_process';
import { startServer, target } from './server.mjs';

export const PG_ADMIN = process.env.FERRY_TEST_POSTGRES_ADMIN ?? 'postgres://postgres@127.0.0.1:5432/test';

/** Run `sql` on the admin database with psql; returns spawnSync's result. */
export function psql(sql) {
  return spawnSync('psql', [PG_ADMIN, '-v', 'ON_ERROR_STOP=1', '-qc', sql], { encoding: 'utf8' });
}

/**
 * Create a database named after `label` and this process. Returns
 * { name, url, skip, drop() }: `skip` is false or the reason to skip (give
 * it to describe), `url` the DATABASE_URL for the nodes.
 */
export function pgDatabase(label) {
  const name = `ferry_conf_${label}_${process.pid}_${Date.now()}`;
  const created = target === 'ferry' ? psql(`create database ${name}`) : { status: 1 };
  const available = created.status === 0;
  if (!available && target === 'ferry' && process.env.CI === 'true') {
    throw new Error(`PostgreSQL is required under CI=true: ${created.stderr ?? created.error}`);
  }
  const skip =
    target !== 'ferry'
      ? 'Ferry-only: several nodes sharing PostgreSQL'
      : !available
        ? `SKIPPED: PostgreSQL not reachable at ${PG_ADMIN}`
        : false;
  return {
    name,
    url: PG_ADMIN.replace(/\/[^/]*$/, `/${name}`),
    skip,
    drop() {
      if (available) psql(`drop database if exists ${name} with (force)`);
    },
  };
}

/**
 * Start `n` nodes on the database, one after the other (the first pushes
 * `schema`, the others read it from the database). Returns the handles of
 * lib/server.mjs.
 */
export async function startNodes(pg, n, { schema } = {}) {
  const nodes = [];
  for (let i = 0; i < n; i++) {
    nodes.push(await startServer({ schema: i === 0 ? schema : undefined, env: { DATABASE_URL: pg.url } }));
  }
  return nodes;
}

/** Stop every node that is still running. */
export async function stopNodes(nodes) {
  await Promise.all(nodes.filter(Boolean).map((n) => n.stop()));
}
