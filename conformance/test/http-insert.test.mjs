// POST /insert: defaults, serialization, storage and input errors.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Schema as S } from '@triplit/client';
import { startServer } from '../lib/server.mjs';
import { call, ok, httpClient, uniqueName } from '../lib/http.mjs';
import { assertTriplitError, NANOID, ISO_DATE, UUID_V4 } from '../lib/expect.mjs';

const collections = S.Collections({
  tasks: {
    schema: S.Schema({
      id: S.Id(),
      title: S.String(),
      done: S.Boolean({ default: false }),
      priority: S.Number({ default: 3 }),
      status: S.String({ default: 'open' }),
      createdAt: S.Date({ default: S.Default.now() }),
      tags: S.Set(S.String(), { default: S.Default.Set.empty() }),
      ref: S.String({ default: S.Default.Id.uuidv4() }),
      note: S.Optional(S.String()),
      color: S.Optional(S.String({ enum: ['red', 'green'] })),
    }),
  },
  // Each test that needs a fresh table takes its own collection.
  notes: { schema: S.Schema({ id: S.Id(), body: S.String() }) },
  notes2: { schema: S.Schema({ id: S.Id(), body: S.String() }) },
  notes3: { schema: S.Schema({ id: S.Id(), body: S.String(), n: S.Optional(S.Number()) }) },
});

let server; // with the schema above
let schemaless;
before(async () => {
  [server, schemaless] = await Promise.all([startServer({ schema: { collections } }), startServer()]);
});
after(async () => {
  await Promise.all([server?.stop(), schemaless?.stop()]);
});

const insert = (srv, collectionName, entity, token) => call(srv, '/insert', { body: { collectionName, entity }, token });
const fetchAll = (srv, collectionName, where) =>
  ok(srv, '/fetch', { query: { collectionName, ...(where ? { where } : {}) } });

describe('POST /insert with a schema', () => {
  it('applies every kind of default and returns the serialized entity', async () => {
    const before = Date.now();
    const res = await insert(server, 'tasks', { title: 'defaults' });
    const afterTs = Date.now();
    assert.equal(res.status, 200, res.text);
    const e = res.json;
    assert.match(e.id, NANOID);
    assert.equal(e.title, 'defaults');
    assert.equal(e.done, false);
    assert.equal(e.priority, 3);
    assert.equal(e.status, 'open');
    assert.match(e.createdAt, ISO_DATE);
    const created = Date.parse(e.createdAt);
    assert.ok(created >= before - 5 && created <= afterTs + 5, `now default ${e.createdAt} within the request`);
    assert.deepEqual(e.tags, []);
    assert.match(e.ref, UUID_V4);
    // Optional attributes without a value are omitted, not null.
    assert.ok(!('note' in e));
    assert.ok(!('color' in e));
    assert.deepEqual(Object.keys(e).sort(), ['createdAt', 'done', 'id', 'priority', 'ref', 'status', 'tags', 'title']);
  });

  it('stores what it returned', async () => {
    const e = await ok(server, '/insert', { collectionName: 'tasks', entity: { title: 'stored', note: 'n' } });
    const rows = await fetchAll(server, 'tasks', [['id', '=', e.id]]);
    assert.deepEqual(rows, [e]);
  });

  it('lets given values, including falsy ones, win over defaults', async () => {
    const e = await ok(server, '/insert', {
      collectionName: 'tasks',
      entity: {
        id: 'given-1',
        title: '',
        done: true,
        priority: 0,
        status: '',
        createdAt: '2020-02-02T02:02:02.002Z',
        tags: ['a'],
        ref: 'r',
      },
    });
    assert.deepEqual(e, {
      id: 'given-1',
      title: '',
      done: true,
      priority: 0,
      status: '',
      createdAt: '2020-02-02T02:02:02.002Z',
      tags: ['a'],
      ref: 'r',
    });
  });

  it('generates distinct ids', async () => {
    const ids = new Set();
    for (let i = 0; i < 5; i++) ids.add((await ok(server, '/insert', { collectionName: 'tasks', entity: { title: 't' + i } })).id);
    assert.equal(ids.size, 5);
  });

  it('accepts the anon token when the collection has no permissions', async () => {
    const res = await insert(server, 'notes', { id: 'anon-1', body: 'hi' }, server.anonToken);
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json, { id: 'anon-1', body: 'hi' });
  });

  it('an insert over an existing id merges into the stored entity (last write wins per attribute)', async () => {
    await ok(server, '/insert', { collectionName: 'notes3', entity: { id: 'm1', body: 'first', n: 1 } });
    const second = await ok(server, '/insert', { collectionName: 'notes3', entity: { id: 'm1', body: 'second' } });
    assert.deepEqual(second, { id: 'm1', body: 'second' });
    // `n` was not part of the second insert and survives.
    assert.deepEqual(await fetchAll(server, 'notes3'), [{ id: 'm1', body: 'second', n: 1 }]);
  });

  it('the published HttpClient gets Sets and Dates back', async () => {
    const client = httpClient(server, { schema: collections });
    const e = await client.insert('tasks', { title: 'via client', tags: new Set(['x', 'y']), createdAt: new Date('2021-03-04T05:06:07.089Z') });
    assert.match(e.id, NANOID);
    assert.ok(e.tags instanceof Set);
    assert.deepEqual([...e.tags].sort(), ['x', 'y']);
    assert.ok(e.createdAt instanceof Date);
    assert.equal(e.createdAt.toISOString(), '2021-03-04T05:06:07.089Z');
    const back = await client.fetchById('tasks', e.id);
    assert.deepEqual([...back.tags].sort(), ['x', 'y']);
    assert.equal(back.createdAt.toISOString(), '2021-03-04T05:06:07.089Z');
  });
});

