// The checkpoint on CONNECT_QUERY.state (triplit.md §1.5): after a reconnect
// the server skips entities the client already has and that did not change
// since the checkpoint, re-sends changed and new ones, and deletes the ones
// that are gone. Raw frames first, then the published client's reconnect.
import {
  openRaw,
  closeRaws,
  createClient,
  closeClients,
  waitFor,
  changedIds,
  decodeChanges,
  subscribeFulfilled,
  canon,
} from '../lib/sync.mjs';
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Schema as S } from '@triplit/client';
import { startServer } from '../lib/server.mjs';
import { ok } from '../lib/http.mjs';

const collections = S.Collections({
  items: { schema: S.Schema({ id: S.Id(), n: S.Number(), group: S.String() }) },
});

let server;
before(async () => {
  server = await startServer({ schema: { collections } });
});
after(async () => {
  await closeClients();
  await closeRaws();
  await server?.stop();
});

async function seed(group, rows) {
  await ok(server, '/bulk-insert', { items: rows.map(([id, n]) => ({ id, n, group })) });
}

describe('raw CONNECT_QUERY with state', () => {
  it('skips unchanged entities, re-sends changed and new ones, deletes removed ones', async () => {
    await seed('g1', [['k1', 1], ['k2', 2], ['k3', 3], ['k4', 4]]);
    const params = { collectionName: 'items', where: [['group', '=', 'g1'], ['n', '<', 100]] };
    const a = await openRaw(server);
    a.send({ type: 'CONNECT_QUERY', payload: { id: 'cq', params } });
    const first = await a.next('ENTITY_DATA');
    assert.deepEqual(changedIds(first).items.sets, ['k1', 'k2', 'k3', 'k4']);
    const checkpoint = first.payload.timestamp;
    await a.close();

    // While "offline": k2 changes, k3 is deleted, k4 leaves the result, k5 is new.
    await ok(server, '/update', { collectionName: 'items', entityId: 'k2', changes: { n: 20 } });
    await ok(server, '/delete', { collectionName: 'items', entityId: 'k3' });
    await ok(server, '/update', { collectionName: 'items', entityId: 'k4', changes: { n: 400 } });
    await ok(server, '/insert', { collectionName: 'items', entity: { id: 'k5', n: 5, group: 'g1' } });

    const b = await openRaw(server);
    b.send({
      type: 'CONNECT_QUERY',
      payload: { id: 'cq', params, state: { timestamp: checkpoint, entityIds: { items: ['k1', 'k2', 'k3', 'k4'] } } },
    });
    const resumed = await b.next('ENTITY_DATA');
    assert.deepEqual(resumed.payload.forQueries, ['cq']);
    const ids = changedIds(resumed).items;
    const sets = decodeChanges(resumed.payload).items.sets;
    assert.ok(!ids.sets.includes('k1'), `unchanged k1 is skipped; sets were ${ids.sets}`);
    assert.deepEqual(sets.get('k2'), { id: 'k2', n: 20, group: 'g1' });
    assert.deepEqual(sets.get('k5'), { id: 'k5', n: 5, group: 'g1' });
    assert.ok(ids.deletes.includes('k3'), 'the deleted k3 is sent as a delete');
    // k4 still exists but left the result. Upstream re-sends it whole (so the
    // client's copy is fresh and its own engine drops it from the result);
    // evicting it with a delete would serve the client equally well.
    if (ids.sets.includes('k4')) assert.deepEqual(sets.get('k4'), { id: 'k4', n: 400, group: 'g1' });
    else assert.ok(ids.deletes.includes('k4'), 'k4 is either re-sent or evicted');
    await b.close();
  });

  it('a checkpoint older than every write skips nothing', async () => {
    await seed('g2', [['m1', 1], ['m2', 2]]);
    const params = { collectionName: 'items', where: [['group', '=', 'g2']] };
    const a = await openRaw(server);
    a.send({
      type: 'CONNECT_QUERY',
      payload: { id: 'old', params, state: { timestamp: [1, 0, 'server'], entityIds: { items: ['m1', 'm2'] } } },
    });
    const msg = await a.next('ENTITY_DATA');
    assert.deepEqual(changedIds(msg).items, { sets: ['m1', 'm2'], deletes: [] });
    await a.close();
  });

  it('when nothing changed, the first answer is still sent, with an empty root-collection entry', async () => {
    await seed('g3', [['p1', 1], ['p2', 2]]);
    const params = { collectionName: 'items', where: [['group', '=', 'g3']] };
    const a = await openRaw(server);
    a.send({ type: 'CONNECT_QUERY', payload: { id: 'x', params } });
    const checkpoint = (await a.next('ENTITY_DATA')).payload.timestamp;
    await a.close();
    const b = await openRaw(server);
    b.send({
      type: 'CONNECT_QUERY',
      payload: { id: 'x', params, state: { timestamp: checkpoint, entityIds: { items: ['p1', 'p2'] } } },
    });
    const skipped = await b.next((m) => m.type === 'ENTITY_DATA' && m.payload.forQueries.includes('x'));
    assert.deepEqual(skipped.payload.changes.json.items, { sets: [], deletes: [] });
    // Still live: a later change is sent.
    await ok(server, '/update', { collectionName: 'items', entityId: 'p1', changes: { n: 10 } });
    const later = await b.next('ENTITY_DATA');
    assert.deepEqual(decodeChanges(later.payload).items.sets.get('p1'), { id: 'p1', n: 10, group: 'g3' });
    await b.close();
  });
});

