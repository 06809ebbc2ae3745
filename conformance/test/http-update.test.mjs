// POST /update: `changes` is an *encoded* patch (sets as {item: true|false}),
// merged into the stored entity.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Schema as S } from '@triplit/client';
import { startServer } from '../lib/server.mjs';
import { call, ok, httpClient, uniqueName } from '../lib/http.mjs';
import { assertTriplitError } from '../lib/expect.mjs';

const collections = S.Collections({
  docs: {
    schema: S.Schema({
      id: S.Id(),
      title: S.String(),
      count: S.Number({ default: 0 }),
      meta: S.Record({
        a: S.Number(),
        b: S.Optional(S.String()),
        inner: S.Optional(S.Record({ x: S.Number(), y: S.Optional(S.Number()) })),
      }),
      data: S.Optional(S.Json()),
      tags: S.Set(S.String(), { default: S.Default.Set.empty() }),
      nums: S.Optional(S.Set(S.Number())),
      due: S.Optional(S.Date()),
      note: S.Optional(S.String()),
    }),
  },
});

let server;
let free;
before(async () => {
  [server, free] = await Promise.all([startServer({ schema: { collections } }), startServer()]);
});
after(async () => {
  await Promise.all([server?.stop(), free?.stop()]);
});

let n = 0;
/** Insert a fresh doc and return its id. */
async function seed(extra = {}) {
  const id = `d${++n}`;
  await ok(server, '/insert', {
    collectionName: 'docs',
    entity: {
      id,
      title: 'seed',
      meta: { a: 1, inner: { x: 1 } },
      data: { keep: 1, obj: { p: 1, q: [1, 2] }, list: [1, 2, 3] },
      tags: ['x', 'y'],
      nums: [1, 2.5],
      due: '2024-01-02T03:04:05.678Z',
      note: 'a note',
      ...extra,
    },
  });
  return id;
}
const update = (entityId, changes, srv = server, collectionName = 'docs') =>
  call(srv, '/update', { body: { collectionName, entityId, changes } });
async function get(id, srv = server, collectionName = 'docs') {
  const rows = await ok(srv, '/fetch', { query: { collectionName, where: [['id', '=', id]] } });
  return rows[0];
}

describe('POST /update', () => {
  it('sets plain attributes, answers {} and leaves the rest alone', async () => {
    const id = await seed();
    const before = await get(id);
    const res = await update(id, { title: 'changed', count: 5 });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json, {});
    assert.deepEqual(await get(id), { ...before, title: 'changed', count: 5 });
  });

  it('deep-merges records', async () => {
    const id = await seed();
    assert.equal((await update(id, { meta: { b: 'bee', inner: { y: 2 } } })).status, 200);
    assert.deepEqual((await get(id)).meta, { a: 1, b: 'bee', inner: { x: 1, y: 2 } });
  });

  it('json: objects deep-merge, arrays replace', async () => {
    const id = await seed();
    assert.equal((await update(id, { data: { obj: { q: [9], r: 'new' }, list: [] } })).status, 200);
    assert.deepEqual((await get(id)).data, { keep: 1, obj: { p: 1, q: [9], r: 'new' }, list: [] });
  });

  it('json: a null inside the value is stored as null, not removed', async () => {
    const id = await seed();
    assert.equal((await update(id, { data: { obj: null } })).status, 200);
    assert.deepEqual((await get(id)).data, { keep: 1, obj: null, list: [1, 2, 3] });
  });

  it('null unsets optional attributes, at the top level and inside records', async () => {
    const id = await seed({ meta: { a: 1, b: 'bee', inner: { x: 1 } } });
    assert.equal((await update(id, { note: null, due: null, data: null, nums: null, meta: { b: null } })).status, 200);
    const e = await get(id);
    for (const k of ['note', 'due', 'data', 'nums']) assert.ok(!(k in e), `${k} is gone: ${JSON.stringify(e)}`);
    assert.deepEqual(e.meta, { a: 1, inner: { x: 1 } });
  });

  it('sets take {item: true|false}: false removes, true adds', async () => {
    const id = await seed();
    assert.equal((await update(id, { tags: { x: false, z: true } })).status, 200);
    assert.deepEqual((await get(id)).tags.sort(), ['y', 'z']);
    assert.equal((await update(id, { tags: { y: true, nope: false } })).status, 200);
    assert.deepEqual((await get(id)).tags.sort(), ['y', 'z']);
  });

  it('number sets are keyed by the number as a string and come back as numbers', async () => {
    const id = await seed();
    assert.equal((await update(id, { nums: { '2.5': false, 3: true } })).status, 200);
    assert.deepEqual((await get(id)).nums.sort(), [1, 3]);
  });

  it('dates are stored as ISO strings', async () => {
    const id = await seed();
    assert.equal((await update(id, { due: '2025-05-05T10:00:00.000Z' })).status, 200);
    assert.equal((await get(id)).due, '2025-05-05T10:00:00.000Z');
  });

  it('an update of a missing id is a silent no-op: 200 {} and nothing is created', async () => {
    const res = await update('never-inserted', { title: 'ghost', count: 1 });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json, {});
    assert.equal(await get('never-inserted'), undefined);
  });

  it('an update after a delete does not bring the entity back', async () => {
    const id = await seed();
    assert.equal((await call(server, '/delete', { body: { collectionName: 'docs', entityId: id } })).status, 200);
    assert.equal((await update(id, { title: 'zombie' })).status, 200);
    assert.equal(await get(id), undefined);
  });

  it('a value of the wrong type → 400 DBSerializationError, and nothing changes', async () => {
    const id = await seed();
    const before = await get(id);
    assertTriplitError(await update(id, { title: 5 }), { status: 400, name: 'DBSerializationError' });
    assertTriplitError(await update(id, { count: 'many' }), { status: 400, name: 'DBSerializationError' });
    assert.deepEqual(await get(id), before);
  });

  it('null on a required attribute → 400 DBSerializationError', async () => {
    const id = await seed();
    assertTriplitError(await update(id, { title: null }), { status: 400, name: 'DBSerializationError' });
  });

  it('changing the id → 400 InvalidOperationError', async () => {
    const id = await seed();
    assertTriplitError(await update(id, { id: 'other' }), { status: 400, name: 'InvalidOperationError' });
    assert.ok(await get(id));
  });

  it('no collectionName → 400 InvalidCollectionNameError', async () => {
    assertTriplitError(await call(server, '/update', { body: { entityId: 'x', changes: {} } }), {
      status: 400,
      name: 'InvalidCollectionNameError',
    });
  });
});

