// Malformed JSON bodies and arguments of the wrong type get TriplitError JSON.
//
// Where the reference's exact answer is an accident of its code (a generic
// 500 because `undefined.collections` threw), the test asserts only the
// shape both targets share: a TriplitError body with an error status. Where
// the reference answers with no JSON at all, the difference is an explicit
// branch (see docs/compatibility.md, "Malformed request bodies").
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Schema as S } from '@triplit/client';
import { startServer, target } from '../lib/server.mjs';
import { call } from '../lib/http.mjs';
import { assertTriplitError } from '../lib/expect.mjs';

const collections = S.Collections({ m: { schema: S.Schema({ id: S.Id(), s: S.String(), n: S.Optional(S.Number()) }) } });

let server;
before(async () => {
  server = await startServer({ schema: { collections } });
});
after(async () => {
  await server?.stop();
});

const json = { 'Content-Type': 'application/json' };
const malformed = ['{not json', '{"query": ', '[1, 2', 'undefined'];

/** A TriplitError JSON body whose `status` matches the HTTP status, which is an error. */
function assertSomeError(res) {
  const body = assertTriplitError(res, {});
  assert.ok(res.status >= 400 && res.status < 600, `an error status; got ${res.status}`);
  assert.equal(body.status, res.status, 'body status matches the HTTP status');
  return body;
}

describe('malformed JSON bodies', () => {
  // These routes parse the body leniently upstream (a parse failure leaves it
  // empty) and then fail on the missing arguments with a TriplitError.
  for (const path of ['/fetch', '/insert', '/update', '/delete', '/apply-changes']) {
    it(`${path} answers a TriplitError`, async () => {
      for (const raw of malformed) {
        assertSomeError(await call(server, path, { body: { raw }, headers: json }));
      }
    });
  }

  it('/override-schema answers an error with a name', async () => {
    // Upstream's body here is not even a well-formed TriplitError (its
    // baseMessage is an object), so only the name and an error status are asserted.
    for (const raw of malformed) {
      const res = await call(server, '/override-schema', { body: { raw }, headers: json });
      assert.ok(res.status >= 400 && res.status < 600, res.text);
      assert.equal(typeof res.json?.name, 'string', res.text);
    }
  });

  it('/insert, /update, /delete: an unparseable body → 400', async () => {
    // Upstream treats it as an empty body and so names the missing collection
    // (InvalidCollectionNameError); the name is that accident, the 400 is not.
    for (const path of ['/insert', '/update', '/delete']) {
      assertTriplitError(await call(server, path, { body: { raw: '{oops' }, headers: json }), { status: 400 });
    }
  });

  it('a body that is not JSON at all leaves the data untouched', async () => {
    await call(server, '/insert', { body: { raw: '{"collectionName":"m","entity":{"id":"safe","s":"x"' }, headers: json });
    const res = await call(server, '/fetch', { body: { query: { collectionName: 'm', where: [['id', '=', 'safe']] } } });
    assert.deepEqual(res.json, []);
  });

  // The bulk routes and /update-token parse strictly upstream, and a parse
  // error escapes as a plain-text 500.
  const strict = [
    ['/bulk-insert', () => ({ body: { raw: '{"m": [' }, headers: json })],
    [
      '/bulk-insert-file',
      () => {
        const form = new FormData();
        form.append('data', '{"m": [');
        return { body: { raw: form } };
      },
    ],
    ['/update-token', () => ({ body: { raw: '{clientId' }, headers: json, token: server.anonToken })],
  ];
  for (const [path, opts] of strict) {
    it(`${path} with a malformed body`, async () => {
      const res = await call(server, path, opts());
      if (target === 'reference') {
        // Upstream: unhandled SyntaxError → 500 "Internal server error" as text.
        // Ferry answers a 400 TriplitError instead (docs/compatibility.md).
        assert.equal(res.status, 500);
        assert.equal(res.text, 'Internal server error');
      } else {
        assertTriplitError(res, { status: 400 });
      }
    });
  }
});

