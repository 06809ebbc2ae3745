// Losing the shared PostgreSQL database and getting it back, with two Ferry
// nodes and the published client. While the database is unreachable:
// /healthcheck answers 503, HTTP calls that need it get a 503 in Triplit's
// error shape, open sockets get a retryable close (CLOSE STORE_UNAVAILABLE,
// retry: true, code 1012) and new ones are refused the same way. When it is
// back, nothing is restarted: clients reconnect by themselves with their
// checkpoint and sync the outbox they filled offline, and no acknowledged
// write is lost. The outage is real: ALLOW_CONNECTIONS false on the test's
// own database plus pg_terminate_backend of its sessions. Ferry-only;
// needs PostgreSQL on 127.0.0.1:5432 (skipped with a message when it is
// missing, but required under CI=true).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { closeClients, closeReason, createClient, localRows, openRaw, subscribeFulfilled, waitFor } from '../lib/sync.mjs';
import { startServer } from '../lib/server.mjs';
import { pgDatabase, psql } from '../lib/postgres.mjs';

const pg = pgDatabase('outage');
const database = pg.name;

function takeDown() {
  // Two requests: one request runs as one transaction, and a session
  // starting after the termination but before that commit would escape.
  const off = psql(`alter database ${database} allow_connections false`);
  assert.equal(off.status, 0, off.stderr);
  const r = psql(
    `select pg_terminate_backend(pid) from pg_stat_activity where datname = '${database}' and pid <> pg_backend_pid()`
  );
  assert.equal(r.status, 0, r.stderr);
}

function bringBack() {
  const r = psql(`alter database ${database} allow_connections true`);
  assert.equal(r.status, 0, r.stderr);
}

async function health(srv) {
  const res = await fetch(srv.url + '/healthcheck');
  return { status: res.status, body: await res.text() };
}

async function fetchNotes(srv) {
  const res = await fetch(srv.url + '/fetch', {
    method: 'POST',
    headers: { Authorization: `Bearer ${srv.serviceToken}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ query: { collectionName: 'notes', order: [['id', 'ASC']] } }),
  });
  return { status: res.status, body: await res.json() };
}

describe('losing the shared PostgreSQL database', { skip: pg.skip }, () => {
  const url = pg.url;
  let a;
  let b;
  before(async () => {
    a = await startServer({ env: { DATABASE_URL: url } });
    b = await startServer({ env: { DATABASE_URL: url } });
  });
  after(async () => {
    bringBack();
    await closeClients();
    await a?.stop();
    await b?.stop();
    pg.drop();
  });

  it('answers 503 and closes sockets retryably during the outage, then resumes with the offline writes synced', async () => {
    const onA = createClient(a);
    const onB = createClient(b);
    const q = (c) => c.query('notes').Order('id', 'ASC');
    await subscribeFulfilled(onA, q(onA));
    await subscribeFulfilled(onB, q(onB));
    // Acknowledged before the outage.
    await onA.insert('notes', { id: 'before', text: 'acknowledged' });
    await waitFor(async () => (await localRows(onB, q(onB))).some((r) => r.id === 'before'), { message: 'B sees the first write' });
    assert.equal((await health(a)).status, 200);
    const socketsBefore = onA.wire.sockets.length;

    takeDown();
    for (const srv of [a, b]) {
      // A failed probe read answers a bare 503 `UNAVAILABLE` until the
      // store's health signal says why (router.rs); wait for the reason.
      await waitFor(
        async () => {
          const h = await health(srv);
          return h.status === 503 && /UNAVAILABLE: database unreachable/.test(h.body);
        },
        { timeout: 20_000, message: 'healthcheck 503 UNAVAILABLE: database unreachable' }
      );
    }
    // The open socket got a retryable close, not silence.
    await waitFor(() => onA.wire.sockets[socketsBefore - 1]?.closed, { timeout: 20_000, message: 'A’s socket closed' });
    const closed = onA.wire.sockets[socketsBefore - 1].closed;
    assert.equal(closed.code, 1012);
    assert.deepEqual(closeReason(closed), { type: 'STORE_UNAVAILABLE', retry: true });
    const closeMessage = onA.wire.sockets[socketsBefore - 1].received.find((m) => m.type === 'CLOSE');
    assert.equal(closeMessage?.payload?.type, 'STORE_UNAVAILABLE');
    assert.equal(closeMessage?.payload?.retry, true);
    // A new socket is refused the same way.
    const raw = await openRaw(a, { ready: false });
    const refused = await raw.closedEvent;
    assert.equal(refused.code, 1012);
    assert.deepEqual(closeReason(refused), { type: 'STORE_UNAVAILABLE', retry: true });
    // HTTP that needs the database: 503 in Triplit's error shape.
    const during = await fetchNotes(b);
    assert.equal(during.status, 503);
    assert.equal(during.body.name, 'ServiceUnavailableError');
    assert.equal(during.body.status, 503);
    // The client keeps writing offline; the write waits in its outbox.
    await onA.insert('notes', { id: 'offline', text: 'written during the outage' });

    bringBack();
    for (const srv of [a, b]) {
      await waitFor(async () => (await health(srv)).status === 200, { timeout: 20_000, message: 'healthcheck 200 again' });
    }
    // A reconnects by itself and syncs its outbox; B's client sees it live.
    await waitFor(async () => (await localRows(onB, q(onB))).some((r) => r.id === 'offline'), {
      timeout: 30_000,
      message: 'the offline write reaches B’s client',
    });
    assert.ok(onA.wire.sockets.length > socketsBefore, 'A reconnected on a new socket');
    const afterFetch = await fetchNotes(b);
    assert.equal(afterFetch.status, 200);
    const ids = afterFetch.body.map((e) => e.id);
    assert.deepEqual(ids, ['before', 'offline'], 'no acknowledged write lost');
    // Writes work again on both nodes and reach the other.
    await onB.insert('notes', { id: 'later', text: 'after recovery' });
    await waitFor(async () => (await localRows(onA, q(onA))).some((r) => r.id === 'later'), { message: 'A sees B’s later write' });
    // One log line per outage per node, not one per retry.
    const lines = a.output().split('\n').filter((l) => l.includes('postgres database unreachable'));
    assert.equal(lines.length, 1, a.output().slice(-3000));
  });
});
