// POST /bulk-insert and POST /bulk-insert-file (what HttpClient.bulkInsert and
// `triplit seed` use).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Schema as S } from '@triplit/client';
import { startServer } from '../lib/server.mjs';
import { call, ok, httpClient, uniqueName } from '../lib/http.mjs';
import { assertTriplitError, NANOID, ISO_DATE, byId } from '../lib/expect.mjs';

const item = () =>
  S.Schema({
    id: S.Id(),
    name: S.String(),
    qty: S.Number({ default: 1 }),
    at: S.Date({ default: S.Default.now() }),
    labels: S.Set(S.String(), { default: S.Default.Set.empty() }),
  });
const collections = S.Collections({
  a1: { schema: item() },
  a2: { schema: item() },
  b1: { schema: item() },
  b2: { schema: item() },
  c1: { schema: item() },
  f1: { schema: item() },
  f2: { schema: item() },
  f3: { schema: item() },
  h1: { schema: item() },
  h2: { schema: item() },
});

let server;
before(async () => {
  server = await startServer({ schema: { collections } });
});
after(async () => {
  await server?.stop();
});

const fetchAll = (collectionName) => ok(server, '/fetch', { query: { collectionName } });

function multipart(value, { asJsonFile = false, field = 'data' } = {}) {
  const form = new FormData();
  if (asJsonFile) form.append(field, new Blob([value], { type: 'application/json' }), 'data.json');
  else form.append(field, value);
  return { raw: form };
}

describe('POST /bulk-insert', () => {
  it('inserts into several collections and returns the serialized entities with defaults, in order', async () => {
    const res = await call(server, '/bulk-insert', {
      body: {
        a1: [{ id: 'x1', name: 'one', labels: ['l'] }, { name: 'two' }],
        a2: [{ id: 'y1', name: 'three', qty: 9, at: '2022-01-01T00:00:00.000Z' }],
      },
    });
    assert.equal(res.status, 200, res.text);
    const { a1, a2, ...rest } = res.json;
    assert.deepEqual(rest, {});
    assert.equal(a1.length, 2);
    assert.deepEqual({ ...a1[0], at: undefined }, { id: 'x1', name: 'one', qty: 1, at: undefined, labels: ['l'] });
    assert.match(a1[0].at, ISO_DATE);
    assert.match(a1[1].id, NANOID);
    assert.equal(a1[1].name, 'two');
    assert.deepEqual(a1[1].labels, []);
    assert.deepEqual(a2, [{ id: 'y1', name: 'three', qty: 9, at: '2022-01-01T00:00:00.000Z', labels: [] }]);
    assert.deepEqual(byId(await fetchAll('a1')), byId(a1));
    assert.deepEqual(await fetchAll('a2'), a2);
  });

  it('?noReturn=true answers {} and still inserts', async () => {
    const res = await call(server, '/bulk-insert?noReturn=true', { body: { b1: [{ id: 'n1', name: 'n' }, { id: 'n2', name: 'm' }] } });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json, {});
    assert.deepEqual((await fetchAll('b1')).map((e) => e.id).sort(), ['n1', 'n2']);
  });

  it('?noReturn=false returns the entities', async () => {
    const res = await call(server, '/bulk-insert?noReturn=false', { body: { b2: [{ id: 'r1', name: 'r' }] } });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(Object.keys(res.json), ['b2']);
    assert.equal(res.json.b2[0].id, 'r1');
  });

  it('is one transaction: one bad entity → 400 DBSerializationError and nothing is inserted', async () => {
    const res = await call(server, '/bulk-insert', {
      body: { c1: [{ id: 'ok1', name: 'fine' }, { id: 'bad', name: 42 }] },
    });
    assertTriplitError(res, { status: 400, name: 'DBSerializationError' });
    assert.deepEqual(await fetchAll('c1'), []);
  });

  it('an empty object inserts nothing and answers {}', async () => {
    assert.deepEqual(await ok(server, '/bulk-insert', {}), {});
  });

  it('works without a schema, with the anon token', async () => {
    const free = await startServer();
    try {
      const c = uniqueName('free');
      const res = await call(free, '/bulk-insert', { body: { [c]: [{ id: 'a', v: [1, 2] }, { v: { n: null } }] }, token: free.anonToken });
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.json[c][0], { id: 'a', v: [1, 2] });
      assert.match(res.json[c][1].id, NANOID);
      assert.deepEqual(res.json[c][1].v, { n: null });
      assert.equal((await ok(free, '/fetch', { query: { collectionName: c } })).length, 2);
    } finally {
      await free.stop();
    }
  });
});

describe('POST /bulk-insert-file', () => {
  it('reads the JSON from the multipart field "data"', async () => {
    const payload = JSON.stringify({ f1: [{ id: 'p1', name: 'file' }] });
    const res = await call(server, '/bulk-insert-file', { body: multipart(payload) });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(Object.keys(res.json), ['f1']);
    assert.equal(res.json.f1[0].id, 'p1');
    assert.equal(res.json.f1[0].qty, 1);
    assert.deepEqual(await fetchAll('f1'), res.json.f1);
  });

  it('also reads a "data" file part sent as application/json', async () => {
    const payload = JSON.stringify({ f2: [{ id: 'p2', name: 'json part' }] });
    const res = await call(server, '/bulk-insert-file', { body: multipart(payload, { asJsonFile: true }) });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.f2[0].name, 'json part');
  });

  it('?noReturn=true answers {}', async () => {
    const payload = JSON.stringify({ f3: [{ id: 'p3', name: 'quiet' }] });
    const res = await call(server, '/bulk-insert-file?noReturn=true', { body: multipart(payload) });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json, {});
    assert.equal((await fetchAll('f3')).length, 1);
  });

  it('without a "data" field → 400 TriplitError "No data provided for file upload"', async () => {
    const res = await call(server, '/bulk-insert-file', { body: multipart('{}', { field: 'other' }) });
    // The reference serializes a bare TriplitError here, so the body's `status`
    // field (500 upstream) is not part of the contract; the HTTP status is.
    assertTriplitError(res, { status: 400, name: 'TriplitError', bodyStatus: null, message: 'No data provided for file upload' });
  });

  it('is what HttpClient.bulkInsert uses: Sets and Dates survive the round trip', async () => {
    const client = httpClient(server, { schema: collections });
    const result = await client.bulkInsert({
      h1: [{ id: 'c1', name: 'client', labels: new Set(['p', 'q']), at: new Date('2023-05-06T07:08:09.010Z') }],
      h2: [{ name: 'no id' }],
    });
    assert.deepEqual(Object.keys(result).sort(), ['h1', 'h2']);
    const [e] = result.h1;
    assert.ok(e.labels instanceof Set);
    assert.deepEqual([...e.labels].sort(), ['p', 'q']);
    assert.equal(e.at.toISOString(), '2023-05-06T07:08:09.010Z');
    assert.match(result.h2[0].id, NANOID);
    const stored = await fetchAll('h1');
    assert.deepEqual(stored, [{ id: 'c1', name: 'client', qty: 1, at: '2023-05-06T07:08:09.010Z', labels: ['p', 'q'] }]);
  });

  it('HttpClient.bulkInsert surfaces a server error as a TriplitError', async () => {
    // No client schema, so the bad value reaches the server unchecked.
    const client = httpClient(server);
    await assert.rejects(client.bulkInsert({ h2: [{ id: 'z', name: 7 }] }), (e) => {
      assert.equal(e.name, 'DBSerializationError');
      assert.equal(e.status, 400);
      return true;
    });
  });
});
