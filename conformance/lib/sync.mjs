// Helpers for the realtime-sync tests (test/sync-*.test.mjs).
//
//   createClient(server, opts)  a published TriplitClient over a real WebSocket
//                               (undici's), recording every socket and frame
//   closeClients()              end every client this process created
//   openRaw(server, opts)       a hand-driven WebSocket speaking the protocol
//   waitFor(fn, opts)           poll until fn() is truthy / stops throwing
//   seededRandom(seed)          a deterministic RNG for the randomized tests
//   serverRows(), canon()       the server's view over /fetch, normalized for comparison
//
// Import this module before anything else that loads @triplit/client (such
// as lib/http.mjs): the WebSocket global must exist when the client loads.
import { UndiciWebSocket } from './websocket-global.mjs';
import { TriplitClient, HttpClient } from '@triplit/client';
import { WebSocketTransport } from '@triplit/client/transport/websocket-transport';
import SuperJSON from 'superjson';
import { ok } from './http.mjs';

export { TriplitClient, SuperJSON, UndiciWebSocket };

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Poll `fn` (sync or async) every `interval` ms until it returns a truthy
 * value, which is returned. If `fn` throws (e.g. an assert), keep polling;
 * at the timeout, rethrow the last error, or throw one naming `message`.
 */
export async function waitFor(fn, { timeout = 10_000, interval = 20, message = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let lastError;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
      lastError = undefined;
    } catch (e) {
      lastError = e;
    }
    if (Date.now() >= deadline) {
      if (lastError) {
        lastError.message = `waitFor(${message}) timed out after ${timeout} ms; last error: ${lastError.message}`;
        throw lastError;
      }
      throw new Error(`waitFor(${message}) timed out after ${timeout} ms`);
    }
    await sleep(interval);
  }
}

/** mulberry32: a small, fast, seedable PRNG. */
export function seededRandom(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    seed,
    next,
    int: (n) => Math.floor(next() * n),
    pick: (arr) => arr[Math.floor(next() * arr.length)],
    chance: (p) => next() < p,
  };
}

/** The seed for randomized tests: FERRY_SEED if set, else the test's default. */
export function testSeed(fallback) {
  return process.env.FERRY_SEED ? Number(process.env.FERRY_SEED) : fallback;
}

function parseFrame(data) {
  try {
    return JSON.parse(data);
  } catch {
    return { unparsed: String(data) };
  }
}

/**
 * The client's own WebSocketTransport (chunking and all), recording what goes
 * over each socket it opens. Plugged in through the public `transport` option.
 */
class RecordingTransport extends WebSocketTransport {
  constructor(wire, options) {
    super(options);
    this.wire = wire;
  }
  connect(params) {
    super.connect(params);
    const ws = this.ws;
    const sock = { url: ws.url, opened: false, closed: null, sent: [], received: [], log: [] };
    this.wire.sockets.push(sock);
    const send = ws.send.bind(ws);
    ws.send = (data) => {
      const msg = parseFrame(data);
      sock.sent.push(msg);
      sock.log.push(['>', msg]);
      this.wire.sent.push(msg);
      return send(data);
    };
    ws.addEventListener('open', () => (sock.opened = true));
    ws.addEventListener('message', (e) => {
      const msg = parseFrame(e.data);
      sock.received.push(msg);
      sock.log.push(['<', msg]);
      this.wire.received.push(msg);
    });
    ws.addEventListener('close', (e) => (sock.closed = { code: e.code, reason: e.reason }));
  }
}

const clients = new Set();

/**
 * A TriplitClient pointed at `server`, over a real WebSocket.
 *   token:       the session token (default: the service token); null for no session
 *   schema:      the collections (client-side schema); omit for a schemaless client
 *   roles:       the client's copy of the roles
 *   autoConnect: connect at once (default true)
 *   transportOptions: e.g. { messagePayloadSizeLimit }
 * Other options go to the TriplitClient constructor. The result has
 * `client.wire = { sockets, sent, received }`: every socket the client opened
 * (url, opened, closed {code, reason}, sent/received messages, and `log`,
 * both directions in order) and all parsed
 * messages in either direction.
 */
