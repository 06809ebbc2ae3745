// The token over a session's lifetime (triplit.md §1.7–1.8, §3.5):
//  - a token that does not verify at connect → CLOSE UNAUTHORIZED, 1008, and
//    the client reports onSessionError('UNAUTHORIZED') and stays closed;
//  - a token that expires on an open socket → CLOSE TOKEN_EXPIRED, 1008;
//  - startSession(token, true, {refreshHandler}) keeps one socket alive over
//    several short token lifetimes through POST /update-token;
//  - a refreshed token with different roles → CLOSE ROLES_MISMATCH.
import {
  createClient,
  closeClients,
  openRaw,
  closeRaws,
  waitFor,
  subscribeFulfilled,
  closeReason,
  sleep,
} from '../lib/sync.mjs';
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Schema as S } from '@triplit/client';
import { startServer, target } from '../lib/server.mjs';
import { ok } from '../lib/http.mjs';
import { signToken } from '../lib/tokens.mjs';

const roles = { user: { match: { sub: '$userId' } } };
const collections = S.Collections({
  // No permissions key: any role may read and write.
  notes: { schema: S.Schema({ id: S.Id(), text: S.String(), topic: S.String() }) },
});

let server;
before(async () => {
  server = await startServer({ schema: { roles, collections } });
});
after(async () => {
  await closeClients();
  await closeRaws();
  await server?.stop();
});

const nowSec = () => Math.floor(Date.now() / 1000);
/** A user token expiring `seconds` from now (on a whole second, so in (seconds-1, seconds]). */
const expiringToken = (sub, seconds, extra = {}) => signToken({ sub, exp: nowSec() + seconds, ...extra });

/** Record the client's POST /update-token calls (it uses the global fetch). */
function recordUpdateTokenCalls() {
  const calls = [];
  const original = globalThis.fetch;
  globalThis.fetch = async (url, init) => {
    const res = await original(url, init);
    if (String(url).endsWith('/update-token')) calls.push({ status: res.status, body: init?.body });
    return res;
  };
  return { calls, restore: () => (globalThis.fetch = original) };
}

// The tests mostly wait for tokens to expire, so they run concurrently.
const concurrent = { concurrency: true };

