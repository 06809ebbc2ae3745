// Schema changes while clients are connected (issue #6: "schema changes
// reach connected clients; no stale sessions").
//
// What upstream 1.1.8 does (server-core sync-connection.ts / triplit-server.ts,
// db.ts updateSchema), all pinned below against the reference:
//  - the schema is readable as the entity `_metadata/_schema`
//    ({id: '_schema', collections, roles}) over /fetch;
//  - a `syncSchema: true` client subscribes to `_metadata` where id = '_schema';
//    upstream answers that CONNECT_QUERY with a QuerySyncError
//    (InvalidFilterError: 'id' is not in the schema) whenever the server has a
//    schema, and `updateSchema` bypasses its IVM, so the subscription never
//    sees a schema change either;
//  - on /override-schema nothing happens to open sockets (the close of
//    connected clients is commented out in triplit-server.ts): open
//    subscriptions keep the read permissions and roles they were prepared
//    with, so a tightened read permission keeps delivering rows the session
//    may no longer read, until the client reconnects.
//
// Ferry (docs/compatibility.md, "Deliberate differences"): the syncSchema
// subscription gets the schema entity and every later change live; open
// subscriptions move to the new schema at once (rows no longer readable are
// evicted, newly readable ones sent, a query the new schema rejects gets a
// QuerySyncError); a session admitted by a client schema hash that a
// backwards-incompatible change made unknown is closed with a retryable
// close, so the client goes through the handshake again.
import {
  createClient,
  closeClients,
  waitFor,
  openRaw,
  closeRaws,
  RawSocket,
  changesMessage,
  decodeChanges,
  subscribeFulfilled,
  localRows,
  closeReason,
  canon,
} from '../lib/sync.mjs';
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { Schema as S } from '@triplit/client';
import { startServer, target } from '../lib/server.mjs';
import { ok } from '../lib/http.mjs';
import { signToken } from '../lib/tokens.mjs';

const roles = { user: { match: { sub: '$userId' } } };
const mine = ['ownerId', '=', '$role.userId'];

/** A todos schema with `read` as the user's read filter (and optionally more attributes / collections). */
function todosSchema({ read = [true], extra = {}, more = {} } = {}) {
  return {
    roles,
    collections: S.Collections({
      todos: {
        schema: S.Schema({ id: S.Id(), text: S.String(), ownerId: S.String(), ...extra }),
        permissions: { user: { read: { filter: read }, insert: { filter: [true] } } },
      },
      ...more,
    }),
  };
}

const servers = [];
async function server(schema) {
  const s = await startServer(schema ? { schema } : {});
  servers.push(s);
  return s;
}
after(async () => {
  await closeClients();
  await closeRaws();
  await Promise.all(servers.map((s) => s.stop()));
});

async function override(srv, schema, failOnBackwardsIncompatibleChange = false) {
  const change = await ok(srv, '/override-schema', { schema, failOnBackwardsIncompatibleChange });
  assert.equal(change.code, 'SUCCESS', JSON.stringify(change));
  return change;
}

/** The server's schema as /schema returns it, JSON-normalized. */
async function remoteSchema(srv) {
  const r = await ok(srv, '/schema', { format: 'json' });
  return JSON.parse(JSON.stringify(r.schema));
}

const metaQuery = { collectionName: '_metadata', where: [['id', '=', '_schema']] };

/** The ENTITY_DATA messages (of a raw socket or client wire) carrying `_metadata/_schema`. */
function schemaFrames(messages) {
  return messages.filter((m) => m.type === 'ENTITY_DATA' && decodeChanges(m.payload)._metadata?.sets.has('_schema'));
}

