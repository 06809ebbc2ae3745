// POST /schema and POST /override-schema (what `triplit schema push` uses).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Schema as S } from '@triplit/client';
import { startServer } from '../lib/server.mjs';
import { call, ok } from '../lib/http.mjs';
import { assertTriplitError } from '../lib/expect.mjs';

// The roles the server adds to a schema pushed without any.
const DEFAULT_ROLES = {
  anonymous: { match: { 'x-triplit-token-type': 'anon' } },
  authenticated: { match: { sub: '$sub' } },
};
const json = (v) => JSON.parse(JSON.stringify(v));

const todosV1 = S.Collections({ todos: { schema: S.Schema({ id: S.Id(), text: S.String() }) } });
const todosV2 = S.Collections({
  todos: { schema: S.Schema({ id: S.Id(), text: S.String(), n: S.Optional(S.Number()) }) },
});

async function withServer(fn, opts) {
  const srv = await startServer(opts);
  try {
    await fn(srv);
  } finally {
    await srv.stop();
  }
}
const push = (srv, schema, extra = {}) => call(srv, '/override-schema', { body: { schema, ...extra } });

describe('POST /schema', () => {
  it('schemaless: {type: "schemaless"}', () =>
    withServer(async (srv) => {
      const res = await call(srv, '/schema', { body: {} });
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.json, { type: 'schemaless' });
    }));

  it('with a schema: {type: "schema", schema}, also for {format: "json"} and without a body', () =>
    withServer(
      async (srv) => {
        const expected = { type: 'schema', schema: { collections: json(todosV1), roles: DEFAULT_ROLES } };
        assert.deepEqual(await ok(srv, '/schema', {}), expected);
        assert.deepEqual(await ok(srv, '/schema', { format: 'json' }), expected);
        const res = await call(srv, '/schema', {});
        assert.equal(res.status, 200);
        assert.deepEqual(res.json, expected);
      },
      { schema: { collections: todosV1 } }
    ));

  it('an unknown format → 400 TriplitError', () =>
    withServer(
      async (srv) => {
        assertTriplitError(await call(srv, '/schema', { body: { format: 'typescript' } }), {
          status: 400,
          name: 'TriplitError',
          bodyStatus: null,
          message: 'Invalid format',
        });
      },
      { schema: { collections: todosV1 } }
    ));
});

