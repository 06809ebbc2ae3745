// Scale-out: several Ferry nodes sharing one PostgreSQL database serve one
// app. A write through any node reaches subscribers on every node, and a
// client can move between nodes. Ferry-only (the reference has no
// PostgreSQL backend); needs PostgreSQL on 127.0.0.1:5432 (skipped with a
// message when it is missing, but required under CI=true).
//
// The other multinode-*.test.mjs files cover convergence under random
// writes on three nodes, a node killed mid-load behind a load balancer, and
// a restarted node catching up.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { closeClients, createClient, subscribeFulfilled, localRows, waitFor } from '../lib/sync.mjs';
import { startBalancer } from '../lib/balancer.mjs';
import { pgDatabase, startNodes, stopNodes } from '../lib/postgres.mjs';

const pg = pgDatabase('basic');

const fetchAll = async (srv, token) => {
  const res = await fetch(srv.url + '/fetch', {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ query: { collectionName: 'notes', order: [['id', 'ASC']] } }),
  });
  assert.equal(res.status, 200);
  return res.json();
};

describe('several nodes on one PostgreSQL database', { skip: pg.skip }, () => {
  let nodes = [];
  let a;
  let b;
  let c;
  before(async () => {
    nodes = await startNodes(pg, 3);
    [a, b, c] = nodes;
  });
  after(async () => {
    await closeClients();
    await stopNodes(nodes);
    pg.drop();
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

  it('a third node serves the same data, live', async () => {
    const onC = createClient(c);
    const q = onC.query('notes').Order('id', 'ASC');
    const sub = await subscribeFulfilled(onC, q);
    assert.deepEqual(sub.results().map((r) => r.id), ['n1', 'n2']);
    const onA = createClient(a);
    await onA.insert('notes', { id: 'n3', text: 'from A, for C' });
    await waitFor(() => sub.results().some((r) => r.id === 'n3'), { message: 'node C sees A’s write' });
    sub.unsubscribe();
  });

  it('behind one URL (round-robin balancer), HTTP requests land on different nodes and agree', async () => {
    const lb = await startBalancer(nodes);
    try {
      const front = { url: lb.url };
      for (let i = 0; i < 6; i++) {
        // A fresh connection per request, so each one is balanced.
        const res = await fetch(lb.url + '/insert', {
          method: 'POST',
          headers: { Authorization: `Bearer ${a.serviceToken}`, 'Content-Type': 'application/json', Connection: 'close' },
          body: JSON.stringify({ collectionName: 'notes', entity: { id: `lb${i}`, text: `through the balancer ${i}` } }),
        });
        assert.equal(res.status, 200);
        await res.text();
      }
      const used = new Set(lb.connections.map((x) => x.backend));
      assert.equal(used.size, 3, 'requests went to all three nodes');
      const want = await fetchAll(a, a.serviceToken);
      assert.equal(want.filter((r) => r.id.startsWith('lb')).length, 6);
      await waitFor(async () => {
        assert.deepEqual(await fetchAll(front, a.serviceToken), want);
        return true;
      }, { message: 'the balanced URL answers like node A' });
    } finally {
      await lb.close();
    }
  });

  it('every node answers /fetch with the same data and reports healthy', async () => {
    const want = await fetchAll(a, a.serviceToken);
    for (const n of [b, c]) {
      await waitFor(async () => {
        assert.deepEqual(await fetchAll(n, n.serviceToken), want);
        return true;
      }, { message: 'nodes agree' });
    }
    for (const n of nodes) assert.equal((await fetch(n.url + '/healthcheck')).status, 200);
  });
});
