// Large writes: the published client splits any message over 512 KiB (UTF-8)
// into CHUNK messages, cutting the JSON text by UTF-16 code units, so a chunk
// can end inside a surrogate pair (its JSON then carries a lone "\ud83d").
// The server must reassemble the UTF-16 text before decoding (triplit.md
// §1.1). The data must arrive intact on another client and over /fetch.
import { createClient, closeClients, waitFor, subscribeFulfilled } from '../lib/sync.mjs';
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Schema as S } from '@triplit/client';
import { startServer } from '../lib/server.mjs';
import { ok } from '../lib/http.mjs';
import { signToken } from '../lib/tokens.mjs';

const collections = S.Collections({
  docs: { schema: S.Schema({ id: S.Id(), body: S.String(), shelf: S.String(), n: S.Number() }) },
});

let server;
before(async () => {
  server = await startServer({ schema: { collections } });
});
after(async () => {
  await closeClients();
  await server?.stop();
});

const LIMIT = 512 * 1024;
const isHigh = (c) => c >= 0xd800 && c <= 0xdbff;
const client = (sub) => createClient(server, { token: signToken({ sub }), schema: collections });
const serverDoc = async (id) => (await ok(server, '/fetch', { query: { collectionName: 'docs', where: [['id', '=', id]] } }))[0];

/** The CHUNK messages a client sent since index `from` of wire.sent, grouped by chunk id. */
function chunksSince(c, from) {
  const groups = new Map();
  for (const m of c.wire.sent.slice(from)) {
    if (m.type !== 'CHUNK') continue;
    if (!groups.has(m.payload.id)) groups.set(m.payload.id, []);
    groups.get(m.payload.id).push(m.payload);
  }
  return [...groups.values()];
}

/**
 * The client's own size measure: per UTF-16 unit, 1 byte below 0x80, 2 below
 * 0x800, else 3 (so a surrogate pair counts 6). Over 512 KiB it sends
 * ceil(size / 512 KiB) chunks of ceil(length / chunks) units each.
 */
function clientPayloadSize(text) {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    n += c < 0x80 ? 1 : c < 0x800 ? 2 : 3;
  }
  return n;
}

/** Emoji-heavy text of about `kib` KiB (UTF-8), mixing 4-byte, 3-byte, 2-byte and ASCII characters. */
function bigText(kib, pad) {
  const unit = '😀🧪€é a🇫🇷'; // surrogate pairs, BMP multi-byte, ASCII, a flag (two pairs)
  const unitBytes = Buffer.byteLength(unit);
  return 'x'.repeat(pad) + unit.repeat(Math.ceil((kib * 1024) / unitBytes)) + '|end';
}

describe('client-side chunking of large writes', () => {
  it('an insert over 512 KiB goes out as CHUNKs, one split inside a surrogate pair, and arrives intact', async () => {
    const writer = client('writer');
    const reader = client('reader');
    const sub = await subscribeFulfilled(reader, reader.query('docs').Where('shelf', '=', 'big'));
    const send = async (id, pad) => {
      const body = bigText(700, pad);
      const from = writer.wire.sent.length;
      await writer.insert('docs', { id, body, shelf: 'big', n: 0 });
      await waitFor(async () => (await serverDoc(id))?.body.length === body.length, { timeout: 15_000, message: `${id} stored` });
      assert.equal((await serverDoc(id)).body, body, 'stored intact');
      const groups = chunksSince(writer, from);
      assert.equal(groups.length, 1, 'one chunked message');
      const chunks = groups[0];
      assert.ok(chunks.length >= 2, `chunked (${chunks.length})`);
      assert.ok(chunks.every((c, i) => c.index === i && c.total === chunks.length));
      await waitFor(() => sub.results().find((e) => e.id === id)?.body === body, { timeout: 15_000, message: `${id} reached the reader` });
      return chunks;
    };
    // Where the cuts fall depends on the exact message text. Send one, then
    // replay the client's own cutting rule on that text with more padding in
    // the body, to find a padding that cuts inside a surrogate pair, and send
    // that one.
    const first = (await send('big0', 0)).map((c) => c.data).join('');
    const bodyAt = first.indexOf(bigText(1, 0).slice(0, 4));
    let pad = 1;
    const cutsInsidePair = (text) => {
      const n = Math.ceil(clientPayloadSize(text) / LIMIT);
      const size = Math.ceil(text.length / n);
      for (let at = size; at < text.length; at += size) if (isHigh(text.charCodeAt(at - 1))) return true;
      return false;
    };
    while (!cutsInsidePair(first.slice(0, bodyAt) + 'x'.repeat(pad) + first.slice(bodyAt))) pad++;
    const chunks = await send('big1', pad);
    const splitSeen = chunks.slice(0, -1).some((c) => isHigh(c.data.charCodeAt(c.data.length - 1)));
    assert.ok(splitSeen, 'some chunk ended inside a surrogate pair');
    sub.unsubscribe();
  });

  it('a large update (patch) and a large multi-entity transaction are chunked and arrive intact', async () => {
    const writer = client('writer2');
    const reader = client('reader2');
    const sub = await subscribeFulfilled(reader, reader.query('docs').Where('shelf', '=', 'multi'));
    await writer.insert('docs', { id: 'm0', body: 'small', shelf: 'multi', n: 0 });
    await waitFor(() => sub.results().length === 1, { message: 'm0 arrived' });

    let from = writer.wire.sent.length;
    const updated = bigText(600, 1);
    await writer.update('docs', 'm0', (e) => void (e.body = updated));
    await waitFor(async () => (await serverDoc('m0'))?.body === updated, { timeout: 15_000, message: 'update stored' });
    assert.ok(chunksSince(writer, from).length >= 1, 'the update was chunked');
    await waitFor(() => sub.results()[0]?.body === updated, { timeout: 15_000, message: 'update reached the reader' });

    from = writer.wire.sent.length;
    const bodies = Array.from({ length: 6 }, (_, i) => bigText(120, i) + `#${i}`);
    await writer.transact(async (tx) => {
      for (const [i, body] of bodies.entries()) await tx.insert('docs', { id: `m${i + 1}`, body, shelf: 'multi', n: i + 1 });
    });
    await waitFor(async () => (await ok(server, '/fetch', { query: { collectionName: 'docs', where: [['shelf', '=', 'multi']] } })).length === 7, {
      timeout: 15_000,
      message: 'all stored',
    });
    assert.ok(chunksSince(writer, from).length >= 1, 'the transaction was chunked');
    for (const [i, body] of bodies.entries()) assert.equal((await serverDoc(`m${i + 1}`)).body, body);
    await waitFor(() => sub.results().length === 7, { timeout: 15_000, message: 'all reached the reader' });
    for (const [i, body] of bodies.entries()) assert.equal(sub.results().find((e) => e.id === `m${i + 1}`).body, body);
    sub.unsubscribe();
  });
});
