// MAX_BODY_SIZE (in MB) limits /bulk-insert and /bulk-insert-file with a 413.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../lib/server.mjs';
import { request, multipartBody, ok, uniqueName } from '../lib/http.mjs';
import { assertTriplitError } from '../lib/expect.mjs';

const MB = 1024 * 1024;

/** A /bulk-insert JSON body of exactly `size` bytes with one entity `id` in `collection`. */
function bulkBodyOfSize(collection, id, size) {
  const shell = JSON.stringify({ [collection]: [{ id, pad: '' }] });
  const body = JSON.stringify({ [collection]: [{ id, pad: 'x'.repeat(size - shell.length) }] });
  assert.equal(body.length, size);
  return body;
}
const json = { 'Content-Type': 'application/json' };

let server; // MAX_BODY_SIZE=1
before(async () => {
  server = await startServer({ env: { MAX_BODY_SIZE: '1' } });
});
after(async () => {
  await server?.stop();
});

const ids = async (collectionName) =>
  (await ok(server, '/fetch', { query: { collectionName, select: ['id'] } })).map((e) => e.id).sort();

function assertTooLarge(res) {
  // The reference builds a bare TriplitError here, so only the HTTP status,
  // the name and the text are the contract (its body `status` says 500).
  assertTriplitError(res, { status: 413, name: 'TriplitError', bodyStatus: null, message: 'Body too large, max size is 1 MB' });
  assert.equal(res.headers.get('access-control-allow-origin'), '*');
}

describe('MAX_BODY_SIZE=1', () => {
  it('/bulk-insert accepts a body of exactly 1 MiB', async () => {
    const c = uniqueName('lim');
    const res = await request(server, '/bulk-insert?noReturn=true', { body: bulkBodyOfSize(c, 'at-limit', MB), headers: json });
    assert.equal(res.status, 200, res.text.slice(0, 300));
    assert.deepEqual(await ids(c), ['at-limit']);
  });

  it('/bulk-insert rejects one byte more with 413 and stores nothing', async () => {
    const c = uniqueName('lim');
    assertTooLarge(await request(server, '/bulk-insert', { body: bulkBodyOfSize(c, 'over', MB + 1), headers: json }));
    assert.deepEqual(await ids(c), []);
  });

  it('/bulk-insert rejects a chunked body (no Content-Length) over the limit', async () => {
    const c = uniqueName('lim');
    assertTooLarge(await request(server, '/bulk-insert', { body: bulkBodyOfSize(c, 'chunked', 2 * MB), headers: json, chunked: true }));
    assert.deepEqual(await ids(c), []);
  });

  it('/bulk-insert-file rejects a multipart body over the limit with 413', async () => {
    const c = uniqueName('lim');
    const { body, contentType } = multipartBody('data', bulkBodyOfSize(c, 'file', MB + 100));
    assertTooLarge(await request(server, '/bulk-insert-file', { body, headers: { 'Content-Type': contentType } }));
    assert.deepEqual(await ids(c), []);
  });

  it('/bulk-insert-file accepts a multipart body under the limit', async () => {
    const c = uniqueName('lim');
    const { body, contentType } = multipartBody('data', bulkBodyOfSize(c, 'file-ok', MB - 1000));
    const res = await request(server, '/bulk-insert-file?noReturn=true', { body, headers: { 'Content-Type': contentType } });
    assert.equal(res.status, 200, res.text.slice(0, 300));
    assert.deepEqual(await ids(c), ['file-ok']);
  });

  it('the limit applies to the bulk routes only: /insert takes a larger body', async () => {
    const c = uniqueName('lim');
    const entity = { id: 'big-insert', pad: 'y'.repeat(MB + 1000) };
    const res = await request(server, '/insert', { body: JSON.stringify({ collectionName: c, entity }), headers: json });
    assert.equal(res.status, 200, res.text.slice(0, 300));
    assert.deepEqual(await ids(c), ['big-insert']);
  });

  it('the server keeps serving after a 413', async () => {
    const c = uniqueName('lim');
    try {
      assertTooLarge(await request(server, '/bulk-insert', { body: bulkBodyOfSize(c, 'x', 3 * MB), headers: json }));
    } catch (e) {
      // The server answers 413 and closes before reading the body; on a
      // loaded machine the client's write can fail first (the 413 itself
      // is asserted by the tests above). What matters here is what follows.
      if (!['EPIPE', 'ECONNRESET'].includes(e.code)) throw e;
    }
    const res = await request(server, '/bulk-insert', { body: JSON.stringify({ [c]: [{ id: 'after' }] }), headers: json });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(await ids(c), ['after']);
  });
});

describe('default limit (100 MB)', () => {
  it('/bulk-insert accepts a 3 MiB body when MAX_BODY_SIZE is unset', async () => {
    const free = await startServer();
    try {
      const c = uniqueName('lim');
      const res = await request(free, '/bulk-insert?noReturn=true', { body: bulkBodyOfSize(c, 'three', 3 * MB), headers: json });
      assert.equal(res.status, 200, res.text.slice(0, 300));
    } finally {
      await free.stop();
    }
  });
});