describe('TriplitClient reconnect', () => {
  it('re-subscribes with state after disconnect()/connect() and gets no entity it already has', async () => {
    await seed('g4', [['r1', 1], ['r2', 2], ['r3', 3]]);
    const client = createClient(server, { schema: collections });
    const query = client.query('items').Where('group', '=', 'g4');
    const sub = await subscribeFulfilled(client, query);
    assert.deepEqual(sub.results().map((e) => e.id), ['r1', 'r2', 'r3']);

    client.disconnect();
    await waitFor(() => client.wire.sockets[0].closed, { message: 'first socket closed' });
    const before = client.wire.received.length;
    client.connect();
    await waitFor(() => client.wire.sockets.length === 2 && client.wire.sockets[1].received.some((m) => m.type === 'ENTITY_DATA'), {
      message: 'ENTITY_DATA on the second socket',
    });
    const connectMsg = client.wire.sockets[1].sent.find((m) => m.type === 'CONNECT_QUERY');
    assert.ok(connectMsg.payload.state, 'the client sent a checkpoint');
    assert.deepEqual([...connectMsg.payload.state.entityIds.items].sort(), ['r1', 'r2', 'r3']);
    const data = client.wire.received.slice(before).find((m) => m.type === 'ENTITY_DATA');
    assert.equal(data.payload.changes.json.items.sets.length, 0, 'nothing re-sent');

    // A change made while the client is away arrives alone after the next reconnect.
    client.disconnect();
    await waitFor(() => client.wire.sockets[1].closed, { message: 'second socket closed' });
    await ok(server, '/update', { collectionName: 'items', entityId: 'r2', changes: { n: 22 } });
    client.connect();
    await waitFor(() => client.wire.sockets.length === 3 && client.wire.sockets[2].received.some((m) => m.type === 'ENTITY_DATA'), {
      message: 'ENTITY_DATA on the third socket',
    });
    const third = client.wire.sockets[2].received.find((m) => m.type === 'ENTITY_DATA');
    assert.deepEqual(changedIds(third).items.sets, ['r2']);
    await waitFor(() => sub.results().find((e) => e.id === 'r2')?.n === 22, { message: 'live result updated' });
    assert.deepEqual(canon(sub.results()), canon([
      { id: 'r1', n: 1, group: 'g4' },
      { id: 'r2', n: 22, group: 'g4' },
      { id: 'r3', n: 3, group: 'g4' },
    ]));
    sub.unsubscribe();
  });
});
