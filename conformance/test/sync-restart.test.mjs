// The server goes away (graceful restart, or SIGKILL) while clients are
// connected: the clients reconnect by themselves (a close without a
// retry:false reason means "retry", with backoff from 250 ms), the data is
// intact, writes made while the server was down are synced, and live queries
// resume in both directions.
import { createClient, closeClients, waitFor, subscribeFulfilled, serviceHttp, canon } from '../lib/sync.mjs';
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Schema as S } from '@triplit/client';
import { startServer } from '../lib/server.mjs';
import { ok } from '../lib/http.mjs';
import { signToken } from '../lib/tokens.mjs';

const collections = S.Collections({
  msgs: { schema: S.Schema({ id: S.Id(), text: S.String(), room: S.String(), n: S.Number() }) },
});

let server;
before(async () => {
  server = await startServer({ schema: { collections } });
});
after(async () => {
  await closeClients();
  await server?.stop();
});

const client = (sub) => createClient(server, { token: signToken({ sub }), schema: collections });
const openSockets = (c) => c.wire.sockets.filter((s) => s.opened && !s.closed).length;

for (const crash of [false, true]) {
  describe(crash ? 'after a crash (SIGKILL)' : 'after a graceful restart (SIGTERM)', () => {
    it('clients reconnect on their own, data is intact, live queries resume both ways', async () => {
      const room = crash ? 'crash' : 'graceful';
      const q = (c) => c.query('msgs').Where('room', '=', room);
      const a = client(`a-${room}`);
      const b = client(`b-${room}`);
      const sa = await subscribeFulfilled(a, q(a));
      const sb = await subscribeFulfilled(b, q(b));
      await a.insert('msgs', { id: `${room}-1`, text: 'before', room, n: 1 });
      await waitFor(() => sb.results().length === 1, { message: 'b saw the first message' });

      await server.restart({ crash });
      // Both clients noticed and opened a new socket by themselves.
      await waitFor(() => a.wire.sockets.length >= 2 && openSockets(a) === 1 && a.connectionStatus === 'OPEN', {
        timeout: 15_000,
        message: 'a reconnected',
      });
      await waitFor(() => b.wire.sockets.length >= 2 && openSockets(b) === 1 && b.connectionStatus === 'OPEN', {
        timeout: 15_000,
        message: 'b reconnected',
      });
      const firstClose = a.wire.sockets[0].closed;
      assert.ok(firstClose, 'the first socket closed');
      // Data acknowledged before the restart is there.
      assert.deepEqual(await ok(server, '/fetch', { query: { collectionName: 'msgs', where: [['room', '=', room]] } }), [
        { id: `${room}-1`, text: 'before', room, n: 1 },
      ]);
      // Live in both directions after the reconnect.
      await b.insert('msgs', { id: `${room}-2`, text: 'after, from b', room, n: 2 });
      await waitFor(() => sa.results().length === 2, { message: 'a sees b’s write after the restart' });
      await a.update('msgs', `${room}-1`, (e) => void (e.text = 'edited after'));
      await waitFor(() => sb.results().find((e) => e.id === `${room}-1`)?.text === 'edited after', {
        message: 'b sees a’s update after the restart',
      });
      await ok(server, '/insert', { collectionName: 'msgs', entity: { id: `${room}-3`, text: 'via http', room, n: 3 } });
      await waitFor(() => sa.results().length === 3 && sb.results().length === 3, { message: 'http write reached both' });
      sa.unsubscribe();
      sb.unsubscribe();
    });
  });
}

describe('writes made while the server is down', () => {
  it('are kept in the outbox and synced after the server is back', async () => {
    const room = 'down';
    const q = (c) => c.query('msgs').Where('room', '=', room);
    const a = client('a-down');
    const b = client('b-down');
    const sa = await subscribeFulfilled(a, q(a));
    const sb = await subscribeFulfilled(b, q(b));
    await server.kill();
    await waitFor(() => a.connectionStatus !== 'OPEN' && b.connectionStatus !== 'OPEN', { message: 'clients noticed' });
    await a.insert('msgs', { id: 'down-1', text: 'written while down', room, n: 1 });
    await a.insert('msgs', { id: 'down-2', text: 'also while down', room, n: 2 });
    await a.delete('msgs', 'down-2');
    await a.update('msgs', 'down-1', (e) => void (e.n = 10));
    await waitFor(() => sa.results().length === 1, { message: 'visible locally while offline' });
    await server.restart();
    await waitFor(async () => (await ok(server, '/fetch', { query: { collectionName: 'msgs', where: [['room', '=', room]] } })).length === 1, {
      timeout: 15_000,
      message: 'the outbox reached the server',
    });
    const truth = canon(await serviceHttp(server, collections).fetch(q(a)));
    assert.deepEqual(truth, canon([{ id: 'down-1', text: 'written while down', room, n: 10 }]));
    await waitFor(() => assert.deepEqual(canon(sb.results()), truth) ?? true, { timeout: 15_000, message: 'b got it' });
    assert.deepEqual(canon(sa.results()), truth);
    sa.unsubscribe();
    sb.unsubscribe();
  });
});
