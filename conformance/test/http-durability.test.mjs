// Acknowledged writes survive a restart on the same LOCAL_DATABASE_URL, both
// a graceful one (SIGTERM) and a crash (SIGKILL right after the 200s), also
// with `--durability process` (durable against a crash of the process only).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Schema as S } from '@triplit/client';
import { startServer } from '../lib/server.mjs';
import { call, ok } from '../lib/http.mjs';
import { byId } from '../lib/expect.mjs';

const collections = S.Collections({
  notes: {
    schema: S.Schema({
      id: S.Id(),
      text: S.String(),
      tags: S.Set(S.String(), { default: S.Default.Set.empty() }),
      at: S.Optional(S.Date()),
      meta: S.Optional(S.Record({ a: S.Number(), b: S.Optional(S.Number()) })),
    }),
  },
  other: { schema: S.Schema({ id: S.Id(), n: S.Number() }) },
});
const schema = { collections };

const all = (srv, collectionName = 'notes') => ok(srv, '/fetch', { query: { collectionName } });

async function withServer(fn) {
  const srv = await startServer({ schema });
  try {
    await fn(srv);
  } finally {
    await srv.stop();
  }
}

/** A mix of writes, each acknowledged before the next. Returns the expected final state. */
async function writeMix(srv) {
  await ok(srv, '/insert', { collectionName: 'notes', entity: { id: 'n1', text: 'one', tags: ['a', 'b'], at: '2024-01-01T00:00:00.000Z', meta: { a: 1 } } });
  await ok(srv, '/insert', { collectionName: 'notes', entity: { id: 'n2', text: 'two' } });
  await ok(srv, '/bulk-insert?noReturn=true', { notes: [{ id: 'n3', text: 'three' }, { id: 'n4', text: 'four' }], other: [{ id: 'o1', n: 1 }] });
  await ok(srv, '/update', { collectionName: 'notes', entityId: 'n1', changes: { text: 'one!', tags: { a: false, c: true }, meta: { b: 2 } } });
  await ok(srv, '/delete', { collectionName: 'notes', entityId: 'n2' });
  return {
    notes: [
      { id: 'n1', text: 'one!', tags: ['b', 'c'], at: '2024-01-01T00:00:00.000Z', meta: { a: 1, b: 2 } },
      { id: 'n3', text: 'three', tags: [] },
      { id: 'n4', text: 'four', tags: [] },
    ],
    other: [{ id: 'o1', n: 1 }],
  };
}
const normalize = (rows) => byId(rows).map((e) => ({ ...e, tags: [...e.tags].sort() }));

describe('restart durability', () => {
  it('a graceful restart (SIGTERM) keeps data and schema', () =>
    withServer(async (srv) => {
      const expected = await writeMix(srv);
      await srv.restart();
      assert.deepEqual(normalize(await all(srv)), expected.notes);
      assert.deepEqual(await all(srv, 'other'), expected.other);
      const sch = await ok(srv, '/schema', {});
      assert.equal(sch.type, 'schema');
      assert.deepEqual(Object.keys(sch.schema.collections).sort(), ['notes', 'other']);
      // The schema is still enforced, and the server keeps accepting writes.
      assert.equal((await call(srv, '/insert', { body: { collectionName: 'notes', entity: { text: 5 } } })).status, 400);
      await ok(srv, '/insert', { collectionName: 'notes', entity: { id: 'n5', text: 'after' } });
      assert.equal((await all(srv)).length, 4);
    }));

  it('a crash (SIGKILL) right after acknowledged writes loses none of them', () =>
    withServer(async (srv) => {
      const expected = await writeMix(srv);
      await srv.restart({ crash: true });
      assert.deepEqual(normalize(await all(srv)), expected.notes);
      assert.deepEqual(await all(srv, 'other'), expected.other);
    }));

  it('with --durability process (no fsync per commit) a crash of the process loses no acknowledged write', async () => {
    // The reference runs synchronous=NORMAL itself and gets no flags.
    const srv = await startServer({ schema, ferryArgs: ['--durability', 'process'] });
    try {
      const expected = await writeMix(srv);
      await srv.restart({ crash: true });
      assert.deepEqual(normalize(await all(srv)), expected.notes);
      assert.deepEqual(await all(srv, 'other'), expected.other);
      await ok(srv, '/insert', { collectionName: 'other', entity: { id: 'o2', n: 2 } });
      await srv.restart({ crash: true });
      assert.deepEqual((await all(srv, 'other')).map((e) => e.id), ['o1', 'o2']);
    } finally {
      await srv.stop();
    }
  });

  it('a crash after many concurrent acknowledged inserts loses none of them', () =>
    withServer(async (srv) => {
      const ids = Array.from({ length: 60 }, (_, i) => `c${String(i).padStart(3, '0')}`);
      const results = await Promise.all(
        ids.map((id) => call(srv, '/insert', { body: { collectionName: 'other', entity: { id, n: Number(id.slice(1)) } } }))
      );
      assert.ok(results.every((r) => r.status === 200));
      await srv.kill();
      await srv.restart();
      assert.deepEqual(
        (await all(srv, 'other')).map((e) => e.id),
        ids
      );
    }));

  it('a crash right after a large acknowledged bulk insert loses none of it', () =>
    withServer(async (srv) => {
      const notes = Array.from({ length: 500 }, (_, i) => ({ id: `b${String(i).padStart(4, '0')}`, text: 'x'.repeat(200) }));
      await ok(srv, '/bulk-insert?noReturn=true', { notes });
      await srv.restart({ crash: true });
      const rows = await all(srv);
      assert.equal(rows.length, 500);
      assert.deepEqual(
        rows.map((e) => e.id),
        notes.map((e) => e.id)
      );
    }));

  it('survives several restarts in a row, and clear {full:true} is durable too', () =>
    withServer(async (srv) => {
      await ok(srv, '/insert', { collectionName: 'other', entity: { id: 'r', n: 0 } });
      for (let i = 1; i <= 3; i++) {
        await srv.restart({ crash: i % 2 === 1 });
        await ok(srv, '/update', { collectionName: 'other', entityId: 'r', changes: { n: i } });
      }
      await srv.restart({ crash: true });
      assert.deepEqual(await all(srv, 'other'), [{ id: 'r', n: 3 }]);
      const res = await call(srv, '/clear', { body: { full: true } });
      assert.equal(res.status, 200);
      await srv.restart({ crash: true });
      assert.deepEqual(await ok(srv, '/schema', {}), { type: 'schemaless' });
      assert.deepEqual(await ok(srv, '/stats', {}), []);
    }));
});