describe('POST /override-schema', () => {
  it('a first push succeeds, inserts DEFAULT_ROLES, and answers with the SchemaChange', () =>
    withServer(async (srv) => {
      const res = await push(srv, { collections: todosV1 }, { failOnBackwardsIncompatibleChange: false });
      assert.equal(res.status, 200, res.text);
      const change = res.json;
      assert.equal(change.successful, true);
      assert.equal(change.code, 'SUCCESS');
      assert.equal(typeof change.message, 'string');
      assert.deepEqual(change.issues, []);
      assert.ok(Array.isArray(change.diff));
      assert.deepEqual(change.newSchema, { collections: json(todosV1), roles: DEFAULT_ROLES });
      assert.deepEqual(await ok(srv, '/schema', {}), { type: 'schema', schema: change.newSchema });
    }));

  it('keeps the roles it is given', () =>
    withServer(async (srv) => {
      const roles = { admin: { match: { role: 'admin' } } };
      const res = await push(srv, { roles, collections: todosV1 });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.json.successful, true);
      assert.deepEqual(res.json.newSchema.roles, roles);
      assert.deepEqual((await ok(srv, '/schema', {})).schema.roles, roles);
    }));

  it('a compatible change succeeds and reports the old schema', () =>
    withServer(
      async (srv) => {
        await ok(srv, '/insert', { collectionName: 'todos', entity: { id: 't1', text: 'x' } });
        const res = await push(srv, { collections: todosV2 }, { failOnBackwardsIncompatibleChange: true });
        assert.equal(res.status, 200, res.text);
        assert.equal(res.json.successful, true);
        assert.equal(res.json.code, 'SUCCESS');
        assert.deepEqual(res.json.issues, []);
        assert.deepEqual(res.json.oldSchema, { collections: json(todosV1), roles: DEFAULT_ROLES });
        assert.deepEqual(res.json.newSchema, { collections: json(todosV2), roles: DEFAULT_ROLES });
        // The new attribute is usable and the old data is intact.
        await ok(srv, '/insert', { collectionName: 'todos', entity: { id: 't2', text: 'y', n: 2 } });
        assert.deepEqual(await ok(srv, '/fetch', { query: { collectionName: 'todos' } }), [
          { id: 't1', text: 'x' },
          { id: 't2', text: 'y', n: 2 },
        ]);
      },
      { schema: { collections: todosV1 } }
    ));

  it('pushing the same schema again succeeds', () =>
    withServer(
      async (srv) => {
        const res = await push(srv, { collections: todosV1 });
        assert.equal(res.status, 200, res.text);
        assert.equal(res.json.successful, true);
        assert.equal(res.json.code, 'SUCCESS');
        assert.deepEqual(res.json.issues, []);
      },
      { schema: { collections: todosV1 } }
    ));

  it('a backwards-incompatible change with failOnBackwardsIncompatibleChange → 200, SCHEMA_COMPATIBILITY_MISMATCH, schema unchanged', () =>
    withServer(
      async (srv) => {
        // A required attribute added to an (empty) collection is incompatible
        // for clients, but no data violates it.
        const required = S.Collections({ todos: { schema: S.Schema({ id: S.Id(), text: S.String(), m: S.Number() }) } });
        const res = await push(srv, { collections: required }, { failOnBackwardsIncompatibleChange: true });
        assert.equal(res.status, 200, res.text);
        assert.equal(res.json.successful, false);
        assert.equal(res.json.code, 'SCHEMA_COMPATIBILITY_MISMATCH');
        assert.ok(res.json.issues.length > 0);
        assert.deepEqual((await ok(srv, '/schema', {})).schema.collections, json(todosV1));
        // Without the flag the same change is accepted.
        const forced = await push(srv, { collections: required }, { failOnBackwardsIncompatibleChange: false });
        assert.equal(forced.json.successful, true, forced.text);
        assert.deepEqual((await ok(srv, '/schema', {})).schema.collections, json(required));
      },
      { schema: { collections: todosV1 } }
    ));

  it('a change that existing data violates → 200, EXISTING_DATA_MISMATCH, schema unchanged', () =>
    withServer(
      async (srv) => {
        await ok(srv, '/insert', { collectionName: 'todos', entity: { id: 't1', text: 'x' } });
        const retyped = S.Collections({ todos: { schema: S.Schema({ id: S.Id(), text: S.Number() }) } });
        const res = await push(srv, { collections: retyped });
        assert.equal(res.status, 200, res.text);
        assert.equal(res.json.successful, false);
        assert.equal(res.json.code, 'EXISTING_DATA_MISMATCH');
        assert.ok(res.json.issues.some((i) => i.violatesExistingData === true), JSON.stringify(res.json.issues));
        assert.deepEqual((await ok(srv, '/schema', {})).schema.collections, json(todosV1));
      },
      { schema: { collections: todosV1 } }
    ));

  it('an invalid schema → 200, SCHEMA_INVALID', () =>
    withServer(async (srv) => {
      for (const schema of [{ collections: { todos: { schema: { type: 'bogus' } } } }, { collections: 5 }, 5]) {
        const res = await push(srv, schema);
        assert.equal(res.status, 200, res.text);
        assert.equal(res.json.successful, false, JSON.stringify(schema));
        assert.equal(res.json.code, 'SCHEMA_INVALID', JSON.stringify(schema));
      }
      assert.deepEqual(await ok(srv, '/schema', {}), { type: 'schemaless' });
    }));

  it('the schema is enforced after a push', () =>
    withServer(async (srv) => {
      await ok(srv, '/insert', { collectionName: 'anything', entity: { id: 'a' } });
      const res = await push(srv, { collections: todosV1 });
      assert.equal(res.json.successful, true, res.text);
      assertTriplitError(await call(srv, '/insert', { body: { collectionName: 'todos', entity: { text: 1 } } }), {
        status: 400,
        name: 'DBSerializationError',
      });
      assertTriplitError(await call(srv, '/fetch', { body: { query: { collectionName: 'nope' } } }), {
        status: 400,
        name: 'InvalidCollectionNameError',
      });
    }));
});