describe('the schema as the _metadata/_schema entity', () => {
  it('/fetch of _metadata returns it: {id: "_schema", collections, roles}', async () => {
    const srv = await server(todosSchema());
    const rows = await ok(srv, '/fetch', { query: { collectionName: '_metadata' } });
    assert.equal(rows.length, 1);
    const { id, ...schema } = rows[0];
    assert.equal(id, '_schema');
    assert.deepEqual(canon(schema), canon(await remoteSchema(srv)));
    // Also for a user token: _metadata has no permissions.
    const asUser = await ok(srv, '/fetch', { query: { collectionName: '_metadata' } }, signToken({ sub: 'alice' }));
    assert.deepEqual(asUser.map((r) => r.id), ['_schema']);
  });

  it('a syncSchema client receives it (upstream: QuerySyncError for the filter on id)', async () => {
    const srv = await server(todosSchema());
    const client = createClient(srv, { token: signToken({ sub: 'alice' }), syncSchema: true });
    if (target === 'reference') {
      // Upstream bug: prepareQuery validates `id` against the server schema,
      // where _metadata is not a collection.
      const err = await waitFor(() => client.wire.received.find((m) => m.type === 'ERROR'), { message: 'ERROR' });
      assert.equal(err.payload.error.name, 'QuerySyncError');
      assert.equal(err.payload.metadata.innerError.name, 'InvalidFilterError');
      return;
    }
    const doc = await waitFor(async () => (await localRows(client, client.query('_metadata')))[0], {
      message: 'the _schema entity in the client cache',
    });
    const { id, ...schema } = doc;
    assert.equal(id, '_schema');
    assert.deepEqual(canon(schema), canon(await remoteSchema(srv)));
    assert.ok(!client.wire.received.some((m) => m.type === 'ERROR'));
  });

  it('the subscription follows /override-schema live, removals included (upstream: never updated)', async () => {
    // A schemaless server, where upstream accepts the subscription too.
    const srv = await server();
    const raw = await openRaw(srv);
    raw.send({ type: 'CONNECT_QUERY', payload: { id: 'meta', params: metaQuery } });
    const first = await raw.next((m) => m.type === 'ENTITY_DATA' && m.payload.forQueries.includes('meta'));
    assert.equal(decodeChanges(first.payload)._metadata.sets.size, 0, 'schemaless: nothing yet');
    raw.send({ type: 'CONNECT_QUERY', payload: { id: 'todos', params: { collectionName: 'todos' } } });
    await raw.next((m) => m.type === 'ENTITY_DATA' && m.payload.forQueries.includes('todos'));

    const v1 = todosSchema({ extra: { note: S.Optional(S.String()) } });
    await override(srv, v1);
    if (target === 'reference') {
      // A later write is the sentinel: its ENTITY_DATA comes after anything
      // the schema change could have caused.
      await ok(srv, '/insert', { collectionName: 'todos', entity: { id: 's1', text: 's', ownerId: 'x' } });
      await raw.next((m) => m.type === 'ENTITY_DATA' && decodeChanges(m.payload).todos?.sets.has('s1'));
      assert.equal(schemaFrames(raw.messages).length, 0, 'upstream never sends the new schema');
      return;
    }
    const got = await raw.next((m) => schemaFrames([m]).length > 0, { timeout: 10_000 });
    const changes = decodeChanges(got.payload);
    const { id, ...schema } = changes._metadata.sets.get('_schema');
    assert.equal(id, '_schema');
    assert.deepEqual(canon(schema), canon(await remoteSchema(srv)));
    assert.ok(changes._metadata.deletes.has('_schema'), 'sent as a replacement (delete + set), not a patch');

    // Removing an (empty) optional attribute: the client's copy must lose it.
    const client = createClient(srv, { syncSchema: true });
    const cached = async () => (await localRows(client, client.query('_metadata')))[0];
    await waitFor(async () => (await cached())?.collections?.todos?.schema?.properties?.note, { message: 'v1 cached' });
    await override(srv, todosSchema());
    await waitFor(
      async () => {
        const doc = await cached();
        assert.ok(doc?.collections?.todos, 'still has todos');
        assert.equal(doc.collections.todos.schema.properties.note, undefined, 'note removed from the cached schema');
        return true;
      },
      { timeout: 10_000, message: 'v2 cached' }
    );
  });
});

