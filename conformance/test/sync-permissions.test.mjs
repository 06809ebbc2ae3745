// Permissions over sync, with a role matched from HS256 user tokens
// ({user: {match: {sub: '$userId'}}}; a token without x-triplit-token-type is
// "external" and, with no EXTERNAL_JWT_SECRET, is verified with JWT_SECRET).
//
//  - reads: a client only ever receives entities its read filter allows, and
//    an entity that stops being readable is evicted (sent as a delete);
//  - writes: a batch that breaks a write permission is rejected as a whole
//    with ERROR {messageType: 'CHANGES'}; the client reports it through
//    onFailureToSyncWrites / onEntitySyncError and the app can remedy it with
//    clearPendingChangesForEntity, clearPendingChangesAll, or by fixing the
//    entity so the retried batch passes.
import { createClient, closeClients, waitFor, localRows, subscribeFulfilled, changedIds } from '../lib/sync.mjs';
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Schema as S, or } from '@triplit/client';
import { startServer } from '../lib/server.mjs';
import { ok } from '../lib/http.mjs';
import { signToken } from '../lib/tokens.mjs';

const roles = { user: { match: { sub: '$userId' } } };
const mine = ['ownerId', '=', '$role.userId'];
const collections = S.Collections({
  todos: {
    schema: S.Schema({ id: S.Id(), text: S.String(), ownerId: S.String(), shared: S.Boolean({ default: false }), list: S.String() }),
    permissions: {
      user: {
        read: { filter: [or([mine, ['shared', '=', true]])] },
        insert: { filter: [mine] },
        update: { filter: [mine] },
        postUpdate: { filter: [mine] },
        delete: { filter: [mine] },
      },
    },
  },
});

let server;
before(async () => {
  server = await startServer({ schema: { roles, collections } });
});
after(async () => {
  await closeClients();
  await server?.stop();
});

const userClient = (sub) => createClient(server, { token: signToken({ sub }), schema: collections, roles });
const serverTodo = async (id) =>
  (await ok(server, '/fetch', { query: { collectionName: 'todos', where: [['id', '=', id]] } }))[0];

/** Watch a client's write failures. */
function watchFailures(client) {
  const failures = [];
  client.onFailureToSyncWrites((error, changes) => failures.push({ error, changes }));
  return failures;
}

describe('read permissions over sync', () => {
  it('only readable entities are sent; one that stops being readable is evicted, and comes back when readable again', async () => {
    const list = 'evict';
    await ok(server, '/bulk-insert', {
      todos: [
        { id: 'e_a1', text: 'mine', ownerId: 'alice', list },
        { id: 'e_b1', text: 'shared by bob', ownerId: 'bob', shared: true, list },
        { id: 'e_b2', text: 'bob only', ownerId: 'bob', list },
      ],
    });
    const alice = userClient('alice');
    const q = alice.query('todos').Where('list', '=', list);
    const sub = await subscribeFulfilled(alice, q);
    const ids = () => sub.results().map((e) => e.id).sort();
    assert.deepEqual(ids(), ['e_a1', 'e_b1']);

    // Bob's todo stops being shared: evicted from Alice's results and cache.
    await ok(server, '/update', { collectionName: 'todos', entityId: 'e_b1', changes: { shared: false } });
    await waitFor(() => JSON.stringify(ids()) === '["e_a1"]', { message: 'e_b1 left the results' });
    assert.equal(await alice.fetchById('todos', 'e_b1', { policy: 'local-only' }), null, 'e_b1 evicted from the cache');
    assert.ok(
      alice.wire.received.some((m) => m.type === 'ENTITY_DATA' && changedIds(m).todos?.deletes.includes('e_b1')),
      'sent as a delete'
    );

    // Shared again: it comes back.
    await ok(server, '/update', { collectionName: 'todos', entityId: 'e_b1', changes: { shared: true, text: 'again' } });
    await waitFor(() => ids().length === 2, { message: 'e_b1 back' });
    assert.equal(sub.results().find((e) => e.id === 'e_b1').text, 'again');

    // Alice's own todo is handed to Bob: evicted too.
    await ok(server, '/update', { collectionName: 'todos', entityId: 'e_a1', changes: { ownerId: 'bob' } });
    await waitFor(() => JSON.stringify(ids()) === '["e_b1"]', { message: 'e_a1 left' });
    assert.equal(await alice.fetchById('todos', 'e_a1', { policy: 'local-only' }), null);

    // Bob's private todo, even when changed, never reached Alice's socket.
    // (A later change Alice can see is the sentinel: once it is here, any
    // frame about e_b2 would have been too.)
    await ok(server, '/update', { collectionName: 'todos', entityId: 'e_b2', changes: { text: 'still private' } });
    await ok(server, '/update', { collectionName: 'todos', entityId: 'e_b1', changes: { text: 'sentinel' } });
    await waitFor(() => sub.results().find((e) => e.id === 'e_b1')?.text === 'sentinel', { message: 'sentinel' });
    assert.ok(!JSON.stringify(alice.wire.received).includes('e_b2'), 'no frame mentions e_b2');
    sub.unsubscribe();
  });

  it('two users with different read filters see different subsets of the same writes', async () => {
    const list = 'split';
    const alice = userClient('alice');
    const bob = userClient('bob');
    const qa = alice.query('todos').Where('list', '=', list);
    const qb = bob.query('todos').Where('list', '=', list);
    const [sa, sb] = [await subscribeFulfilled(alice, qa), await subscribeFulfilled(bob, qb)];
    await alice.insert('todos', { id: 's_a', text: 'a', ownerId: 'alice', list });
    await bob.insert('todos', { id: 's_b', text: 'b', ownerId: 'bob', list, shared: true });
    await bob.insert('todos', { id: 's_b2', text: 'b2', ownerId: 'bob', list });
    await waitFor(() => sa.results().length === 2 && sb.results().length === 2, { message: 'both synced' });
    assert.deepEqual(sa.results().map((e) => e.id).sort(), ['s_a', 's_b']);
    assert.deepEqual(sb.results().map((e) => e.id).sort(), ['s_b', 's_b2']);
    sa.unsubscribe();
    sb.unsubscribe();
  });
});

