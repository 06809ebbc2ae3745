// The published client applies ENTITY_DATA frames that arrive in one socket
// read concurrently (each message has its own async handler and storage
// transaction), and the frame with more work commits last — even when it is
// the older one. This file shows that with a stand-in server (no Ferry, no
// reference: a bare `ws` server speaking just enough of the protocol), and
// then that Ferry repairs it: an entity sent twice in quick succession is
// restated once the connection is quiet (crates/triplit/src/sync/settle.rs),
// as a delete and a set in one frame — a set alone cannot bring back a live
// query the race left behind the client's store.
import { createClient, closeClients, waitFor, subscribeFulfilled, localRows, TriplitClient, SuperJSON, sleep } from '../lib/sync.mjs';
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { WebSocketServer } from 'ws';
import { Schema as S } from '@triplit/client';
import { startServer, target } from '../lib/server.mjs';
import { ok } from '../lib/http.mjs';
import { signToken } from '../lib/tokens.mjs';

/** Blocks this thread (and so the client's event loop) until `flag[0]` is set or `ms` passed. */
function block(ms, flag = new Int32Array(new SharedArrayBuffer(4))) {
  Atomics.wait(flag, 0, 0, ms);
}

/**
 * Runs `posts` ([path, body] pairs, 150 ms apart) against `server` from a
 * worker thread while this thread (the client's event loop) is blocked, so
 * every frame they cause sits in the socket and reaches the client in one
 * read. Returns the HTTP statuses once the client runs again, 300 ms after
 * the last write was acknowledged.
 */
async function whileBusy(server, posts) {
  const done = new Int32Array(new SharedArrayBuffer(4));
  const worker = new Worker(
    `const { parentPort, workerData } = require('node:worker_threads');
     const post = (path, body) => fetch(workerData.url + path, { method: 'POST',
       headers: { Authorization: 'Bearer ' + workerData.token, 'Content-Type': 'application/json' },
       body: JSON.stringify(body) }).then((r) => r.status);
     parentPort.once('message', async () => {
       const statuses = [];
       for (const [i, [path, body]] of workerData.posts.entries()) {
         if (i > 0) await new Promise((r) => setTimeout(r, 150));
         statuses.push(await post(path, body));
       }
       parentPort.postMessage(statuses);
       Atomics.store(workerData.done, 0, 1);
       Atomics.notify(workerData.done, 0);
     });`,
    { eval: true, workerData: { url: server.url, token: server.serviceToken, done, posts } }
  );
  const statuses = new Promise((resolve) => worker.once('message', resolve));
  worker.postMessage('go');
  // Blocked until every write is acknowledged, then long enough for the
  // server to send the last frame.
  block(20_000, done);
  block(300);
  const result = await statuses;
  await worker.terminate();
  return result;
}