describe('HttpClient.update', () => {
  it('with an updater function: the proxy turns Set and record edits into an encoded patch', async () => {
    const id = await seed();
    const client = httpClient(server, { schema: collections });
    const res = await client.update('docs', id, (e) => {
      e.title = 'proxied';
      e.tags.add('q');
      e.tags.delete('x');
      e.meta.inner.y = 7;
      e.due = new Date('2030-01-01T00:00:00.000Z');
      delete e.note;
    });
    assert.deepEqual(res, {});
    const e = await get(id);
    assert.equal(e.title, 'proxied');
    assert.deepEqual(e.tags.sort(), ['q', 'y']);
    assert.deepEqual(e.meta, { a: 1, inner: { x: 1, y: 7 } });
    assert.equal(e.due, '2030-01-01T00:00:00.000Z');
    assert.ok(!('note' in e));
  });

  it('with a partial object', async () => {
    const id = await seed();
    const client = httpClient(server, { schema: collections });
    await client.update('docs', id, { title: 'partial', count: 2 });
    const e = await get(id);
    assert.equal(e.title, 'partial');
    assert.equal(e.count, 2);
    assert.deepEqual(e.tags.sort(), ['x', 'y']);
  });

  it('server errors reach the caller as TriplitErrors', async () => {
    const id = await seed();
    const client = httpClient(server); // no schema: the bad value is not caught locally
    await assert.rejects(client.update('docs', id, { title: 123 }), (e) => {
      assert.equal(e.name, 'DBSerializationError');
      assert.equal(e.status, 400);
      return true;
    });
  });
});

describe('POST /update without a schema', () => {
  it('deep-merges objects, replaces arrays and scalars, keeps nulls', async () => {
    const c = uniqueName('free');
    await ok(free, '/insert', { collectionName: c, entity: { id: 'x', n: 1, o: { p: 1, q: { r: 1 } }, arr: [1, 2], keep: 'k' } });
    assert.equal((await update('x', { n: 2, o: { q: { s: 2 } }, arr: [3], keep: null, added: 'new' }, free, c)).status, 200);
    assert.deepEqual(await get('x', free, c), { id: 'x', n: 2, o: { p: 1, q: { r: 1, s: 2 } }, arr: [3], keep: null, added: 'new' });
    assert.equal((await update('x', { o: 5 }, free, c)).status, 200);
    assert.equal((await update('x', { o: { z: 1 } }, free, c)).status, 200);
    assert.deepEqual((await get('x', free, c)).o, { z: 1 });
  });
});