describe('arguments of the wrong type', () => {
  it('/fetch: a query without collectionName → 400 InvalidCollectionNameError', async () => {
    for (const query of [{}, { where: [] }]) {
      assertTriplitError(await call(server, '/fetch', { body: { query } }), {
        status: 400,
        name: 'InvalidCollectionNameError',
      });
    }
  });

  it('/fetch: no query, or a query that is not an object → a TriplitError', async () => {
    assertSomeError(await call(server, '/fetch', { body: {} }));
    assertSomeError(await call(server, '/fetch', { body: { query: 5 } }));
  });

  it('/insert: entity missing, null or not an object → 400 InvalidInsertDocumentError', async () => {
    for (const entity of [undefined, null, 5, 'text', [1, 2]]) {
      assertTriplitError(await call(server, '/insert', { body: { collectionName: 'm', entity } }), {
        status: 400,
        name: 'InvalidInsertDocumentError',
      });
    }
  });

  it('/insert, /update, /bulk-insert, /apply-changes: values of the wrong type → 400 DBSerializationError', async () => {
    const SJ = (await import('superjson')).default;
    const cases = [
      ['/insert', { collectionName: 'm', entity: { id: 'w1', s: { nested: true } } }],
      ['/insert', { collectionName: 'm', entity: { id: 'w2', s: 'ok', n: 'NaN' } }],
      ['/update', { collectionName: 'm', entityId: 'w1', changes: { s: [] } }],
      ['/bulk-insert', { m: [{ id: 'w3', s: false }] }],
      ['/apply-changes', { changes: SJ.serialize({ m: { sets: new Map([['w4', { id: 'w4', s: 1 }]]), deletes: new Set() } }) }],
    ];
    await call(server, '/insert', { body: { collectionName: 'm', entity: { id: 'w1', s: 'fine' } } });
    for (const [path, body] of cases) {
      const res = await call(server, path, { body });
      assertTriplitError(res, { status: 400, name: 'DBSerializationError' });
    }
  });

  it('/update: changes that are not an object → a TriplitError', async () => {
    await call(server, '/insert', { body: { collectionName: 'm', entity: { id: 'u1', s: 'fine' } } });
    for (const changes of [5, 'str']) {
      assertSomeError(await call(server, '/update', { body: { collectionName: 'm', entityId: 'u1', changes } }));
    }
  });

  it('/override-schema without a schema is rejected and changes nothing', async () => {
    const before = await call(server, '/schema', { body: {} });
    for (const body of [{}, { failOnBackwardsIncompatibleChange: true }]) {
      const res = await call(server, '/override-schema', { body });
      // Upstream crashes on `undefined.collections` (a generic 500 TriplitError);
      // answering like any other invalid schema (200, SCHEMA_INVALID) is as good.
      if (res.status === 200) {
        assert.equal(res.json?.successful, false, res.text);
        assert.equal(res.json.code, 'SCHEMA_INVALID', res.text);
      } else {
        assert.ok(res.status >= 400 && res.status < 600, res.text);
        assert.equal(typeof res.json?.name, 'string', res.text);
      }
    }
    assert.deepEqual((await call(server, '/schema', { body: {} })).json, before.json);
  });

  it('/override-schema with a schema that is not an object → 200, SCHEMA_INVALID', async () => {
    for (const schema of ['nope', 5, []]) {
      const bad = await call(server, '/override-schema', { body: { schema } });
      assert.equal(bad.status, 200, bad.text);
      assert.equal(bad.json.successful, false, JSON.stringify(schema));
      assert.equal(bad.json.code, 'SCHEMA_INVALID', JSON.stringify(schema));
    }
  });

  it('/apply-changes: changes that are not SuperJSON DBChanges → a TriplitError', async () => {
    for (const changes of [5, { json: { m: { sets: 'x', deletes: [] } } }]) {
      assertSomeError(await call(server, '/apply-changes', { body: { changes } }));
    }
  });
});