describe('the published client and frames that arrive together (stand-in server)', () => {
  const entityData = (sets, deletes, ms, qid) =>
    JSON.stringify({
      type: 'ENTITY_DATA',
      payload: {
        changes: SuperJSON.serialize({ items: { sets: new Map(sets), deletes: new Set(deletes) } }),
        timestamp: [ms, 0, 'server'],
        forQueries: [qid],
      },
    });

  /**
   * A stand-in server and a client subscribed to `items` on it, which got
   * `initial` (e1) as its first result. `send(sets, deletes, ms)` sends an
   * ENTITY_DATA stamped `ms`; `together(...frames)` sends frames so they
   * reach the client in one read. `live()` is the subscription's last
   * result.
   */
  async function standIn(initial, { schema } = {}) {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise((r) => wss.on('listening', r));
    let sock;
    let qid;
    const queried = new Promise((resolve) => {
      wss.on('connection', (ws) => {
        sock = ws;
        ws.send(JSON.stringify({ type: 'READY', payload: { clientId: 'stand-in' } }));
        ws.on('message', (m) => {
          const msg = JSON.parse(String(m));
          if (msg.type === 'CONNECT_QUERY') {
            qid = msg.payload.id;
            ws.send(entityData([['e1', initial]], [], 1000, qid));
            resolve();
          }
        });
      });
    });
    const client = new TriplitClient({ serverUrl: `http://127.0.0.1:${wss.address().port}`, token: signToken({ sub: 'x' }), schema, logLevel: 'none' });
    const q = client.query('items');
    let live = [];
    client.subscribe(q, (rows) => {
      live = [...rows.values()];
    });
    await queried;
    await waitFor(async () => (await localRows(client, q)).length === 1 && live.length === 1, { message: 'initial e1' });
    return {
      stored: async () => await localRows(client, q),
      live: () => live,
      frame: (sets, deletes, ms) => entityData(sets, deletes, ms, qid),
      send: (frame) => sock.send(frame),
      together(...frames) {
        sock._socket.cork();
        for (const f of frames) sock.send(f);
        process.nextTick(() => sock._socket.uncork());
      },
      close() {
        client.disconnect();
        wss.close();
      },
    };
  }

  /** Sends the initial e1, then (A) an update of e1 and (B, newer) its delete, in one write or 200 ms apart. */
  async function scenario(together) {
    const s = await standIn({ id: 'e1', n: 1 });
    try {
      const A = s.frame([['e1', { id: 'e1', n: 5 }]], [], 2000);
      const B = s.frame([], ['e1'], 3000);
      if (together) {
        s.together(A, B);
      } else {
        s.send(A);
        await sleep(200);
        s.send(B);
      }
      await sleep(300);
      return (await s.stored()).map((e) => e.id);
    } finally {
      s.close();
    }
  }

  it('applied one after the other, the delete wins', async () => {
    assert.deepEqual(await scenario(false), []);
  });

  it('in one read, the older update commits last and the deleted entity stays in the cache', async () => {
    assert.deepEqual(await scenario(true), ['e1']);
  });

  /**
   * The client holds e1 with n = 7; an older frame (n = 5) and a newer one
   * (n = 7 again) arrive in one read, then `restatement` frames 300 ms
   * apart. Returns what the store and the live query show before and after.
   */
  async function behind(restatement) {
    const s = await standIn({ id: 'e1', n: 7 });
    try {
      s.together(s.frame([['e1', { id: 'e1', n: 5 }]], [], 2000), s.frame([['e1', { id: 'e1', n: 7 }]], [], 3000));
      await sleep(300);
      const shown = async () => ({ store: (await s.stored()).map((e) => e.n), live: s.live().map((e) => e.n) });
      const seen = [await shown()];
      for (const [i, deletes] of restatement.entries()) {
        s.send(s.frame([['e1', { id: 'e1', n: 7 }]], deletes, 4000 + i * 1000));
        await sleep(300);
        seen.push(await shown());
      }
      return seen;
    } finally {
      s.close();
    }
  }

  it('in one read, an older update can leave a live query behind the store; only a delete and a set in one frame bring it back', async () => {
    // The newer frame holds what the store holds already, so it changes
    // nothing the live query sees; the older one's change reaches it last.
    const [raced, asSet, asDeleteAndSet] = await behind([[], ['e1']]);
    assert.deepEqual(raced, { store: [7], live: [5] });
    // Restating the entity as a set changes nothing in the store either.
    assert.deepEqual(asSet, { store: [7], live: [5] });
    // A delete and a set of it in one frame replace it, live query included.
    assert.deepEqual(asDeleteAndSet, { store: [7], live: [7] });
  });

  it('a delete and a set of one id in one frame: the live query merges the set into the row it holds, so only items written as false leave a Set', async () => {
    const schema = S.Collections({ items: { schema: S.Schema({ id: S.Id(), n: S.Number(), tags: S.Set(S.String()) }) } });
    const reinsert = async (tags) => {
      const s = await standIn({ id: 'e1', n: 1, tags: { red: true } }, { schema });
      try {
        // e1 deleted and inserted again (with other items) under one frame.
        s.send(s.frame([['e1', { id: 'e1', n: 2, tags }]], ['e1'], 2000));
        await sleep(300);
        const show = (rows) => rows.map((e) => `${e.n}:${[...e.tags].sort().join(',')}`);
        return { store: show(await s.stored()), live: show(s.live()) };
      } finally {
        s.close();
      }
    };
    // The store replaces the entity; the live query keeps the old item.
    assert.deepEqual(await reinsert({ blue: true }), { store: ['2:blue'], live: ['2:blue,red'] });
    // Written as removed, the old item leaves the live query too.
    assert.deepEqual(await reinsert({ blue: true, red: false }), { store: ['2:blue'], live: ['2:blue'] });
  });
});

