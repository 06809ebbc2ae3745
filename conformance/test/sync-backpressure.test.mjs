// A client that stops reading must not slow anyone else down: the server
// keeps delivering to the others, and (Ferry) disconnects the stalled
// client with a retryable close once its bounded outbox is full, instead
// of buffering without limit.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import crypto from 'node:crypto';
import { closeClients, createClient, subscribeFulfilled, waitFor } from '../lib/sync.mjs';
import { startServer, target } from '../lib/server.mjs';

/** A masked client text frame (RFC 6455 §5.2). */
function textFrame(text) {
  const payload = Buffer.from(text, 'utf8');
  const mask = crypto.randomBytes(4);
  let header;
  if (payload.length < 126) header = Buffer.from([0x81, 0x80 | payload.length]);
  else if (payload.length < 65536) {
    header = Buffer.alloc(4);
    header[0] = 0x81;
    header[1] = 0x80 | 126;
    header.writeUInt16BE(payload.length, 2);
  } else {
    header = Buffer.alloc(10);
    header[0] = 0x81;
    header[1] = 0x80 | 127;
    header.writeBigUInt64BE(BigInt(payload.length), 2);
  }
  const masked = Buffer.alloc(payload.length);
  for (let i = 0; i < payload.length; i++) masked[i] = payload[i] ^ mask[i % 4];
  return Buffer.concat([header, mask, masked]);
}

/** A WebSocket that subscribes to a query and then never reads again. */
async function stalledSubscriber(server, query) {
  const { port } = new URL(server.url);
  const sock = net.connect(Number(port), '127.0.0.1');
  await new Promise((r) => sock.once('connect', r));
  // A tiny receive buffer so the server's writes back up quickly.
  sock.setNoDelay(true);
  const key = crypto.randomBytes(16).toString('base64');
  sock.write(
    `GET /?sync-schema=false&token=${server.serviceToken} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n` +
      `Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`
  );
  // Read only the handshake response, then stop reading for good.
  await new Promise((resolve) => {
    let buf = '';
    const onData = (d) => {
      buf += d.toString('latin1');
      if (buf.includes('\r\n\r\n')) {
        sock.off('data', onData);
        sock.pause();
        resolve();
      }
    };
    sock.on('data', onData);
  });
  sock.write(textFrame(JSON.stringify({ type: 'CONNECT_QUERY', payload: { id: 'stalled', params: query } })));
  return sock;
}

async function metric(server, name) {
  const text = await (await fetch(server.url + '/metrics')).text();
  const line = text.split('\n').find((l) => l.startsWith(name + '{') || l.startsWith(name + ' '));
  return line ? Number(line.trim().split(/\s+/).pop()) : undefined;
}

describe('a stalled reader', () => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(async () => {
    await closeClients();
    await server.stop();
  });

  it('does not delay delivery to other clients, and is disconnected instead of buffered without bound', async () => {
    const query = { collectionName: 'blobs' };
    const stalled = await stalledSubscriber(server, query);
    const healthy = createClient(server);
    const sub = await subscribeFulfilled(healthy, healthy.query('blobs'));
    const pad = 'x'.repeat(16 * 1024);
    const N = 1500;
    // Writes keep being acknowledged at full speed although one subscriber
    // never reads what it is sent.
    for (let i = 0; i < N; i++) {
      const res = await fetch(server.url + '/insert', {
        method: 'POST',
        headers: { Authorization: `Bearer ${server.serviceToken}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ collectionName: 'blobs', entity: { id: `b${String(i).padStart(5, '0')}`, pad } }),
        signal: AbortSignal.timeout(10_000),
      });
      assert.equal(res.status, 200);
    }
    await waitFor(() => [...(sub.results()?.values?.() ?? sub.results())].length === N, {
      timeout: 20_000,
      message: 'the healthy client received every write',
    });
    if (target === 'ferry') {
      // Ferry's outbox is bounded (docs/compatibility.md): the stalled
      // socket is dropped rather than buffered, so only the healthy one is
      // still open.
      await waitFor(async () => (await metric(server, 'ferry_open_connections')) === 1, {
        timeout: 10_000,
        message: 'the stalled connection was closed by the server',
      });
    }
    stalled.destroy();
  });
});
