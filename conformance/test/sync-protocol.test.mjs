// The WebSocket protocol frame by frame, with a raw socket speaking it by
// hand (triplit.md §1): the handshake, PING/PONG, error frames that leave the
// socket up, CHANGES → CHANGES_ACK → ENTITY_DATA, union eviction, one
// ENTITY_DATA per write across overlapping queries, DISCONNECT_QUERY,
// CHUNK reassembly across a split surrogate pair, the close echo, and
// CLOSE UNAUTHORIZED at connect.
import { openRaw, closeRaws, changesMessage, changedIds, decodeChanges, closeReason, waitFor, SuperJSON } from '../lib/sync.mjs';
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Schema as S } from '@triplit/client';
import { startServer } from '../lib/server.mjs';
import { ok } from '../lib/http.mjs';
import { signToken } from '../lib/tokens.mjs';

const collections = S.Collections({
  items: { schema: S.Schema({ id: S.Id(), n: S.Number(), label: S.Optional(S.String()) }) },
  other: { schema: S.Schema({ id: S.Id(), v: S.Number() }) },
});

let server;
before(async () => {
  server = await startServer({ schema: { collections } });
});
after(async () => {
  await closeRaws();
  await server?.stop();
});

let qseq = 0;
const qid = () => `q${++qseq}`;
const isTimestamp = (t) =>
  Array.isArray(t) && t.length === 3 && Number.isInteger(t[0]) && Number.isInteger(t[1]) && typeof t[2] === 'string';
const cmpTs = (a, b) => a[0] - b[0] || a[1] - b[1];

/** CONNECT_QUERY and wait for the ENTITY_DATA naming it. */
async function connectQuery(raw, params, id = qid()) {
  raw.send({ type: 'CONNECT_QUERY', payload: { id, params } });
  const msg = await raw.next((m) => m.type === 'ENTITY_DATA' && m.payload.forQueries.includes(id));
  return { id, msg };
}

/** Messages of `raw` (from index `from`) whose ENTITY_DATA mentions `collection`/`id`. */
function entityDataMentioning(raw, collection, id, from = 0) {
  return raw.messages.slice(from).filter((m) => {
    if (m.type !== 'ENTITY_DATA') return false;
    const c = changedIds(m)[collection];
    return c && (c.sets.includes(id) || c.deletes.includes(id));
  });
}

describe('handshake', () => {
  it('sends READY {clientId} unprompted, and a fresh clientId per socket', async () => {
    const a = await openRaw(server);
    const b = await openRaw(server);
    assert.equal(a.messages[0].type, 'READY', 'READY is the first message');
    assert.equal(typeof a.ready.payload.clientId, 'string');
    assert.ok(a.ready.payload.clientId.length > 0);
    assert.notEqual(a.ready.payload.clientId, b.ready.payload.clientId);
    await a.close();
    await b.close();
  });

  it('echoes the client close frame: 1000 with the MANUAL_DISCONNECT reason', async () => {
    const a = await openRaw(server);
    const reason = JSON.stringify({ type: 'MANUAL_DISCONNECT', retry: false });
    const closed = await a.close(1000, reason);
    assert.deepEqual(closed, { code: 1000, reason });
  });

  for (const [label, token] of [
    ['no token', null],
    ['an undecodable token', 'garbage'],
    ['a token signed with another secret', signToken({ sub: 'u1' }, { secret: 'not-the-secret' })],
    ['an expired token', signToken({ sub: 'u1', exp: Math.floor(Date.now() / 1000) - 10 })],
  ]) {
    it(`${label} → CLOSE UNAUTHORIZED, then close 1008 {"type":"UNAUTHORIZED","retry":false}`, async () => {
      const raw = await openRaw(server, { token, ready: false });
      const closed = await raw.closedEvent;
      assert.equal(closed.code, 1008);
      assert.deepEqual(closeReason(closed), { type: 'UNAUTHORIZED', retry: false });
      assert.deepEqual(
        raw.messages.map((m) => m.type),
        ['CLOSE'],
        'only the CLOSE message, no READY'
      );
      const { payload } = raw.messages[0];
      assert.equal(payload.type, 'UNAUTHORIZED');
      assert.equal(payload.retry, false);
    });
  }
});

