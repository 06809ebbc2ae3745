// Data types over HTTP: the serialized form (sets as arrays, dates as ISO
// strings) in and out, and the encoded form in /update.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Schema as S } from '@triplit/client';
import { startServer } from '../lib/server.mjs';
import { call, ok, httpClient } from '../lib/http.mjs';

const collections = S.Collections({
  v: {
    schema: S.Schema({
      id: S.Id(),
      strs: S.Optional(S.Set(S.String())),
      nums: S.Optional(S.Set(S.Number())),
      bools: S.Optional(S.Set(S.Boolean())),
      dates: S.Optional(S.Set(S.Date())),
      tags: S.Set(S.String(), { default: S.Default.Set.empty() }),
      when: S.Optional(S.Date()),
      num: S.Optional(S.Number()),
      str: S.Optional(S.String()),
      data: S.Optional(S.Json()),
      rec: S.Optional(S.Record({ a: S.Optional(S.Number()), deep: S.Optional(S.Record({ b: S.Optional(S.String()) })) })),
    }),
  },
});

let server;
before(async () => {
  server = await startServer({ schema: { collections } });
});
after(async () => {
  await server?.stop();
});

let n = 0;
const nextId = () => `v${++n}`;
const insert = (entity) => ok(server, '/insert', { collectionName: 'v', entity });
const update = async (entityId, changes) => {
  const res = await call(server, '/update', { body: { collectionName: 'v', entityId, changes } });
  assert.equal(res.status, 200, res.text);
};
const get = async (id) => (await ok(server, '/fetch', { query: { collectionName: 'v', where: [['id', '=', id]] } }))[0];
const sorted = (a) => [...a].sort((x, y) => (String(x) < String(y) ? -1 : String(x) > String(y) ? 1 : 0));

describe('sets', () => {
  it('are inserted as arrays, stored, and fetched back as arrays of their items', async () => {
    const id = nextId();
    const e = await insert({
      id,
      strs: ['b', 'a', '10', '9', 'é'],
      nums: [3, 1, 0.1 + 0.2, 1e21, -5],
      bools: [true, false],
      dates: ['2024-01-01T00:00:00.000Z'],
    });
    for (const got of [e, await get(id)]) {
      // Item order is not part of the contract; clients build a Set.
      assert.deepEqual(sorted(got.strs), sorted(['b', 'a', '10', '9', 'é']));
      assert.deepEqual(sorted(got.nums), sorted([3, 1, 0.30000000000000004, 1e21, -5]));
      assert.deepEqual(sorted(got.bools), [false, true]);
      assert.deepEqual(got.dates, ['2024-01-01T00:00:00.000Z']);
      assert.deepEqual(got.tags, []);
    }
  });

  it('collapse duplicate items', async () => {
    const id = nextId();
    await insert({ id, strs: ['x', 'x', 'y'], nums: [1, 1, 1] });
    const e = await get(id);
    assert.deepEqual(sorted(e.strs), ['x', 'y']);
    assert.deepEqual(e.nums, [1]);
  });

  it('an empty array is an empty set', async () => {
    const id = nextId();
    await insert({ id, strs: [] });
    assert.deepEqual((await get(id)).strs, []);
  });

  it('update with {item: false} removes, {item: true} adds; removed items stay out', async () => {
    const id = nextId();
    await insert({ id, strs: ['a', 'b', 'c'], tags: ['t'] });
    await update(id, { strs: { b: false, d: true } });
    assert.deepEqual(sorted((await get(id)).strs), ['a', 'c', 'd']);
    await update(id, { strs: { a: false, c: false, d: false } });
    assert.deepEqual((await get(id)).strs, []);
    await update(id, { strs: { b: true } });
    assert.deepEqual((await get(id)).strs, ['b']);
    assert.deepEqual((await get(id)).tags, ['t']);
  });

  it('number, boolean and date items are keyed by their string form', async () => {
    const id = nextId();
    await insert({ id, nums: [1, 0.1 + 0.2, 1e21], bools: [true, false], dates: ['2024-01-01T00:00:00.000Z', '2025-01-01T00:00:00.000Z'] });
    await update(id, {
      nums: { '0.30000000000000004': false, '1e+21': false, 2: true },
      bools: { false: false },
      dates: { '2024-01-01T00:00:00.000Z': false },
    });
    const e = await get(id);
    assert.deepEqual(sorted(e.nums), [1, 2]);
    assert.deepEqual(e.bools, [true]);
    assert.deepEqual(e.dates, ['2025-01-01T00:00:00.000Z']);
  });

  it('the HttpClient sends and receives them as Set objects', async () => {
    const client = httpClient(server, { schema: collections });
    const e = await client.insert('v', { strs: new Set(['p', 'q']), nums: new Set([4, 2]) });
    assert.ok(e.strs instanceof Set && e.nums instanceof Set);
    await client.update('v', e.id, (x) => {
      x.strs.delete('p');
      x.nums.add(8);
    });
    const back = await client.fetchById('v', e.id);
    assert.deepEqual([...back.strs], ['q']);
    assert.deepEqual(sorted([...back.nums]), [2, 4, 8]);
  });
});

