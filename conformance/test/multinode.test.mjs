// Scale-out: several Ferry nodes sharing one PostgreSQL database serve one
// app. A write through any node reaches subscribers on every node, and a
// client can move between nodes. Ferry-only (the reference has no
// PostgreSQL backend); needs PostgreSQL on 127.0.0.1:5432 (skipped with a
// message when it is missing, but required under CI=true).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeClients, createClient, subscribeFulfilled, localRows, waitFor } from '../lib/sync.mjs';
import { startServer, target } from '../lib/server.mjs';

const PG = process.env.FERRY_TEST_POSTGRES_ADMIN ?? 'postgres://postgres@127.0.0.1:5432/test';

function psql(sql) {
  return spawnSync('psql', [PG, '-v', 'ON_ERROR_STOP=1', '-qc', sql], { encoding: 'utf8' });
}

const database = `ferry_conf_${process.pid}_${Date.now()}`;
const created = target === 'ferry' ? psql(`create database ${database}`) : { status: 1 };
const available = created.status === 0;
if (!available && target === 'ferry' && process.env.CI === 'true') {
  throw new Error(`PostgreSQL is required under CI=true: ${created.stderr ?? created.error}`);
}
const skip =
  target !== 'ferry'
    ? 'Ferry-only: several nodes sharing PostgreSQL'
    : !available
      ? `SKIPPED: PostgreSQL not reachable at ${PG}`
      : false;

describe('several nodes on one PostgreSQL database', { skip }, () => {
  const url = PG.replace(/\/[^/]*$/, `/${database}`);
  let a;
  let b;
  before(async () => {
    a = await startServer({ env: { DATABASE_URL: url } });
    b = await startServer({ env: { DATABASE_URL: url } });
  });
  after(async () => {
    await closeClients();
    await a?.stop();
    await b?.stop();
    psql(`drop database if exists ${database} with (force)`);
  });

  it('a write through node A reaches a live query on node B, and the reverse', async () => {
    const onA = createClient(a);
    const onB = createClient(b);
    const q = (c) => c.query('notes').Order('id', 'ASC');
    await subscribeFulfilled(onA, q(onA));
    await subscribeFulfilled(onB, q(onB));
    await onA.insert('notes', { id: 'n1', text: 'from A' });
    await waitFor(async () => (await localRows(onB, q(onB))).some((r) => r.id === 'n1'), { message: 'node B sees A’s write' });
    await onB.update('notes', 'n1', (e) => {
      e.text = 'edited on B';
    });
    await waitFor(async () => (await localRows(onA, q(onA))).find((r) => r.id === 'n1')?.text === 'edited on B', {
      message: 'node A sees B’s edit',
    });
    // HTTP writes on one node reach sockets on the other too.
    const res = await fetch(b.url + '/insert', {
      method: 'POST',
      headers: { Authorization: `Bearer ${b.serviceToken}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ collectionName: 'notes', entity: { id: 'n2', text: 'http on B' } }),
    });
    assert.equal(res.status, 200);
    await waitFor(async () => (await localRows(onA, q(onA))).some((r) => r.id === 'n2'), { message: 'node A sees B’s HTTP write' });
  });

  it('both nodes answer /fetch with the same data and report healthy', async () => {
    const fetchAll = async (srv) => {
      const res = await fetch(srv.url + '/fetch', {
        method: 'POST',
        headers: { Authorization: `Bearer ${srv.serviceToken}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ query: { collectionName: 'notes', order: [['id', 'ASC']] } }),
      });
      return res.json();
    };
    assert.deepEqual(await fetchAll(a), await fetchAll(b));
    assert.equal((await fetch(a.url + '/healthcheck')).status, 200);
  });
});