describe('sessions', concurrent, () => {
  describe('a bad token at connect', concurrent, () => {
    it('raw: CLOSE UNAUTHORIZED then close 1008 (see also sync-protocol)', async () => {
      const raw = await openRaw(server, { token: signToken({ sub: 'x' }, { secret: 'wrong-secret' }), ready: false });
      const closed = await raw.closedEvent;
      assert.equal(closed.code, 1008);
      assert.deepEqual(closeReason(closed), { type: 'UNAUTHORIZED', retry: false });
    });

    it('client: onSessionError("UNAUTHORIZED"), status CLOSED, no reconnect', async () => {
      const errors = [];
      const c = createClient(server, { token: null, autoConnect: false, schema: collections, roles });
      c.onSessionError((type) => errors.push(type));
      await c.startSession(signToken({ sub: 'x' }, { secret: 'wrong-secret' }), true);
      await waitFor(() => errors.length === 1, { message: 'onSessionError' });
      assert.deepEqual(errors, ['UNAUTHORIZED']);
      await waitFor(() => c.connectionStatus === 'CLOSED', { message: 'CLOSED' });
      assert.equal(c.wire.sockets[0].closed.code, 1008);
      assert.deepEqual(closeReason(c.wire.sockets[0].closed), { type: 'UNAUTHORIZED', retry: false });
      assert.ok(!c.wire.sockets[0].received.some((m) => m.type === 'READY'));
      // retry:false — the client must not try again (its first retry would come after 250 ms).
      await sleep(800);
      assert.equal(c.wire.sockets.length, 1);
    });
  });

  describe('a token that expires on an open socket', concurrent, () => {
    it('raw: after expiry, a PING gets no PONG; CLOSE TOKEN_EXPIRED and close 1008 instead', async () => {
      const token = expiringToken('raw-exp', 2);
      const exp = JSON.parse(Buffer.from(token.split('.')[1], 'base64url')).exp;
      const raw = await openRaw(server, { token });
      raw.send({ type: 'CONNECT_QUERY', payload: { id: 'q', params: { collectionName: 'notes', where: [['topic', '=', 'exp']] } } });
      await raw.next('ENTITY_DATA');
      await raw.roundTrip(); // alive before expiry
      await waitFor(() => Date.now() > exp * 1000 + 200, { timeout: 4000, message: 'past expiry' });
      if (target === 'reference') {
        // Upstream notices expiry only when a message is sent or received, so
        // the idle socket is still open here. Ferry closes it at expiry, idle
        // or not (docs/compatibility.md, "Deliberate differences").
        assert.ok(raw.isOpen, 'upstream: still open while idle');
      } else {
        await waitFor(() => raw.closed, { timeout: 3000, message: 'closed at expiry while idle' });
      }
      if (raw.isOpen) raw.send({ type: 'PING', payload: { clientTimestamp: 42 } });
      const closed = await raw.closedEvent;
      assert.equal(closed.code, 1008);
      assert.deepEqual(closeReason(closed), { type: 'TOKEN_EXPIRED', retry: false });
      const close = raw.messages.find((m) => m.type === 'CLOSE');
      assert.ok(close, 'a CLOSE message before the close frame');
      assert.equal(close.payload.type, 'TOKEN_EXPIRED');
      assert.equal(close.payload.retry, false);
      assert.ok(!raw.messages.some((m) => m.type === 'PONG' && m.payload.clientTimestamp === 42), 'no PONG after expiry');
    });

    it('client: onSessionError("TOKEN_EXPIRED"), status CLOSED, no reconnect', async () => {
      const errors = [];
      const c = createClient(server, { token: null, autoConnect: false, schema: collections, roles });
      c.onSessionError((type) => errors.push(type));
      const token = expiringToken('client-exp', 2);
      const exp = JSON.parse(Buffer.from(token.split('.')[1], 'base64url')).exp;
      await c.startSession(token, true);
      const sub = await subscribeFulfilled(c, c.query('notes').Where('topic', '=', 'exp'));
      await waitFor(() => Date.now() > exp * 1000 + 200, { timeout: 4000, message: 'past expiry' });
      c.ping(); // a no-op if the server already closed the socket at expiry
      await waitFor(() => errors.length === 1, { timeout: 5000, message: 'onSessionError' });
      assert.deepEqual(errors, ['TOKEN_EXPIRED']);
      await waitFor(() => c.connectionStatus === 'CLOSED', { message: 'CLOSED' });
      assert.equal(c.wire.sockets[0].closed.code, 1008);
      assert.deepEqual(closeReason(c.wire.sockets[0].closed), { type: 'TOKEN_EXPIRED', retry: false });
      await sleep(800);
      assert.equal(c.wire.sockets.length, 1, 'no reconnect');
      sub.unsubscribe();
    });
  });

  describe('token refresh', concurrent, () => {
    it('refreshHandler + POST /update-token keep one socket alive over several short token lifetimes', async () => {
      const rec = recordUpdateTokenCalls();
      try {
        const c = createClient(server, { token: null, autoConnect: false, schema: collections, roles });
        const errors = [];
        c.onSessionError((type) => errors.push(type));
        const first = expiringToken('refresher', 3, { n: 0 });
        const firstExp = JSON.parse(Buffer.from(first.split('.')[1], 'base64url')).exp;
        let refreshes = 0;
        await c.startSession(first, true, {
          // Each new token lives 2–3 s; the client refreshes 1 s before expiry.
          refreshHandler: async () => expiringToken('refresher', 3, { n: ++refreshes }),
        });
        const sub = await subscribeFulfilled(c, c.query('notes').Where('topic', '=', 'refresh'));
        const clientId = c.wire.sockets[0].received[0].payload.clientId;
        const mine = () => rec.calls.filter((call) => JSON.parse(call.body).clientId === clientId);
        await waitFor(() => refreshes >= 3 && mine().length >= 3, { timeout: 12_000, message: 'three refreshes' });
        assert.ok(Date.now() > firstExp * 1000, 'past the first token’s expiry');
        assert.ok(mine().every((call) => call.status === 200), JSON.stringify(mine()));
        // Still the same socket, open, and working both ways.
        assert.equal(c.wire.sockets.length, 1, 'never reconnected');
        assert.equal(c.connectionStatus, 'OPEN');
        const before = c.wire.received.length;
        c.ping();
        await waitFor(() => c.wire.received.slice(before).some((m) => m.type === 'PONG'), { message: 'PONG after refreshes' });
        await ok(server, '/insert', { collectionName: 'notes', entity: { id: 'rf1', text: 'remote', topic: 'refresh' } });
        await waitFor(() => sub.results().length === 1, { message: 'live data after refreshes' });
        await c.insert('notes', { id: 'rf2', text: 'local', topic: 'refresh' });
        await waitFor(async () => (await ok(server, '/fetch', { query: { collectionName: 'notes', where: [['id', '=', 'rf2']] } })).length === 1, {
          message: 'writes after refreshes',
        });
        assert.deepEqual(errors, []);
        sub.unsubscribe();
        await c.endSession();
      } finally {
        rec.restore();
      }
    });

    it('a refreshed token with different roles → CLOSE ROLES_MISMATCH (schemaless client: the server decides)', async () => {
      // Without a schema the client has no roles to compare, so it sends the
      // new token to /update-token and the server finds the mismatch.
      const c = createClient(server, { token: null, autoConnect: false });
      const errors = [];
      c.onSessionError((type) => errors.push(type));
      let refreshed = 0;
      await c.startSession(expiringToken('alice', 3), true, {
        refreshHandler: async () => {
          refreshed++;
          return expiringToken('mallory', 60); // role user with userId "mallory" ≠ "alice"
        },
      });
      const sub = await subscribeFulfilled(c, c.query('notes').Where('topic', '=', 'mismatch'));
      await waitFor(() => errors.length === 1, { timeout: 6000, message: 'onSessionError' });
      assert.equal(refreshed, 1);
      assert.deepEqual(errors, ['ROLES_MISMATCH']);
      await waitFor(() => c.connectionStatus === 'CLOSED', { message: 'CLOSED' });
      const sock = c.wire.sockets[0];
      assert.equal(sock.closed.code, 1008);
      assert.deepEqual(closeReason(sock.closed), { type: 'ROLES_MISMATCH', retry: false });
      const close = sock.received.find((m) => m.type === 'CLOSE');
      assert.equal(close?.payload.type, 'ROLES_MISMATCH');
      assert.equal(close?.payload.retry, false);
      await sleep(800);
      assert.equal(c.wire.sockets.length, 1, 'no reconnect');
      sub.unsubscribe();
    });

    it('POST /update-token with an invalid token is refused with 401 and leaves the socket alone', async () => {
      const raw = await openRaw(server, { token: expiringToken('bob', 60) });
      const res = await fetch(server.url + '/update-token', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: 'Bearer ' + signToken({ sub: 'bob' }, { secret: 'nope' }) },
        body: JSON.stringify({ clientId: raw.ready.payload.clientId }),
      });
      assert.equal(res.status, 401);
      await raw.roundTrip();
      assert.ok(raw.isOpen);
      await raw.close();
    });
  });
});