describe('PING and error frames', () => {
  it('PING → PONG echoing clientTimestamp, with a numeric serverTimestamp', async () => {
    const raw = await openRaw(server);
    raw.send({ type: 'PING', payload: { clientTimestamp: 1234567 } });
    const pong = await raw.next('PONG');
    assert.equal(pong.payload.clientTimestamp, 1234567);
    assert.equal(typeof pong.payload.serverTimestamp, 'number');
    await raw.close();
  });

  it('malformed JSON → ERROR MalformedMessagePayloadError (no messageType), and the socket stays up', async () => {
    const raw = await openRaw(server);
    raw.send('{not json');
    const err = await raw.next('ERROR');
    assert.equal(err.payload.error.name, 'MalformedMessagePayloadError');
    assert.equal(err.payload.error.status, 400);
    assert.equal(err.payload.messageType, undefined);
    assert.equal(err.payload.metadata?.message, '{not json');
    await raw.roundTrip();
    assert.ok(raw.isOpen);
    await raw.close();
  });

  it('an unknown message type → ERROR UnrecognizedMessageTypeError naming it, and the socket stays up', async () => {
    const raw = await openRaw(server);
    raw.send({ type: 'FOO', payload: {} });
    const err = await raw.next('ERROR');
    assert.equal(err.payload.messageType, 'FOO');
    assert.equal(err.payload.error.name, 'UnrecognizedMessageTypeError');
    assert.equal(err.payload.error.status, 400);
    assert.equal(err.payload.error.message, 'Unrecognized message type: FOO.');
    await raw.roundTrip();
    assert.ok(raw.isOpen);
    await raw.close();
  });

  it('CONNECT_QUERY on an unknown collection → ERROR QuerySyncError with metadata.queryKey; other queries still sync', async () => {
    const raw = await openRaw(server);
    raw.send({ type: 'CONNECT_QUERY', payload: { id: 'qbad', params: { collectionName: 'nope' } } });
    const err = await raw.next('ERROR');
    assert.equal(err.payload.messageType, 'CONNECT_QUERY');
    assert.equal(err.payload.error.name, 'QuerySyncError');
    assert.equal(err.payload.metadata.queryKey, 'qbad');
    assert.equal(err.payload.metadata.innerError?.name, 'InvalidCollectionNameError');
    assert.equal(raw.all('ENTITY_DATA').length, 0, 'no ENTITY_DATA for the failed query');
    const { msg } = await connectQuery(raw, { collectionName: 'other' });
    assert.ok(msg);
    assert.ok(raw.isOpen);
    await raw.close();
  });
});