export function createClient(server, { token = server.serviceToken, transportOptions, logLevel, ...options } = {}) {
  const wire = { sockets: [], sent: [], received: [] };
  const client = new TriplitClient({
    serverUrl: server.url,
    token: token ?? undefined,
    logLevel: logLevel ?? process.env.FERRY_SYNC_LOG ?? 'none',
    transport: new RecordingTransport(wire, transportOptions),
    ...options,
  });
  client.wire = wire;
  clients.add(client);
  return client;
}

/** End the sessions of every client created by this process and wait for their sockets to close. */
export async function closeClients() {
  const all = [...clients];
  clients.clear();
  await Promise.all(
    all.map(async (c) => {
      try {
        await c.endSession();
      } catch {}
      try {
        c.disconnect();
      } catch {}
    })
  );
  await waitFor(() => all.every((c) => c.wire.sockets.every((s) => s.closed || !s.opened)), {
    timeout: 3000,
    message: 'client sockets closed',
  }).catch(() => {});
}

/** The client's local (cache + outbox) view of a query. */
export function localRows(client, query) {
  return client.fetch(query, { policy: 'local-only' });
}

/** Resolve when the client's subscription to `query` has been fulfilled by the server; returns { results(), unsubscribe }. */
export async function subscribeFulfilled(client, query, { timeout = 10_000 } = {}) {
  let latest;
  let fulfilled = false;
  let error;
  const unsubscribe = client.subscribe(
    query,
    (r) => (latest = r),
    (e) => (error = e),
    { onRemoteFulfilled: () => (fulfilled = true) }
  );
  await waitFor(
    () => {
      if (error) throw error;
      return fulfilled && latest !== undefined;
    },
    { timeout, message: 'subscription fulfilled' }
  );
  return { results: () => latest, error: () => error, unsubscribe };
}

/** Every row of a query over POST /fetch with the service token (the server's truth, JSON form). */
export function serverRows(server, query) {
  return ok(server, '/fetch', { query });
}

/** A published HttpClient with the service token, which decodes rows like the TriplitClient does. */
export function serviceHttp(server, schema) {
  return new HttpClient({ serverUrl: server.url, token: server.serviceToken, schema });
}

/**
 * Canonical form for comparing result sets from different sources: rows
 * sorted by id; Sets → sorted arrays; Dates → ISO strings; arrays of rows
 * (includes) sorted by id; keys with null/undefined dropped (the HTTP form
 * omits empty optionals, the cache keeps nulls).
 */
