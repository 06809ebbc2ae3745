// POST /fetch with simple where / order / limit / select. The full query
// language (relations, includes, exists, variables, permissions) is covered
// elsewhere.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Schema as S } from '@triplit/client';
import { startServer } from '../lib/server.mjs';
import { call, ok, httpClient, uniqueName } from '../lib/http.mjs';
import { assertTriplitError } from '../lib/expect.mjs';

const collections = S.Collections({
  people: {
    schema: S.Schema({
      id: S.Id(),
      name: S.String(),
      age: S.Number(),
      active: S.Boolean(),
      joined: S.Date(),
      team: S.Optional(S.String()),
    }),
  },
  empty: { schema: S.Schema({ id: S.Id() }) },
});

const people = [
  { id: 'p1', name: 'Ada', age: 36, active: true, joined: '2020-01-15T00:00:00.000Z', team: 'core' },
  { id: 'p2', name: 'Bob', age: 25, active: false, joined: '2021-06-01T12:00:00.000Z', team: 'web' },
  { id: 'p3', name: 'Cy', age: 41, active: true, joined: '2019-03-03T03:03:03.003Z' },
  { id: 'p4', name: 'Di', age: 25, active: true, joined: '2022-12-31T23:59:59.999Z', team: 'core' },
  { id: 'p5', name: 'Ed', age: 30, active: false, joined: '2020-07-07T07:07:07.007Z', team: 'web' },
  { id: 'p6', name: 'Flo', age: 25, active: true, joined: '2023-02-02T02:02:02.002Z' },
];

let server;
before(async () => {
  server = await startServer({ schema: { collections } });
  await ok(server, '/bulk-insert?noReturn=true', { people: [...people].reverse() });
});
after(async () => {
  await server?.stop();
});

const q = (query, token) => call(server, '/fetch', { body: { query: { collectionName: 'people', ...query } }, token });
const ids = async (query) => {
  const res = await q(query);
  assert.equal(res.status, 200, res.text);
  return res.json.map((e) => e.id);
};