describe('dates', () => {
  it('an ISO string round-trips exactly', async () => {
    const id = nextId();
    const e = await insert({ id, when: '2024-02-29T23:59:59.999Z' });
    assert.equal(e.when, '2024-02-29T23:59:59.999Z');
    assert.equal((await get(id)).when, '2024-02-29T23:59:59.999Z');
  });

  it('other inputs are normalized to toISOString() form', async () => {
    const cases = [
      ['2024-06-01T12:00:00+02:00', '2024-06-01T10:00:00.000Z'],
      ['2024-06-01T12:00:00.123456Z', '2024-06-01T12:00:00.123Z'],
      ['2025-05-05', '2025-05-05T00:00:00.000Z'],
      [1700000000000, '2023-11-14T22:13:20.000Z'],
    ];
    for (const [input, expected] of cases) {
      const id = nextId();
      const e = await insert({ id, when: input });
      assert.equal(e.when, expected, JSON.stringify(input));
      assert.equal((await get(id)).when, expected, JSON.stringify(input));
    }
  });

  it('the HttpClient gets Date objects back', async () => {
    const client = httpClient(server, { schema: collections });
    const when = new Date('1999-12-31T23:59:59.000Z');
    const e = await client.insert('v', { when });
    assert.ok(e.when instanceof Date);
    assert.equal((await client.fetchById('v', e.id)).when.getTime(), when.getTime());
  });
});

describe('json', () => {
  it('round-trips arbitrary JSON', async () => {
    const id = nextId();
    const data = { u: '😀 zé', n: -0.5, big: 9007199254740991, deep: [[{ x: null }], []], e: {}, t: true, s: 'line\nbreak "quoted"' };
    assert.deepEqual((await insert({ id, data })).data, data);
    assert.deepEqual((await get(id)).data, data);
  });

  it('objects deep-merge, arrays and scalars replace', async () => {
    const id = nextId();
    await insert({ id, data: { a: { b: 1, c: [1, 2] }, d: 'x' } });
    await update(id, { data: { a: { c: [3], e: { f: 1 } } } });
    assert.deepEqual((await get(id)).data, { a: { b: 1, c: [3], e: { f: 1 } }, d: 'x' });
    await update(id, { data: { a: 7 } });
    assert.deepEqual((await get(id)).data, { a: 7, d: 'x' });
  });

  it('a scalar or an array value is replaced by whatever comes next', async () => {
    const id = nextId();
    await insert({ id, data: 5 });
    await update(id, { data: { a: 1 } });
    assert.deepEqual((await get(id)).data, { a: 1 });
    await update(id, { data: [1, 2] });
    assert.deepEqual((await get(id)).data, [1, 2]);
    await update(id, { data: 'str' });
    assert.deepEqual((await get(id)).data, 'str');
  });
});

describe('records, strings and numbers', () => {
  it('records merge at every depth', async () => {
    const id = nextId();
    await insert({ id, rec: { a: 1 } });
    await update(id, { rec: { deep: { b: 'x' } } });
    assert.deepEqual((await get(id)).rec, { a: 1, deep: { b: 'x' } });
  });

  it('strings and numbers keep their exact values', async () => {
    const id = nextId();
    const str = '😀 zé \u0000 \t "q" \\ end';
    await insert({ id, str, num: 0.1 + 0.2 });
    const e = await get(id);
    assert.equal(e.str, str);
    assert.equal(e.num, 0.30000000000000004);
    const id2 = nextId();
    await insert({ id: id2, num: -1e-7 });
    assert.equal((await get(id2)).num, -1e-7);
  });
});