describe('open subscriptions after a permission change', () => {
  it('a tightened read permission evicts rows and stops delivering them (upstream: keeps the old permission)', async () => {
    const srv = await server(todosSchema());
    await ok(srv, '/bulk-insert', {
      todos: [
        { id: 'a1', text: 'alice', ownerId: 'alice' },
        { id: 'b1', text: 'bob', ownerId: 'bob' },
      ],
    });
    const alice = createClient(srv, { token: signToken({ sub: 'alice' }) });
    const sub = await subscribeFulfilled(alice, alice.query('todos'));
    const ids = () => sub.results().map((e) => e.id).sort().join(',');
    assert.equal(ids(), 'a1,b1');

    await override(srv, todosSchema({ read: [mine] }));
    await ok(srv, '/insert', { collectionName: 'todos', entity: { id: 'b2', text: 'bob', ownerId: 'bob' } });
    await ok(srv, '/insert', { collectionName: 'todos', entity: { id: 'a2', text: 'alice', ownerId: 'alice' } });
    // a2 (readable either way) is the sentinel for b2.
    await waitFor(() => ids().includes('a2'), { timeout: 10_000, message: 'a2 delivered' });
    if (target === 'reference') {
      await waitFor(() => ids() === 'a1,a2,b1,b2', { message: 'upstream keeps the old permission' });
    } else {
      await waitFor(() => ids() === 'a1,a2', { timeout: 10_000, message: 'only alice rows' });
      assert.equal(await alice.fetchById('todos', 'b1', { policy: 'local-only' }), null, 'b1 evicted from the cache');
      assert.equal(await alice.fetchById('todos', 'b2', { policy: 'local-only' }), null, 'b2 never delivered');
    }
    // A query connected after the change uses the new schema on both.
    const fresh = createClient(srv, { token: signToken({ sub: 'alice' }) });
    const sub2 = await subscribeFulfilled(fresh, fresh.query('todos'));
    assert.deepEqual(sub2.results().map((e) => e.id).sort(), ['a1', 'a2']);
  });

  it('a loosened read permission delivers the rows now readable (upstream: not until reconnect)', async () => {
    const srv = await server(todosSchema({ read: [mine] }));
    await ok(srv, '/bulk-insert', {
      todos: [
        { id: 'a1', text: 'alice', ownerId: 'alice' },
        { id: 'b1', text: 'bob', ownerId: 'bob' },
      ],
    });
    const alice = createClient(srv, { token: signToken({ sub: 'alice' }) });
    const sub = await subscribeFulfilled(alice, alice.query('todos'));
    const ids = () => sub.results().map((e) => e.id).sort().join(',');
    assert.equal(ids(), 'a1');
    await override(srv, todosSchema());
    await ok(srv, '/insert', { collectionName: 'todos', entity: { id: 'a2', text: 'alice', ownerId: 'alice' } });
    if (target === 'reference') {
      await waitFor(() => ids() === 'a1,a2', { timeout: 10_000, message: 'a2 delivered' });
      assert.equal(await alice.fetchById('todos', 'b1', { policy: 'local-only' }), null, 'upstream: b1 not sent');
    } else {
      await waitFor(() => ids() === 'a1,a2,b1', { timeout: 10_000, message: 'b1 delivered' });
    }
  });

  it('roles removed from the schema stop applying to the open session', async () => {
    const srv = await server(todosSchema());
    await ok(srv, '/insert', { collectionName: 'todos', entity: { id: 'a1', text: 'alice', ownerId: 'alice' } });
    const alice = createClient(srv, { token: signToken({ sub: 'alice' }) });
    const sub = await subscribeFulfilled(alice, alice.query('todos'));
    assert.deepEqual(sub.results().map((e) => e.id), ['a1']);
    // The role now needs a claim alice's token does not carry: she has no
    // role, so the permissions grant her nothing.
    const next = todosSchema();
    next.roles = { user: { match: { sub: '$userId', team: 'core' } } };
    await override(srv, next);
    await ok(srv, '/insert', { collectionName: 'todos', entity: { id: 'a2', text: 'alice', ownerId: 'alice' } });
    if (target === 'reference') {
      await waitFor(() => sub.results().length === 2, { timeout: 10_000, message: 'upstream: old roles still apply' });
    } else {
      await waitFor(() => sub.results().length === 0, { timeout: 10_000, message: 'a1 evicted' });
      // a2 went out to nobody: a fresh query with the service token sees it.
      assert.equal((await ok(srv, '/fetch', { query: { collectionName: 'todos' } })).length, 2);
      assert.equal(await alice.fetchById('todos', 'a2', { policy: 'local-only' }), null);
    }
  });

  it('a live query the new schema rejects gets a QuerySyncError (upstream: keeps running)', async () => {
    const srv = await server(todosSchema({ extra: { note: S.Optional(S.String()) } }));
    const raw = await openRaw(srv);
    raw.send({ type: 'CONNECT_QUERY', payload: { id: 'bynote', params: { collectionName: 'todos', where: [['note', '=', 'x']] } } });
    await raw.next((m) => m.type === 'ENTITY_DATA' && m.payload.forQueries.includes('bynote'));
    raw.send({ type: 'CONNECT_QUERY', payload: { id: 'all', params: { collectionName: 'todos' } } });
    await raw.next((m) => m.type === 'ENTITY_DATA' && m.payload.forQueries.includes('all'));
    await override(srv, todosSchema()); // drops `note` (no data: allowed)
    await ok(srv, '/insert', { collectionName: 'todos', entity: { id: 's1', text: 's', ownerId: 'x' } });
    await raw.next((m) => m.type === 'ENTITY_DATA' && decodeChanges(m.payload).todos?.sets.has('s1'), { timeout: 10_000 });
    const errors = raw.all('ERROR');
    if (target === 'reference') {
      assert.deepEqual(errors, []);
    } else {
      assert.equal(errors.length, 1, JSON.stringify(errors));
      assert.equal(errors[0].payload.messageType, 'CONNECT_QUERY');
      assert.equal(errors[0].payload.error.name, 'QuerySyncError');
      assert.equal(errors[0].payload.metadata.queryKey, 'bynote');
      assert.equal(errors[0].payload.metadata.innerError.name, 'InvalidFilterError');
    }
    assert.ok(raw.isOpen);
    await raw.roundTrip();
  });
});