describe('POST /fetch', () => {
  it('returns every entity, serialized, in id order when there is no order', async () => {
    const res = await q({});
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json, people);
  });

  it('anyone with a valid token can read a collection without permissions', async () => {
    const res = await q({}, server.anonToken);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.length, people.length);
  });

  it('where: = != < <= > >= on strings, numbers and booleans', async () => {
    assert.deepEqual(await ids({ where: [['name', '=', 'Cy']] }), ['p3']);
    assert.deepEqual(await ids({ where: [['age', '=', 25]] }), ['p2', 'p4', 'p6']);
    assert.deepEqual(await ids({ where: [['age', '!=', 25]] }), ['p1', 'p3', 'p5']);
    assert.deepEqual(await ids({ where: [['age', '>', 30]] }), ['p1', 'p3']);
    assert.deepEqual(await ids({ where: [['age', '>=', 30]] }), ['p1', 'p3', 'p5']);
    assert.deepEqual(await ids({ where: [['age', '<', 30]] }), ['p2', 'p4', 'p6']);
    assert.deepEqual(await ids({ where: [['age', '<=', 30]] }), ['p2', 'p4', 'p5', 'p6']);
    assert.deepEqual(await ids({ where: [['name', '>', 'Di']] }), ['p5', 'p6']);
    assert.deepEqual(await ids({ where: [['active', '=', false]] }), ['p2', 'p5']);
  });

  it('where: in and nin', async () => {
    assert.deepEqual((await ids({ where: [['name', 'in', ['Bob', 'Ed', 'Zed']]] })).sort(), ['p2', 'p5']);
    assert.deepEqual((await ids({ where: [['age', 'nin', [25, 30]]] })).sort(), ['p1', 'p3']);
  });

  it('where: dates compare as ISO strings are sent', async () => {
    assert.deepEqual(await ids({ where: [['joined', '>', '2021-01-01T00:00:00.000Z']] }), ['p2', 'p4', 'p6']);
    assert.deepEqual(await ids({ where: [['joined', '=', '2019-03-03T03:03:03.003Z']] }), ['p3']);
  });

  it('where: several filters are AND-ed', async () => {
    assert.deepEqual(await ids({ where: [['age', '=', 25], ['active', '=', true]] }), ['p4', 'p6']);
    assert.deepEqual(await ids({ where: [['age', '=', 25], ['name', '=', 'Ada']] }), []);
  });

  it('where on an optional attribute: a missing value does not match a value', async () => {
    assert.deepEqual(await ids({ where: [['team', '=', 'core']] }), ['p1', 'p4']);
  });

  it('order: ASC, DESC, several keys, ties broken by id', async () => {
    assert.deepEqual(await ids({ order: [['age', 'ASC']] }), ['p2', 'p4', 'p6', 'p5', 'p1', 'p3']);
    assert.deepEqual(await ids({ order: [['age', 'DESC']] }), ['p3', 'p1', 'p5', 'p2', 'p4', 'p6']);
    assert.deepEqual(await ids({ order: [['age', 'ASC'], ['name', 'DESC']] }), ['p6', 'p4', 'p2', 'p5', 'p1', 'p3']);
    assert.deepEqual(await ids({ order: [['name', 'DESC']] }), ['p6', 'p5', 'p4', 'p3', 'p2', 'p1']);
    assert.deepEqual(await ids({ order: [['joined', 'ASC']] }), ['p3', 'p1', 'p5', 'p2', 'p4', 'p6']);
  });

  it('limit: with and without order, and limit 0', async () => {
    assert.deepEqual(await ids({ limit: 2 }), ['p1', 'p2']);
    assert.deepEqual(await ids({ order: [['age', 'DESC']], limit: 2 }), ['p3', 'p1']);
    assert.deepEqual(await ids({ where: [['active', '=', true]], order: [['joined', 'DESC']], limit: 3 }), ['p6', 'p4', 'p1']);
    assert.deepEqual(await ids({ limit: 100 }), people.map((p) => p.id));
    assert.deepEqual(await ids({ limit: 0 }), []);
  });

  it('select projects the listed attributes only (no implicit id)', async () => {
    const res = await q({ select: ['name'], order: [['name', 'ASC']], limit: 2 });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json, [{ name: 'Ada' }, { name: 'Bob' }]);
    const two = await q({ select: ['id', 'age'], where: [['id', '=', 'p5']] });
    assert.deepEqual(two.json, [{ id: 'p5', age: 30 }]);
  });

  it('an empty collection gives []', async () => {
    assert.deepEqual(await ok(server, '/fetch', { query: { collectionName: 'empty' } }), []);
  });

  it('a collection missing from the schema → 400 InvalidCollectionNameError', async () => {
    const res = await call(server, '/fetch', { body: { query: { collectionName: 'nobody' } } });
    const body = assertTriplitError(res, { status: 400, name: 'InvalidCollectionNameError' });
    assert.equal(body.baseMessage, 'nobody is not a valid collection name.');
  });

  it('a query without collectionName → 400 InvalidCollectionNameError', async () => {
    assertTriplitError(await call(server, '/fetch', { body: { query: { where: [] } } }), {
      status: 400,
      name: 'InvalidCollectionNameError',
    });
  });

  it('without a schema, an unknown collection is just empty', async () => {
    const free = await startServer();
    try {
      const res = await call(free, '/fetch', { body: { query: { collectionName: uniqueName('none') } }, token: free.anonToken });
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.json, []);
    } finally {
      await free.stop();
    }
  });
});

describe('HttpClient reads', () => {
  it('fetch with the query builder deserializes dates', async () => {
    const client = httpClient(server, { schema: collections });
    const rows = await client.fetch(client.query('people').Where('active', '=', true).Order('age', 'DESC').Limit(2));
    assert.deepEqual(
      rows.map((r) => r.id),
      ['p3', 'p1']
    );
    assert.ok(rows[0].joined instanceof Date);
    assert.equal(rows[0].joined.toISOString(), '2019-03-03T03:03:03.003Z');
  });

  it('fetchOne and fetchById; a missing id gives null', async () => {
    const client = httpClient(server, { schema: collections, token: server.anonToken });
    const one = await client.fetchOne(client.query('people').Where('name', '=', 'Ed'));
    assert.equal(one.id, 'p5');
    assert.equal((await client.fetchById('people', 'p2')).name, 'Bob');
    assert.equal(await client.fetchById('people', 'nobody'), null);
  });

  it('TriplitClient.http is an HttpClient on the same server', async () => {
    const { TriplitClient } = await import('@triplit/client');
    const client = new TriplitClient({ serverUrl: server.url, token: server.serviceToken, schema: collections, autoConnect: false });
    try {
      const rows = await client.http.fetch(client.query('people').Where('team', '=', 'web').Order('name', 'ASC'));
      assert.deepEqual(
        rows.map((r) => r.name),
        ['Bob', 'Ed']
      );
    } finally {
      client.disconnect?.();
    }
  });
});