describe('Ferry restates entities sent twice in quick succession', { skip: target !== 'ferry' && 'Ferry-only: the reference leaves the entity in the client cache' }, () => {
  const collections = S.Collections({
    items: { schema: S.Schema({ id: S.Id(), n: S.Number(), list: S.String() }) },
    tagged: { schema: S.Schema({ id: S.Id(), list: S.String(), tags: S.Set(S.String()), meta: S.Record({ labels: S.Set(S.String()) }) }) },
  });
  let server;
  before(async () => {
    server = await startServer({ schema: { collections } });
  });
  after(async () => {
    await closeClients();
    await server?.stop();
  });

  it('a client busy while an update and a delete arrive ends without the deleted entity', async () => {
    const viewer = createClient(server, { token: signToken({ sub: 'viewer' }), schema: collections });
    const q = viewer.query('items').Where('list', '=', 'race');
    await ok(server, '/insert', { collectionName: 'items', entity: { id: 'r1', n: 1, list: 'race' } });
    await subscribeFulfilled(viewer, q);
    await waitFor(async () => (await localRows(viewer, q)).length === 1, { message: 'r1 synced' });
    const statuses = await whileBusy(server, [
      ['/update', { collectionName: 'items', entityId: 'r1', changes: { n: 2 } }],
      ['/delete', { collectionName: 'items', entityId: 'r1' }],
    ]);
    assert.deepEqual(statuses, [200, 200]);
    assert.deepEqual(await ok(server, '/fetch', { query: { collectionName: 'items', where: [['list', '=', 'race']] } }), []);
    await waitFor(async () => (await localRows(viewer, q)).length === 0, { timeout: 5000, message: 'r1 gone from the client cache' });
  });

  it('a client busy while an entity changes and changes back ends with its live query showing the entity as stored', async () => {
    const viewer = createClient(server, { token: signToken({ sub: 'viewer2' }), schema: collections });
    const q = viewer.query('items').Where('list', '=', 'back');
    await ok(server, '/insert', { collectionName: 'items', entity: { id: 'b1', n: 7, list: 'back' } });
    let live = [];
    viewer.subscribe(q, (rows) => {
      live = [...rows.values()].map((e) => e.n);
    });
    await waitFor(() => live.length === 1, { message: 'b1 live' });
    const statuses = await whileBusy(server, [
      ['/update', { collectionName: 'items', entityId: 'b1', changes: { n: 5 } }],
      ['/update', { collectionName: 'items', entityId: 'b1', changes: { n: 7 } }],
    ]);
    assert.deepEqual(statuses, [200, 200]);
    await waitFor(async () => assert.deepEqual({ store: (await localRows(viewer, q)).map((e) => e.n), live }, { store: [7], live: [7] }) ?? true, {
      timeout: 5000,
      message: 'store and live query show n = 7',
    });
  });

  it('a client busy while an entity is deleted and inserted again with other set items ends showing only the new items', async () => {
    const viewer = createClient(server, { token: signToken({ sub: 'viewer3' }), schema: collections });
    const q = viewer.query('tagged').Where('list', '=', 'again');
    const entity = (tags, labels) => ({ id: 'g1', list: 'again', tags, meta: { labels } });
    await ok(server, '/insert', { collectionName: 'tagged', entity: entity(['red', 'green'], ['x']) });
    const show = (e) => `${[...e.tags].sort().join(',')}|${[...e.meta.labels].sort().join(',')}`;
    let live = [];
    viewer.subscribe(q, (rows) => {
      live = [...rows.values()].map(show);
    });
    await waitFor(() => live.length === 1, { message: 'g1 live' });
    // An update removes `green` (stored as a removed item), then the entity
    // is deleted and inserted again under the same id with other items.
    const statuses = await whileBusy(server, [
      ['/update', { collectionName: 'tagged', entityId: 'g1', changes: { tags: ['red'] } }],
      ['/delete', { collectionName: 'tagged', entityId: 'g1' }],
      ['/insert', { collectionName: 'tagged', entity: entity(['blue'], ['y']) }],
    ]);
    assert.deepEqual(statuses, [200, 200, 200]);
    assert.deepEqual((await ok(server, '/fetch', { query: { collectionName: 'tagged', where: [['id', '=', 'g1']] } })).map(show), ['blue|y']);
    await waitFor(async () => assert.deepEqual({ store: (await localRows(viewer, q)).map(show), live }, { store: ['blue|y'], live: ['blue|y'] }) ?? true, {
      timeout: 5000,
      message: 'store and live query show only the new items',
    });
  });
});