export function canon(value) {
  if (value instanceof Set) return [...value].map(canon).sort(cmp);
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Map) return canon(Object.fromEntries(value));
  if (Array.isArray(value)) {
    const arr = value.map(canon);
    if (arr.every((v) => v && typeof v === 'object' && !Array.isArray(v) && typeof v.id === 'string')) {
      arr.sort((a, b) => cmp(a.id, b.id));
    }
    return arr;
  }
  if (value && typeof value === 'object') {
    const out = {};
    for (const k of Object.keys(value).sort()) {
      const v = value[k];
      if (v === null || v === undefined) continue;
      out[k] = canon(v);
    }
    return out;
  }
  return value;
}
function cmp(a, b) {
  const x = JSON.stringify(a);
  const y = JSON.stringify(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/**
 * A WebSocket driven by hand. Messages are parsed JSON (`{type, payload}`).
 *   raw.send(obj | string)
 *   await raw.next(type | predicate, {timeout})  the oldest message not yet
 *       returned by next() that matches, waiting for one if needed
 *   raw.messages, raw.closed (null or {code, reason}), await raw.closedEvent
 *   await raw.ready   the READY message (openRaw waits for it unless { ready: false })
 */
export class RawSocket {
  constructor(url) {
    this.url = url;
    this.messages = [];
    this.sent = [];
    this.taken = new Set();
    this.closed = null;
    this.ws = new UndiciWebSocket(url);
    this.opened = new Promise((resolve) => {
      this.ws.addEventListener('open', () => resolve(true));
      this.ws.addEventListener('close', () => resolve(false));
    });
    this.closedEvent = new Promise((resolve) => {
      this.ws.addEventListener('close', (e) => {
        this.closed = { code: e.code, reason: e.reason };
        resolve(this.closed);
      });
    });
    this.ws.addEventListener('error', () => {});
    this.ws.addEventListener('message', (e) => this.messages.push(parseFrame(e.data)));
  }

  get isOpen() {
    return this.ws.readyState === UndiciWebSocket.OPEN;
  }

  send(msg) {
    const data = typeof msg === 'string' ? msg : JSON.stringify(msg);
    this.sent.push(data);
    this.ws.send(data);
  }

  /** The messages of a type (all of them, read or not). */
  all(type) {
    return this.messages.filter((m) => m.type === type);
  }

  async next(match, { timeout = 5000 } = {}) {
    const pred = typeof match === 'function' ? match : (m) => m.type === match;
    let found;
    await waitFor(
      () => {
        for (let i = 0; i < this.messages.length; i++) {
          if (!this.taken.has(i) && pred(this.messages[i])) {
            found = this.messages[i];
            this.taken.add(i);
            return true;
          }
        }
        if (this.closed) throw new Error(`socket closed ${JSON.stringify(this.closed)} before a matching message`);
        return false;
      },
      { timeout, interval: 5, message: `message ${typeof match === 'string' ? match : 'matching'}; got ${summary(this.messages)}` }
    );
    return found;
  }

  /** Send PING and wait for its PONG: a liveness check. (Upstream may answer a PING before acknowledging earlier CHANGES.) */
  async roundTrip({ timeout = 5000 } = {}) {
    const clientTimestamp = Date.now() + Math.random();
    this.send({ type: 'PING', payload: { clientTimestamp } });
    return this.next((m) => m.type === 'PONG' && m.payload?.clientTimestamp === clientTimestamp, { timeout });
  }

  close(code = 1000, reason = JSON.stringify({ type: 'MANUAL_DISCONNECT', retry: false })) {
    if (this.ws.readyState === UndiciWebSocket.OPEN || this.ws.readyState === UndiciWebSocket.CONNECTING) {
      this.ws.close(code, reason);
    }
    return this.closedEvent;
  }
}

function summary(messages) {
  return JSON.stringify(messages.map((m) => m.type ?? m)).slice(0, 300);
}

const raws = new Set();

/**
 * Open a raw socket the way the client does: ws://host/?sync-schema=false&token=…
 *   token:  the token (default the service token); null leaves it out
 *   ready:  wait for READY (default true)
 */
export async function openRaw(server, { token = server.serviceToken, ready = true } = {}) {
  const params = new URLSearchParams();
  params.set('sync-schema', 'false');
  if (token !== null) params.set('token', token);
  const raw = new RawSocket(`${server.url.replace(/^http/, 'ws')}?${params}`);
  raws.add(raw);
  raw.closedEvent.then(() => raws.delete(raw));
  await raw.opened;
  if (ready) raw.ready = await raw.next('READY');
  return raw;
}

/** Close every raw socket still open. */
export async function closeRaws() {
  await Promise.all([...raws].map((r) => r.close()));
}

/** A CHANGES message as the client sends it: `changes` is { [collection]: { sets: [[id, obj]...], deletes: [id...] } }. */
export function changesMessage(changes) {
  const dbChanges = {};
  for (const [collection, { sets = [], deletes = [] }] of Object.entries(changes)) {
    dbChanges[collection] = { sets: new Map(sets), deletes: new Set(deletes) };
  }
  return { type: 'CHANGES', payload: { changes: SuperJSON.serialize(dbChanges) } };
}

/** Decode ENTITY_DATA / CHANGES `changes` into { [collection]: { sets: Map, deletes: Set } }. */
export function decodeChanges(payload) {
  return SuperJSON.deserialize(payload.changes);
}

/** The ids set and deleted per collection in an ENTITY_DATA message, as sorted arrays. */
export function changedIds(message) {
  const changes = decodeChanges(message.payload);
  const out = {};
  for (const [collection, { sets, deletes }] of Object.entries(changes)) {
    out[collection] = { sets: [...sets.keys()].sort(), deletes: [...deletes].sort() };
  }
  return out;
}

/** Parse a close reason JSON ({type, retry}); undefined when it is not JSON. */
export function closeReason(closed) {
  try {
    return JSON.parse(closed.reason);
  } catch {
    return undefined;
  }
}