describe('subscriptions and writes', () => {
  it('a query over an empty result gets one ENTITY_DATA: empty root-collection entry, SuperJSON Map/Set, forQueries, timestamp', async () => {
    const raw = await openRaw(server);
    const { id, msg } = await connectQuery(raw, { collectionName: 'items', where: [['n', '=', -12345]] });
    assert.deepEqual(msg.payload.forQueries, [id]);
    assert.ok(isTimestamp(msg.payload.timestamp), `timestamp ${JSON.stringify(msg.payload.timestamp)}`);
    assert.deepEqual(msg.payload.changes.json.items, { sets: [], deletes: [] });
    assert.deepEqual(msg.payload.changes.meta.values['items.sets'], ['map']);
    assert.deepEqual(msg.payload.changes.meta.values['items.deletes'], ['set']);
    const decoded = decodeChanges(msg.payload);
    assert.ok(decoded.items.sets instanceof Map);
    assert.ok(decoded.items.deletes instanceof Set);
    await raw.close();
  });

  it('CHANGES → CHANGES_ACK {timestamp}, then ENTITY_DATA with the full entity; a patch comes back whole', async () => {
    const raw = await openRaw(server);
    const { id } = await connectQuery(raw, { collectionName: 'items', where: [['n', '>=', 100]] });
    raw.send(changesMessage({ items: { sets: [['w1', { id: 'w1', n: 100, label: 'first' }]] } }));
    const ack1 = await raw.next('CHANGES_ACK');
    assert.ok(isTimestamp(ack1.payload.timestamp));
    const ackIndex = raw.messages.indexOf(ack1);
    const data1 = await raw.next((m) => m.type === 'ENTITY_DATA' && changedIds(m).items?.sets.includes('w1'));
    assert.ok(raw.messages.indexOf(data1) > ackIndex, 'CHANGES_ACK comes before the ENTITY_DATA reflecting the write');
    assert.ok(data1.payload.forQueries.includes(id));
    assert.deepEqual(decodeChanges(data1.payload).items.sets.get('w1'), { id: 'w1', n: 100, label: 'first' });
    assert.ok(cmpTs(data1.payload.timestamp, ack1.payload.timestamp) >= 0, 'ENTITY_DATA timestamp ≥ the ACK timestamp');

    // A patch (no id) merges into the stored entity; the server sends the whole entity.
    raw.send(changesMessage({ items: { sets: [['w1', { n: 101 }]] } }));
    const ack2 = await raw.next('CHANGES_ACK');
    assert.ok(cmpTs(ack2.payload.timestamp, ack1.payload.timestamp) > 0, 'ACK timestamps increase');
    const data2 = await raw.next((m) => m.type === 'ENTITY_DATA' && changedIds(m).items?.sets.includes('w1'));
    assert.deepEqual(decodeChanges(data2.payload).items.sets.get('w1'), { id: 'w1', n: 101, label: 'first' });
    assert.deepEqual(await ok(server, '/fetch', { query: { collectionName: 'items', where: [['id', '=', 'w1']] } }), [
      { id: 'w1', n: 101, label: 'first' },
    ]);

    // A delete is sent as a delete.
    raw.send(changesMessage({ items: { deletes: ['w1'] } }));
    await raw.next('CHANGES_ACK');
    const data3 = await raw.next((m) => m.type === 'ENTITY_DATA' && changedIds(m).items?.deletes.includes('w1'));
    assert.ok(data3);
    await raw.close();
  });

  it('every CHANGES batch gets exactly one answer, in order, even for several batches sent back to back', async () => {
    const raw = await openRaw(server);
    for (let i = 0; i < 5; i++) raw.send(changesMessage({ other: { sets: [[`b${i}`, { id: `b${i}`, v: i }]] } }));
    await waitFor(() => raw.all('CHANGES_ACK').length >= 5, { message: 'five ACKs' });
    // (A PING may be answered before earlier batches are acknowledged, so the
    // round trip below only gives a sixth ACK time to show up.)
    await raw.roundTrip();
    assert.equal(raw.all('CHANGES_ACK').length, 5);
    assert.equal(raw.all('ERROR').length, 0);
    const stamps = raw.all('CHANGES_ACK').map((m) => m.payload.timestamp);
    for (let i = 1; i < stamps.length; i++) assert.ok(cmpTs(stamps[i], stamps[i - 1]) > 0, 'strictly increasing');
    const rows = await ok(server, '/fetch', { query: { collectionName: 'other', where: [['id', 'in', ['b0', 'b1', 'b2', 'b3', 'b4']]] } });
    assert.equal(rows.length, 5);
    await raw.close();
  });

  it('one write touching two overlapping queries → one ENTITY_DATA naming both queries', async () => {
    const raw = await openRaw(server);
    const { id: qa } = await connectQuery(raw, { collectionName: 'items', where: [['n', '>=', 500]] });
    const { id: qb } = await connectQuery(raw, { collectionName: 'items', where: [['n', '<', 600]] });
    const { id: qs } = await connectQuery(raw, { collectionName: 'other', where: [['v', '=', 500]] });
    const from = raw.messages.length;
    await ok(server, '/insert', { collectionName: 'items', entity: { id: 'ov1', n: 550 } });
    const first = await raw.next((m) => m.type === 'ENTITY_DATA' && changedIds(m).items?.sets.includes('ov1'));
    assert.ok(first.payload.forQueries.includes(qa) && first.payload.forQueries.includes(qb), JSON.stringify(first.payload.forQueries));
    assert.ok(!first.payload.forQueries.includes(qs));
    // A later write on a third query: once its ENTITY_DATA is here, any second
    // message about ov1 would have been sent too.
    await ok(server, '/insert', { collectionName: 'other', entity: { id: 'sentinel1', v: 500 } });
    await raw.next((m) => m.type === 'ENTITY_DATA' && changedIds(m).other?.sets.includes('sentinel1'));
    const mentions = entityDataMentioning(raw, 'items', 'ov1', from);
    assert.equal(mentions.length, 1, `ENTITY_DATA messages carrying ov1: ${JSON.stringify(mentions)}`);
    await raw.close();
  });

  it('an entity is evicted (sent as a delete) only when it leaves the union of the socket’s queries', async () => {
    const raw = await openRaw(server);
    await ok(server, '/insert', { collectionName: 'items', entity: { id: 'ev1', n: 700 } });
    await connectQuery(raw, { collectionName: 'items', where: [['n', '>=', 700]] }); // q high
    await connectQuery(raw, { collectionName: 'items', where: [['n', '>=', 650]] }); // q wide
    // 700 → 660: leaves "high", still in "wide": a set, no delete.
    await ok(server, '/update', { collectionName: 'items', entityId: 'ev1', changes: { n: 660 } });
    const upd = await raw.next((m) => m.type === 'ENTITY_DATA' && changedIds(m).items?.sets.includes('ev1'));
    assert.equal(decodeChanges(upd.payload).items.sets.get('ev1').n, 660);
    assert.ok(!changedIds(upd).items.deletes.includes('ev1'));
    // 660 → 1: leaves both: a delete (the entity still exists on the server).
    await ok(server, '/update', { collectionName: 'items', entityId: 'ev1', changes: { n: 1 } });
    const gone = await raw.next((m) => m.type === 'ENTITY_DATA' && changedIds(m).items?.deletes.includes('ev1'));
    assert.ok(!changedIds(gone).items.sets.includes('ev1'));
    assert.equal((await ok(server, '/fetch', { query: { collectionName: 'items', where: [['id', '=', 'ev1']] } })).length, 1);
    await raw.close();
  });

  it('after DISCONNECT_QUERY the server sends nothing more for that query, and no deletes', async () => {
    const raw = await openRaw(server);
    await ok(server, '/insert', { collectionName: 'items', entity: { id: 'dq1', n: 800 } });
    const { id } = await connectQuery(raw, { collectionName: 'items', where: [['n', '=', 800]] });
    assert.ok(changedIds(raw.all('ENTITY_DATA').at(-1)).items.sets.includes('dq1'));
    await connectQuery(raw, { collectionName: 'other', where: [['v', '=', 800]] });
    raw.send({ type: 'DISCONNECT_QUERY', payload: { id } });
    await raw.roundTrip();
    const from = raw.messages.length;
    await ok(server, '/update', { collectionName: 'items', entityId: 'dq1', changes: { n: 800, label: 'changed' } });
    await ok(server, '/insert', { collectionName: 'other', entity: { id: 'sentinel2', v: 800 } });
    await raw.next((m) => m.type === 'ENTITY_DATA' && changedIds(m).other?.sets.includes('sentinel2'));
    assert.deepEqual(entityDataMentioning(raw, 'items', 'dq1', from), []);
    for (const m of raw.messages.slice(from)) {
      if (m.type === 'ENTITY_DATA') assert.ok(!m.payload.forQueries.includes(id));
    }
    await raw.close();
  });
});