describe('POST /insert input errors', () => {
  it('a value of the wrong type → 400 DBSerializationError, nothing stored', async () => {
    const res = await insert(server, 'notes2', { id: 'bad-1', body: 5 });
    assertTriplitError(res, { status: 400, name: 'DBSerializationError' });
    assert.deepEqual(await fetchAll(server, 'notes2', [['id', '=', 'bad-1']]), []);
  });

  it('a missing required attribute → 400 DBSerializationError', async () => {
    assertTriplitError(await insert(server, 'notes2', { id: 'bad-2' }), { status: 400, name: 'DBSerializationError' });
  });

  it('a value outside an enum → 400 DBSerializationError', async () => {
    assertTriplitError(await insert(server, 'tasks', { title: 't', color: 'blue' }), {
      status: 400,
      name: 'DBSerializationError',
    });
    assert.equal((await insert(server, 'tasks', { title: 't', color: 'red' })).status, 200);
  });

  it('wrong types for a set, a date, a boolean and a number → 400 DBSerializationError', async () => {
    for (const bad of [{ tags: 'x' }, { createdAt: 'not a date' }, { done: 'yes' }, { priority: '3' }]) {
      assertTriplitError(await insert(server, 'tasks', { title: 't', ...bad }), {
        status: 400,
        name: 'DBSerializationError',
      });
    }
  });

  it('no collectionName → 400 InvalidCollectionNameError', async () => {
    assertTriplitError(await call(server, '/insert', { body: { entity: { id: 'x' } } }), {
      status: 400,
      name: 'InvalidCollectionNameError',
    });
  });

  it('no entity, or an entity that is not an object → 400 InvalidInsertDocumentError', async () => {
    for (const body of [{ collectionName: 'notes' }, { collectionName: 'notes', entity: 5 }, { collectionName: 'notes', entity: 'x' }]) {
      assertTriplitError(await call(server, '/insert', { body }), { status: 400, name: 'InvalidInsertDocumentError' });
    }
  });
});

describe('POST /insert without a schema', () => {
  it('stores and returns the entity as given', async () => {
    const c = uniqueName('free');
    const entity = { id: 'f1', n: 1.5, s: 'x', b: false, nil: null, arr: [1, 'a', { z: 1 }], obj: { deep: { er: [true] } } };
    const res = await insert(schemaless, c, entity, schemaless.anonToken);
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json, entity);
    assert.deepEqual(await fetchAll(schemaless, c), [entity]);
  });

  it('generates a nanoid id when none is given', async () => {
    const c = uniqueName('free');
    const e = await ok(schemaless, '/insert', { collectionName: c, entity: { text: 'no id given' } });
    assert.match(e.id, NANOID);
    assert.deepEqual(e, { id: e.id, text: 'no id given' });
  });
});
