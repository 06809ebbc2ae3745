// A node restarted on the same PostgreSQL database catches up from the
// change log: writes made through the other node while it was down are
// served by it after the restart — over /fetch and to a new live query —
// and a client that was connected to it reconnects to it with its
// checkpoint and converges. Live changes flow both ways afterwards.
// Ferry-only; skipped without PostgreSQL (required under CI=true).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Schema as S } from '@triplit/client';
import { canon, closeClients, createClient, localRows, serviceHttp, subscribeFulfilled, waitFor } from '../lib/sync.mjs';
import { ok } from '../lib/http.mjs';
import { pgDatabase, startNodes, stopNodes } from '../lib/postgres.mjs';
import { signToken } from '../lib/tokens.mjs';

const collections = S.Collections({
  msgs: { schema: S.Schema({ id: S.Id(), text: S.String(), room: S.String(), n: S.Number() }) },
});

// Every case gets its own database and nodes, so the cases are independent
// (a restart moves the restarted node's clock, see the last case).
const pgs = [];
const fresh = (label) => {
  const pg = pgDatabase(label);
  pgs.push(pg);
  return pg;
};
const probe = pgDatabase('probe');
probe.drop();

describe('a node restarted on the same database', { skip: probe.skip }, () => {
  const started = [];
  async function cluster(label) {
    const nodes = await startNodes(fresh(label), 2, { schema: { collections } });
    started.push(...nodes);
    return nodes;
  }
  after(async () => {
    await closeClients();
    await stopNodes(started);
    for (const pg of pgs) pg.drop();
  });

  for (const crash of [true, false]) {
    it(`catches up after ${crash ? 'SIGKILL' : 'SIGTERM'}: fetch, live query, reconnecting client`, { timeout: 180_000 }, async () => {
      const [a, b] = await cluster(crash ? 'rkill' : 'rterm');
      const room = crash ? 'crash' : 'graceful';
      const q = (c) => c.query('msgs').Where('room', '=', room);
      const onA = createClient(a, { token: signToken({ sub: `a-${room}` }), schema: collections });
      const onB = createClient(b, { token: signToken({ sub: `b-${room}` }), schema: collections });
      const sa = await subscribeFulfilled(onA, q(onA), { timeout: 20_000 });
      const sb = await subscribeFulfilled(onB, q(onB), { timeout: 20_000 });
      await onA.insert('msgs', { id: `${room}-0`, text: 'before', room, n: 0 });
      await waitFor(() => sb.results().some((e) => e.id === `${room}-0`), { timeout: 20_000, message: 'B saw the first write' });

      await b.down({ crash });
      await waitFor(() => onB.connectionStatus !== 'OPEN', { timeout: 20_000, message: 'B’s client noticed' });

      // While B is down: a client write and HTTP writes (insert, update, delete) through A.
      for (let i = 1; i <= 5; i++) await onA.insert('msgs', { id: `${room}-${i}`, text: `while down ${i}`, room, n: i });
      await onA.update('msgs', `${room}-0`, (e) => void (e.text = 'edited while down'));
      // Client writes resolve once applied locally; the server stamps them
      // when they arrive, so wait for them before deleting one over HTTP.
      await waitFor(async () => (await ok(a, '/fetch', { query: { collectionName: 'msgs', where: [['room', '=', room]] } })).length === 6, {
        timeout: 20_000,
        message: 'A has the client writes',
      });
      await ok(a, '/insert', { collectionName: 'msgs', entity: { id: `${room}-h`, text: 'http while down', room, n: 9 } });
      await ok(a, '/delete', { collectionName: 'msgs', entityId: `${room}-5` });
      const expected = (rows) => rows.length === 6 && !rows.some((e) => e.id === `${room}-5`) && rows.some((e) => e.text === 'edited while down');
      await waitFor(async () => expected(await ok(a, '/fetch', { query: { collectionName: 'msgs', where: [['room', '=', room]] } })), {
        timeout: 20_000,
        message: 'A has the writes',
      });
      const truthOnA = canon(await serviceHttp(a, collections).fetch(q(onA)));

      await b.restart();
      // Served by B over /fetch, from the log it followed on start.
      await waitFor(async () => assert.deepEqual(canon(await serviceHttp(b, collections).fetch(q(onB))), truthOnA) ?? true, {
        timeout: 20_000,
        message: 'B serves the writes made while it was down',
      });
      // A new live query on B gets them.
      const fresh = createClient(b, { token: signToken({ sub: `fresh-${room}` }), schema: collections });
      const sf = await subscribeFulfilled(fresh, q(fresh), { timeout: 20_000 });
      assert.deepEqual(canon(sf.results()), truthOnA);
      // The old client reconnects to B by itself, with its checkpoint, and converges.
      await waitFor(() => onB.connectionStatus === 'OPEN' && onB.wire.sockets.length >= 2, {
        timeout: 60_000,
        message: 'B’s client reconnected',
      });
      const cq = await waitFor(() => onB.wire.sockets.at(-1).sent.find((m) => m.type === 'CONNECT_QUERY'), {
        timeout: 20_000,
        message: 'the reconnect subscribed again',
      });
      assert.ok(cq.payload?.state?.timestamp, 'the reconnect carried a checkpoint');
      await waitFor(
        async () => {
          assert.deepEqual(canon(await localRows(onB, q(onB))), truthOnA);
          assert.deepEqual(canon(sb.results()), truthOnA);
          return true;
        },
        { timeout: 30_000, message: 'B’s client converged' }
      );
      // Live both ways after the restart.
      await onB.insert('msgs', { id: `${room}-b`, text: 'from B after', room, n: 10 });
      await waitFor(() => sa.results().some((e) => e.id === `${room}-b`), { timeout: 20_000, message: 'A sees B’s write' });
      await onA.insert('msgs', { id: `${room}-a`, text: 'from A after', room, n: 11 });
      await waitFor(() => sf.results().some((e) => e.id === `${room}-a`) && sb.results().some((e) => e.id === `${room}-a`), {
        timeout: 20_000,
        message: 'B’s clients see A’s write',
      });
      for (const s of [sa, sb, sf]) s.unsubscribe();
    });
  }

  // A restarted node must not hand out checkpoints above the stamps of
  // writes other nodes make afterwards: read stamps follow the last write
  // the data reflects, and every node stamps its writes above the floor
  // stored in the database (earlier, a restarted node resumed at a lease a
  // minute ahead and the client below stayed diverged).
  it('a checkpoint from a restarted node does not hide a later write made through another node', {
    timeout: 120_000,
  }, async () => {
    const [a, b] = await cluster('rclock');
    await ok(a, '/insert', { collectionName: 'msgs', entity: { id: 'k1', text: 'v1', room: 'clock', n: 1 } });
    // A live query on B hands out a read stamp before the restart.
    const primer = createClient(b, { token: signToken({ sub: 'primer' }), schema: collections });
    (await subscribeFulfilled(primer, primer.query('msgs'), { timeout: 20_000 })).unsubscribe();
    await b.restart();
    const c = createClient(b, { token: signToken({ sub: 'clock' }), schema: collections });
    const q = c.query('msgs').Where('room', '=', 'clock');
    const sub = await subscribeFulfilled(c, q, { timeout: 20_000 });
    assert.deepEqual(sub.results().map((e) => e.text), ['v1']);
    c.disconnect();
    await waitFor(() => c.connectionStatus !== 'OPEN', { message: 'disconnected' });
    // A write through A while the client is away.
    await ok(a, '/update', { collectionName: 'msgs', entityId: 'k1', changes: { text: 'v2' } });
    await waitFor(async () => (await ok(b, '/fetch', { query: { collectionName: 'msgs', where: [['room', '=', 'clock']] } }))[0]?.text === 'v2', {
      timeout: 20_000,
      message: 'B has the write',
    });
    c.connect();
    await waitFor(() => sub.results()[0]?.text === 'v2', {
      timeout: 15_000,
      message: 'the reconnected client got the write made through A',
    });
    sub.unsubscribe();
  });
});