describe('a rejected write and its remedies', () => {
  it('the server rejects the batch with ERROR CHANGES WritePermissionError; the callbacks fire; nothing is stored', async () => {
    const alice = userClient('alice');
    const failures = watchFailures(alice);
    const entityErrors = [];
    alice.onEntitySyncError('todos', 'r_bad', (error, change) => entityErrors.push({ error, change }));
    await subscribeFulfilled(alice, alice.query('todos').Where('list', '=', 'rej'));
    await alice.insert('todos', { id: 'r_bad', text: 'spoof', ownerId: 'bob', list: 'rej' });
    await waitFor(() => failures.length === 1 && entityErrors.length === 1, { message: 'failure callbacks' });

    const err = alice.wire.received.find((m) => m.type === 'ERROR');
    assert.equal(err.payload.messageType, 'CHANGES');
    assert.equal(err.payload.error.name, 'WritePermissionError');
    assert.equal(err.payload.error.status, 401);
    assert.equal(err.payload.metadata.failures[0].collection, 'todos');
    assert.equal(err.payload.metadata.failures[0].error.name, 'WritePermissionError');

    assert.equal(failures[0].error.name, 'WritePermissionError');
    assert.ok(failures[0].changes.todos.sets.has('r_bad'), 'onFailureToSyncWrites gets the failed changes');
    assert.equal(entityErrors[0].error.name, 'WritePermissionError');
    assert.equal(entityErrors[0].change.ownerId, 'bob');
    assert.equal(await serverTodo('r_bad'), undefined);
    // Still pending locally: the app has to decide.
    assert.ok(await alice.fetchById('todos', 'r_bad', { policy: 'local-only' }));
    // The socket is still up.
    assert.equal(alice.connectionStatus, 'OPEN');
    assert.equal(alice.wire.sockets.length, 1);
  });

  it('a rejected batch is rejected whole: the valid write in the same transaction is not stored either', async () => {
    const alice = userClient('alice');
    const failures = watchFailures(alice);
    await subscribeFulfilled(alice, alice.query('todos').Where('list', '=', 'whole'));
    await alice.transact(async (tx) => {
      await tx.insert('todos', { id: 'w_ok', text: 'fine', ownerId: 'alice', list: 'whole' });
      await tx.insert('todos', { id: 'w_bad', text: 'spoof', ownerId: 'bob', list: 'whole' });
    });
    await waitFor(() => failures.length === 1, { message: 'failure' });
    assert.equal(await serverTodo('w_ok'), undefined);
    assert.equal(await serverTodo('w_bad'), undefined);
    // Remedy: drop just the bad entity; the good one then syncs.
    await alice.clearPendingChangesForEntity('todos', 'w_bad');
    await waitFor(async () => (await serverTodo('w_ok'))?.text === 'fine', { message: 'w_ok synced after the bad one was dropped' });
    assert.equal(await serverTodo('w_bad'), undefined);
    assert.equal(await alice.fetchById('todos', 'w_bad', { policy: 'local-only' }), null);
  });

  it('remedy clearPendingChangesForEntity: the bad insert disappears locally, later writes sync', async () => {
    const alice = userClient('alice');
    const failures = watchFailures(alice);
    await subscribeFulfilled(alice, alice.query('todos').Where('list', '=', 'rem1'));
    await alice.insert('todos', { id: 'c1_bad', text: 'spoof', ownerId: 'bob', list: 'rem1' });
    await waitFor(() => failures.length === 1);
    await alice.clearPendingChangesForEntity('todos', 'c1_bad');
    assert.equal(await alice.fetchById('todos', 'c1_bad', { policy: 'local-only' }), null);
    await alice.insert('todos', { id: 'c1_ok', text: 'fine', ownerId: 'alice', list: 'rem1' });
    await waitFor(async () => (await serverTodo('c1_ok'))?.text === 'fine', { message: 'the next write synced' });
    assert.equal(await serverTodo('c1_bad'), undefined);
    assert.equal(failures.length, 1, 'no further failure');
  });

  it('remedy clearPendingChangesAll: a rejected update is rolled back to the server value', async () => {
    await ok(server, '/insert', { collectionName: 'todos', entity: { id: 'c2_b', text: 'bob says', ownerId: 'bob', shared: true, list: 'rem2' } });
    const alice = userClient('alice');
    const failures = watchFailures(alice);
    const q = alice.query('todos').Where('list', '=', 'rem2');
    const sub = await subscribeFulfilled(alice, q);
    assert.equal(sub.results()[0].text, 'bob says');
    // Alice can read Bob's shared todo but not update it.
    await alice.update('todos', 'c2_b', (e) => void (e.text = 'alice was here'));
    await waitFor(() => failures.length === 1, { message: 'update rejected' });
    assert.equal((await serverTodo('c2_b')).text, 'bob says');
    assert.equal((await alice.fetchById('todos', 'c2_b', { policy: 'local-only' })).text, 'alice was here', 'still pending');
    await alice.clearPendingChangesAll();
    assert.equal((await alice.fetchById('todos', 'c2_b', { policy: 'local-only' })).text, 'bob says', 'rolled back');
    await waitFor(() => sub.results()[0].text === 'bob says', { message: 'live result rolled back' });
    await alice.insert('todos', { id: 'c2_ok', text: 'fine', ownerId: 'alice', list: 'rem2' });
    await waitFor(async () => (await serverTodo('c2_ok'))?.text === 'fine');
    sub.unsubscribe();
  });

  it('remedy fix-and-retry: correcting the entity makes the retried batch pass', async () => {
    const alice = userClient('alice');
    const failures = watchFailures(alice);
    const successes = [];
    alice.onEntitySyncSuccess('todos', 'c3_fix', () => successes.push('c3_fix'));
    await subscribeFulfilled(alice, alice.query('todos').Where('list', '=', 'rem3'));
    await alice.insert('todos', { id: 'c3_fix', text: 'typo owner', ownerId: 'alcie', list: 'rem3' });
    await waitFor(() => failures.length === 1);
    await alice.update('todos', 'c3_fix', (e) => void (e.ownerId = 'alice'));
    await waitFor(async () => (await serverTodo('c3_fix'))?.ownerId === 'alice', { message: 'fixed entity synced' });
    assert.deepEqual(await serverTodo('c3_fix'), { id: 'c3_fix', text: 'typo owner', ownerId: 'alice', shared: false, list: 'rem3' });
    await waitFor(() => successes.length >= 1, { message: 'onEntitySyncSuccess' });
    assert.equal(failures.length, 1);
    // And the client's view agrees with the server.
    const local = await localRows(alice, alice.query('todos').Where('list', '=', 'rem3'));
    assert.deepEqual(local.map((e) => [e.id, e.ownerId]), [['c3_fix', 'alice']]);
  });
});
