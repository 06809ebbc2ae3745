// POST /apply-changes ({changes: SuperJSON(DBChanges)}), the webhook stubs and
// POST /update-token.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import SuperJSON from 'superjson';
import { Schema as S } from '@triplit/client';
import { startServer } from '../lib/server.mjs';
import { call, ok } from '../lib/http.mjs';
import { assertTriplitError } from '../lib/expect.mjs';

const item = () =>
  S.Schema({
    id: S.Id(),
    text: S.String(),
    tags: S.Set(S.String()),
    at: S.Optional(S.Date()),
    meta: S.Optional(S.Record({ a: S.Number(), b: S.Optional(S.Number()) })),
  });
const collections = S.Collections({
  ac1: { schema: item() },
  ac2: { schema: item() },
  ac3: { schema: item() },
  ac4: { schema: item() },
  ac5: { schema: item() },
});

let server;
before(async () => {
  server = await startServer({ schema: { collections } });
});
after(async () => {
  await server?.stop();
});

/** DBChanges: { [collection]: { sets: Map<id, patch>, deletes: Set<id> } } */
const changes = (byCollection) =>
  Object.fromEntries(
    Object.entries(byCollection).map(([c, { sets = [], deletes = [] }]) => [c, { sets: new Map(sets), deletes: new Set(deletes) }])
  );
const apply = (byCollection, token) =>
  call(server, '/apply-changes', { body: { changes: SuperJSON.serialize(changes(byCollection)) }, token });
const all = (collectionName) => ok(server, '/fetch', { query: { collectionName } });

describe('POST /apply-changes', () => {
  it('inserts full entities in the encoded form and answers {}', async () => {
    const res = await apply({
      ac1: {
        sets: [
          ['a', { id: 'a', text: 'A', tags: { x: true, y: true }, at: '2024-01-01T00:00:00.000Z', meta: { a: 1 } }],
          ['b', { id: 'b', text: 'B', tags: {} }],
        ],
      },
    });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json, {});
    assert.deepEqual(await all('ac1'), [
      { id: 'a', text: 'A', tags: ['x', 'y'], at: '2024-01-01T00:00:00.000Z', meta: { a: 1 } },
      { id: 'b', text: 'B', tags: [] },
    ]);
  });

  it('merges patches into existing entities (set tombstones, nested records) and deletes', async () => {
    assert.equal((await apply({ ac2: { sets: [['a', { id: 'a', text: 'A', tags: { x: true, y: true }, meta: { a: 1 } }], ['b', { id: 'b', text: 'B', tags: {} }]] } })).status, 200);
    const res = await apply({ ac2: { sets: [['a', { text: 'A2', tags: { x: false, z: true }, meta: { b: 2 } }]], deletes: ['b'] } });
    assert.equal(res.status, 200, res.text);
    const rows = await all('ac2');
    assert.equal(rows.length, 1);
    assert.deepEqual({ ...rows[0], tags: rows[0].tags.sort() }, { id: 'a', text: 'A2', tags: ['y', 'z'], meta: { a: 1, b: 2 } });
  });

  it('covers several collections in one call', async () => {
    const res = await apply({
      ac3: { sets: [['m', { id: 'm', text: 'three', tags: {} }]] },
      ac4: { sets: [['n', { id: 'n', text: 'four', tags: { t: true } }]] },
    });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(await all('ac3'), [{ id: 'm', text: 'three', tags: [] }]);
    assert.deepEqual(await all('ac4'), [{ id: 'n', text: 'four', tags: ['t'] }]);
  });

  it('a patch without an id for an entity that does not exist is dropped', async () => {
    const res = await apply({ ac5: { sets: [['ghost', { text: 'no id' }]] } });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(await all('ac5'), []);
  });

  it('validates new entities against the schema: a missing required attribute → 400 DBSerializationError, and the whole batch is dropped', async () => {
    assert.equal((await apply({ ac5: { sets: [['keep', { id: 'keep', text: 'k', tags: {} }]] } })).status, 200);
    const res = await apply({ ac5: { sets: [['bad', { id: 'bad', text: 'no tags' }]], deletes: ['keep'] } });
    assertTriplitError(res, { status: 400, name: 'DBSerializationError' });
    assert.deepEqual(await all('ac5'), [{ id: 'keep', text: 'k', tags: [] }]);
  });

  it('a value of the wrong type → 400 DBSerializationError', async () => {
    assertTriplitError(await apply({ ac5: { sets: [['w', { id: 'w', text: 5, tags: {} }]] } }), {
      status: 400,
      name: 'DBSerializationError',
    });
  });

  it('empty changes are fine', async () => {
    assert.deepEqual(await ok(server, '/apply-changes', { changes: SuperJSON.serialize({}) }), {});
    assert.deepEqual(await ok(server, '/apply-changes', { changes: { json: {} } }), {});
  });
});

describe('webhooks stubs', () => {
  for (const [path, body] of [
    ['/webhooks-get', {}],
    ['/webhooks-push', { webhooks: [{ url: 'http://127.0.0.1:9/hook', collection: 'x' }] }],
    ['/webhooks-clear', {}],
  ]) {
    it(`${path} answers {} with the service token`, async () => {
      const res = await call(server, path, { body });
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.json, {});
    });
  }
});

describe('POST /update-token', () => {
  it('an unknown clientId → 400 TriplitError "No connection found for clientId"', async () => {
    for (const body of [{ clientId: 'no-such-client' }, {}]) {
      const res = await call(server, '/update-token', { body, token: server.anonToken });
      // The reference serializes a bare TriplitError, whose body `status` (500)
      // disagrees with the HTTP status; only the HTTP status is the contract.
      assertTriplitError(res, { status: 400, name: 'TriplitError', bodyStatus: null, message: 'No connection found for clientId' });
    }
  });

  it('verifies the new token first', async () => {
    assertTriplitError(await call(server, '/update-token', { body: { clientId: 'x' }, token: null }), {
      status: 401,
      name: 'NoTokenProvidedError',
    });
    assertTriplitError(await call(server, '/update-token', { body: { clientId: 'x' }, token: 'garbage' }), {
      status: 400,
      name: 'InvalidTokenPayloadError',
    });
  });
});