describe('sessions admitted by a client schema hash', () => {
  /** A raw socket that connects with ?schema=<hash> and answers SCHEMA_REQUEST with `schema`. */
  async function hashSocket(srv, hash, schema) {
    const params = new URLSearchParams({ schema: String(hash), 'sync-schema': 'false', token: srv.serviceToken });
    const raw = new RawSocket(`${srv.url.replace(/^http/, 'ws')}?${params}`);
    await raw.opened;
    const first = await raw.next((m) => m.type === 'READY' || m.type === 'SCHEMA_REQUEST' || m.type === 'CLOSE');
    if (first.type === 'SCHEMA_REQUEST') {
      raw.send({ type: 'SCHEMA_RESPONSE', payload: { schema: JSON.parse(JSON.stringify(schema)) } });
      raw.answer = await raw.next((m) => m.type === 'READY' || m.type === 'CLOSE');
    } else {
      raw.answer = first;
    }
    return raw;
  }

  it('a backwards-compatible change keeps them open', async () => {
    const v0 = todosSchema();
    const srv = await server(v0);
    const raw = await hashSocket(srv, 4242, v0);
    assert.equal(raw.answer.type, 'READY');
    await override(srv, todosSchema({ extra: { note: S.Optional(S.String()) } }), true);
    await ok(srv, '/insert', { collectionName: 'todos', entity: { id: 'x1', text: 'x', ownerId: 'x' } });
    await raw.roundTrip();
    assert.deepEqual(raw.all('CLOSE'), []);
    assert.ok(raw.isOpen);
    raw.close();
  });

  it('a backwards-incompatible change sends them through the handshake again (upstream: stays open)', async () => {
    const v0 = todosSchema();
    const srv = await server(v0);
    const raw = await hashSocket(srv, 4343, v0);
    assert.equal(raw.answer.type, 'READY');
    // A new required attribute on an empty collection: allowed, but a
    // backwards-incompatible edit for clients on v0.
    const change = await override(srv, todosSchema({ extra: { due: S.String() } }));
    assert.ok(change.issues.length > 0);
    if (target === 'reference') {
      await raw.roundTrip();
      assert.deepEqual(raw.all('CLOSE'), []);
      raw.close();
    } else {
      const closeMsg = await raw.next('CLOSE', { timeout: 10_000 }).catch(() => raw.all('CLOSE')[0]);
      assert.equal(closeMsg.payload.type, 'SCHEMA_CHANGED');
      assert.equal(closeMsg.payload.retry, true);
      const closed = await raw.closedEvent;
      assert.equal(closed.code, 1012);
      assert.deepEqual(closeReason(closed), { type: 'SCHEMA_CHANGED', retry: true });
    }
    // Reconnecting (on both) with the old schema: the hash is unknown now, the
    // handshake compares the schemas and refuses.
    const again = await hashSocket(srv, 4343, v0);
    assert.equal(again.answer.type, 'CLOSE');
    assert.equal(again.answer.payload.type, 'SCHEMA_MISMATCH');
    again.close();
  });
});

describe('the stored schema is protected', () => {
  it('CHANGES cannot write _metadata/_schema, not even with the service token (upstream: stored)', async () => {
    const srv = await server(todosSchema());
    const before = await remoteSchema(srv);
    const raw = await openRaw(srv);
    raw.send(changesMessage({ _metadata: { sets: [['_schema', { id: '_schema', collections: {} }]] } }));
    const answer = await raw.next((m) => m.type === 'CHANGES_ACK' || m.type === 'ERROR');
    if (target === 'reference') {
      assert.equal(answer.type, 'CHANGES_ACK');
    } else {
      assert.equal(answer.type, 'ERROR');
      assert.equal(answer.payload.error.name, 'WritePermissionError');
      assert.deepEqual(await remoteSchema(srv), before);
      const rows = await ok(srv, '/fetch', { query: { collectionName: '_metadata' } });
      assert.deepEqual(canon(rows[0].collections), canon(before.collections));
    }
  });
});
