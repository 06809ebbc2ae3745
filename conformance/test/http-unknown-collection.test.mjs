// Inserting into a collection the schema does not define.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, target } from '../lib/server.mjs';
import { call } from '../lib/http.mjs';

const schema = {
  collections: {
    todos: {
      schema: { type: 'record', config: {}, properties: { id: { type: 'string', config: { nullable: false, default: { func: 'nanoid', args: null } } }, text: { type: 'string', config: {} } } },
    },
  },
};

describe('an insert into a collection missing from the schema', () => {
  let server;
  before(async () => {
    server = await startServer({ schema });
  });
  after(() => server.stop());

  it('is refused, and nothing is stored', async () => {
    const res = await call(server, '/insert', { body: { collectionName: 'zzz', entity: { id: 'a', x: 1 } } });
    if (target === 'reference') {
      // Upstream stores the entity, then crashes building the response
      // (docs/compatibility.md).
      assert.equal(res.status, 500);
      return;
    }
    assert.equal(res.status, 400);
    assert.equal(res.json.name, 'InvalidCollectionNameError');
    const bulk = await call(server, '/bulk-insert', { body: { todos: [{ id: 't1', text: 'ok' }], zzz: [{ id: 'b' }] } });
    assert.equal(bulk.status, 400);
    assert.equal(bulk.json.name, 'InvalidCollectionNameError');
    // The valid half of the rejected bulk insert was not stored either.
    const rows = await call(server, '/fetch', { body: { query: { collectionName: 'todos' } } });
    assert.deepEqual(rows.json, []);
  });
});
