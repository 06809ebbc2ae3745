// Offline writes and manual disconnects with the published client:
//  - a client created with autoConnect: false writes locally, then connect()
//    syncs the outbox and the other clients see it;
//  - disconnect() → local writes and remote changes meanwhile → connect()
//    syncs both ways;
//  - disconnect() closes with 1000 and the MANUAL_DISCONNECT reason, which the
//    server echoes, so the client does not reconnect by itself.
import { createClient, closeClients, waitFor, subscribeFulfilled, localRows, serviceHttp, canon, closeReason, sleep } from '../lib/sync.mjs';
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Schema as S } from '@triplit/client';
import { startServer } from '../lib/server.mjs';
import { ok } from '../lib/http.mjs';
import { signToken } from '../lib/tokens.mjs';

const collections = S.Collections({
  notes: {
    schema: S.Schema({
      id: S.Id(),
      text: S.String(),
      book: S.String(),
      tags: S.Set(S.String(), { default: S.Default.Set.empty() }),
    }),
  },
});

let server;
before(async () => {
  server = await startServer({ schema: { collections } });
});
after(async () => {
  await closeClients();
  await server?.stop();
});

const client = (sub, opts = {}) => createClient(server, { token: signToken({ sub }), schema: collections, ...opts });
const serverNotes = (book) => ok(server, '/fetch', { query: { collectionName: 'notes', where: [['book', '=', book]] } });

describe('offline writes', () => {
  it('autoConnect: false — writes stay local, no socket; connect() syncs them to the server and to others', async () => {
    const book = 'offline1';
    const watcher = client('watcher');
    const sub = await subscribeFulfilled(watcher, watcher.query('notes').Where('book', '=', book));
    const offline = client('writer', { autoConnect: false });
    await offline.insert('notes', { id: 'o1', text: 'one', book, tags: new Set(['a']) });
    await offline.insert('notes', { id: 'o2', text: 'two', book });
    await offline.insert('notes', { id: 'o3', text: 'three', book });
    await offline.update('notes', 'o1', (e) => {
      e.text = 'one!';
      e.tags.add('b');
    });
    await offline.delete('notes', 'o3');
    assert.equal(offline.wire.sockets.length, 0, 'no socket was opened');
    assert.notEqual(offline.connectionStatus, 'OPEN');
    assert.deepEqual((await localRows(offline, offline.query('notes').Where('book', '=', book))).map((e) => e.id), ['o1', 'o2']);
    assert.deepEqual(await serverNotes(book), []);

    offline.connect();
    await waitFor(async () => (await serverNotes(book)).length === 2, { message: 'outbox synced on connect' });
    assert.deepEqual(
      canon(await serverNotes(book)),
      canon([
        { id: 'o1', text: 'one!', book, tags: ['a', 'b'] },
        { id: 'o2', text: 'two', book, tags: [] },
      ])
    );
    await waitFor(() => sub.results().length === 2, { message: 'the watcher saw them' });
    assert.deepEqual(canon(sub.results()), canon(await serviceHttp(server, collections).fetch(watcher.query('notes').Where('book', '=', book))));
    // The outbox went out as CHANGES after READY on the one socket opened.
    assert.equal(offline.wire.sockets.length, 1);
    const types = offline.wire.sockets[0].sent.map((m) => m.type);
    assert.ok(types.includes('CHANGES'));
    assert.equal(offline.wire.sockets[0].received[0].type, 'READY');
    sub.unsubscribe();
  });

  it('disconnect() → local and remote changes → connect(): both sides catch up, the live query resumes', async () => {
    const book = 'offline2';
    await ok(server, '/bulk-insert', { notes: [{ id: 'd1', text: 'one', book }, { id: 'd2', text: 'two', book }] });
    const a = client('a');
    const q = a.query('notes').Where('book', '=', book);
    const sub = await subscribeFulfilled(a, q);
    assert.equal(sub.results().length, 2);

    a.disconnect();
    await waitFor(() => a.wire.sockets[0].closed, { message: 'socket closed' });
    // Local while offline…
    await a.update('notes', 'd1', (e) => void (e.text = 'one (edited offline)'));
    await a.insert('notes', { id: 'd3', text: 'three', book });
    // …and remote while offline.
    await ok(server, '/update', { collectionName: 'notes', entityId: 'd2', changes: { text: 'two (edited remotely)' } });
    await ok(server, '/insert', { collectionName: 'notes', entity: { id: 'd4', text: 'four', book } });
    assert.equal((await serverNotes(book)).find((e) => e.id === 'd1').text, 'one');

    a.connect();
    const expected = canon([
      { id: 'd1', text: 'one (edited offline)', book, tags: [] },
      { id: 'd2', text: 'two (edited remotely)', book, tags: [] },
      { id: 'd3', text: 'three', book, tags: [] },
      { id: 'd4', text: 'four', book, tags: [] },
    ]);
    await waitFor(async () => assert.deepEqual(canon(await serverNotes(book)), expected) ?? true, { message: 'server caught up' });
    await waitFor(() => assert.deepEqual(canon(sub.results()), expected) ?? true, { message: 'client caught up' });
    // Still live after the reconnect.
    await ok(server, '/update', { collectionName: 'notes', entityId: 'd4', changes: { text: 'four!' } });
    await waitFor(() => sub.results().find((e) => e.id === 'd4')?.text === 'four!', { message: 'live again' });
    sub.unsubscribe();
  });
});

describe('disconnect()', () => {
  it('closes with 1000 and {"type":"MANUAL_DISCONNECT","retry":false} (echoed by the server) and does not reconnect', async () => {
    const a = client('quitter');
    await subscribeFulfilled(a, a.query('notes').Where('book', '=', 'quit'));
    assert.equal(a.connectionStatus, 'OPEN');
    a.disconnect();
    await waitFor(() => a.wire.sockets[0].closed, { message: 'closed' });
    const closed = a.wire.sockets[0].closed;
    assert.equal(closed.code, 1000);
    assert.deepEqual(closeReason(closed), { type: 'MANUAL_DISCONNECT', retry: false });
    await waitFor(() => a.connectionStatus === 'CLOSED', { message: 'status CLOSED' });
    // The client would retry after 250 ms and then 500 ms if the close had no
    // reason; give it well past that. (An absence can only be observed over time.)
    await sleep(1200);
    assert.equal(a.wire.sockets.length, 1, 'no new socket');
    assert.equal(a.connectionStatus, 'CLOSED');
    // connect() brings it back.
    a.connect();
    await waitFor(() => a.wire.sockets.length === 2 && a.connectionStatus === 'OPEN', { message: 'reconnected on demand' });
  });

  it('endSession() closes the same way and does not reconnect', async () => {
    const a = client('ender');
    await subscribeFulfilled(a, a.query('notes').Where('book', '=', 'end'));
    await a.endSession();
    await waitFor(() => a.wire.sockets[0].closed, { message: 'closed' });
    assert.equal(a.wire.sockets[0].closed.code, 1000);
    assert.deepEqual(closeReason(a.wire.sockets[0].closed), { type: 'MANUAL_DISCONNECT', retry: false });
    await sleep(800);
    assert.equal(a.wire.sockets.length, 1, 'no new socket');
  });
});