describe('CHUNK', () => {
  it('reassembles a CHANGES message split into chunks, one of which ends inside a surrogate pair', async () => {
    const raw = await openRaw(server);
    const label = 'start ' + '😀🧪'.repeat(300) + ' end';
    const message = changesMessage({ items: { sets: [['ch1', { id: 'ch1', n: 1, label }]] } });
    const text = JSON.stringify(message);
    // Split points: one right after a high surrogate (a lone \ud83d in the first chunk), two more evenly.
    const emoji = text.indexOf('😀');
    const cuts = [emoji + 1, Math.floor(text.length * 0.6), Math.floor(text.length * 0.8)];
    assert.ok(text.charCodeAt(cuts[0] - 1) >= 0xd800 && text.charCodeAt(cuts[0] - 1) <= 0xdbff);
    const pieces = [text.slice(0, cuts[0]), text.slice(cuts[0], cuts[1]), text.slice(cuts[1], cuts[2]), text.slice(cuts[2])];
    assert.equal(pieces.join(''), text);
    pieces.forEach((data, index) =>
      raw.send({ type: 'CHUNK', payload: { data, total: pieces.length, index, id: 'chunk-test-1' } })
    );
    // The first frame really carries a lone surrogate escape.
    assert.match(raw.sent.at(-pieces.length), /\\ud83d"/);
    const ack = await raw.next((m) => m.type === 'CHANGES_ACK' || m.type === 'ERROR');
    assert.equal(ack.type, 'CHANGES_ACK', JSON.stringify(ack));
    const rows = await ok(server, '/fetch', { query: { collectionName: 'items', where: [['id', '=', 'ch1']] } });
    assert.deepEqual(rows, [{ id: 'ch1', n: 1, label }]);
    await raw.close();
  });
});

describe('SuperJSON', () => {
  it('accepts CHANGES whose changes carry no meta when they have no Map/Set (an empty batch)', async () => {
    const raw = await openRaw(server);
    raw.send({ type: 'CHANGES', payload: { changes: SuperJSON.serialize({}) } });
    const answer = await raw.next((m) => m.type === 'CHANGES_ACK' || m.type === 'ERROR');
    assert.equal(answer.type, 'CHANGES_ACK', JSON.stringify(answer));
    await raw.close();
  });
});
