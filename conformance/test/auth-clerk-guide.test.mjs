// Triplit's "Using Clerk with Triplit" guide, followed step by step against
// the server, with real Clerk-shaped RS256 tokens minted by `ferry issuer`
// (the local stand-in for Clerk: JWKS, OIDC discovery, v2 claims, kid,
// 60 s default lifetime):
//
//  1. Clerk's PEM public key, on ONE line, in EXTERNAL_JWT_SECRET
//     (`ferry serve`; the reference @triplit/server 1.1.8 with
//     FERRY_TARGET=reference) and in TRIPLIT_EXTERNAL_JWT_SECRET (`ferry dev`;
//     `triplit dev` of @triplit/cli 1.0.61 for the reference);
//  2. a schema with roles `{ user: { match: { sub: '$userId' } } }` and
//     per-collection permissions;
//  3. `client.startSession(token, true, { refreshHandler })`, the handler
//     minting a fresh token like Clerk's `getToken()`.
//
// With 3 s tokens the session lives through several token lifetimes in a few
// seconds, and a live subscription keeps receiving updates after each
// rotation. Two users are isolated by the permissions; a forbidden write is
// rejected as upstream rejects it; TOKEN_EXPIRED when nothing refreshes;
// ROLES_MISMATCH when a refresh changes the roles; UNAUTHORIZED for every
// kind of bad token, and the same tokens over HTTP get Triplit's errors.
//
// Ferry only (no equivalent upstream): the same guide with Ferry's own Clerk
// configuration — the publishable key (CLERK_PUBLISHABLE_KEY, ferry.toml),
// a JWKS URL, OIDC discovery, following a key rotation — and what an operator sees when a token is
// refused (a `token refused` log line per refusal with reason, issuer and
// kid but never the token; `ferry_auth_refusals_total{reason}` in /metrics).
import {
  createClient,
  closeClients,
  openRaw,
  closeRaws,
  waitFor,
  subscribeFulfilled,
  closeReason,
  sleep,
} from '../lib/sync.mjs';
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Schema as S } from '@triplit/client';
import { startServer, freePort, target } from '../lib/server.mjs';
import { call, ok } from '../lib/http.mjs';
import { serviceTokenFor } from '../lib/tokens.mjs';
import { assertTriplitError } from '../lib/expect.mjs';
import { startIssuer, decodeJwt, FERRY_BIN } from '../lib/issuer.mjs';

const conformanceDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const TRIPLIT_CLI = path.join(conformanceDir, 'node_modules/@triplit/cli/dist/index.js');

// Step 2 of the guide: roles match the Clerk user id, permissions use it.
const roles = { user: { match: { sub: '$userId' } } };
const mine = ['ownerId', '=', '$role.userId'];
const collections = S.Collections({
  // Private to their owner.
  todos: {
    schema: S.Schema({ id: S.Id(), text: S.String(), ownerId: S.String(), list: S.String() }),
    permissions: {
      user: {
        read: { filter: [mine] },
        insert: { filter: [mine] },
        update: { filter: [mine] },
        postUpdate: { filter: [mine] },
        delete: { filter: [mine] },
      },
    },
  },
  // Readable by every signed-in user, written only as yourself.
  messages: {
    schema: S.Schema({ id: S.Id(), text: S.String(), authorId: S.String(), room: S.String() }),
    permissions: {
      user: {
        read: { filter: [true] },
        insert: { filter: [['authorId', '=', '$role.userId']] },
      },
    },
  },
});
const schema = { roles, collections };

const APP_ORIGIN = 'http://localhost:5173';
const nowSec = () => Math.floor(Date.now() / 1000);
const expOf = (token) => decodeJwt(token).payload.exp;

let issuer; // the Clerk stand-in whose key the servers trust
let intruder; // another `ferry issuer`: a key nobody trusts
before(async () => {
  [issuer, intruder] = await Promise.all([startIssuer(), startIssuer()]);
});
after(async () => {
  await closeClients();
  await closeRaws();
  await Promise.all([issuer?.stop(), intruder?.stop()]);
});

/** A token for `sub` as the app's frontend gets it from Clerk (with `azp` = the app's origin). */
const clerkToken = (sub, ttl) => issuer.mint({ sub, ttl, azp: APP_ORIGIN, email: `${sub}@example.dev` });

const BAD_TOKEN_KINDS = [
  'bad signature (one bit flipped)',
  'wrong key (right iss and kid, signed by another key)',
  'expired',
  'alg none',
  'alg confusion (HS256 keyed with the PEM)',
  'garbage',
];

/** Every kind of bad token, with what Triplit answers over HTTP and Ferry's refusal reason. */
function badTokens() {
  const now = nowSec();
  const claims = (extra = {}) => ({
    azp: APP_ORIGIN,
    exp: now + 60,
    iat: now,
    iss: issuer.url,
    nbf: now - 5,
    sid: 'sess_mallory',
    sub: 'user_mallory',
    v: 2,
    ...extra,
  });
  const good = issuer.sign(claims());
  const [h, p, s] = good.split('.');
  const sig = Buffer.from(s, 'base64url');
  sig[sig.length >> 1] ^= 0x01;
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return [
    {
      kind: 'bad signature (one bit flipped)',
      token: `${h}.${p}.${sig.toString('base64url')}`,
      http: { status: 401, name: 'InvalidTokenSignatureError' },
      reason: 'bad_signature',
    },
    {
      kind: 'wrong key (right iss and kid, signed by another key)',
      token: intruder.sign(claims(), { header: { kid: issuer.kid } }),
      http: { status: 401, name: 'InvalidTokenSignatureError' },
      reason: 'bad_signature',
    },
    {
      kind: 'expired',
      token: issuer.sign(claims({ exp: now - 30, iat: now - 90, nbf: now - 95 })),
      http: { status: 401, name: 'InvalidTokenSignatureError' },
      reason: 'expired',
    },
    {
      kind: 'alg none',
      token: `${b64({ alg: 'none', kid: issuer.kid, typ: 'JWT' })}.${p}.`,
      http: { status: 401, name: 'InvalidTokenSignatureError' },
      reason: 'algorithm_not_allowed',
    },
    {
      kind: 'alg confusion (HS256 keyed with the PEM)',
      token: signHs256(claims(), issuer.pemOneLine),
      http: { status: 401, name: 'InvalidTokenSignatureError' },
      reason: 'key_mismatch',
    },
    {
      kind: 'garbage',
      token: 'garbage',
      http: { status: 400, name: 'InvalidTokenPayloadError' },
      reason: 'malformed',
    },
  ];
}

function signHs256(claims, secret) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const input = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}`;
  return `${input}.${crypto.createHmac('sha256', secret).update(input).digest('base64url')}`;
}

/** The client of step 3: startSession with Clerk's token and a refreshHandler that asks "Clerk" again. */
async function guideClient(server, sub, { ttl = 3, refreshTtl = ttl, schemaless = false } = {}) {
  const client = createClient(server, {
    token: null,
    autoConnect: false,
    ...(schemaless ? {} : { schema: collections, roles }),
  });
  const errors = [];
  client.onSessionError((type) => errors.push(type));
  const tokens = [await clerkToken(sub, ttl)];
  await client.startSession(tokens[0], true, {
    refreshHandler: async () => {
      const next = await clerkToken(sub, refreshTtl);
      tokens.push(next);
      return next;
    },
  });
  return { client, errors, tokens };
}

/**
 * The session outlives several tokens: after each rotation, once the
 * previous token has expired, a change made elsewhere still reaches the live
 * subscription (a server that had not taken the new token would close the
 * socket with TOKEN_EXPIRED instead), and the client's own writes still sync.
 */
async function sessionOutlivesTokens(server, { sub, list, rotations = 3, insert }) {
  const { client, errors, tokens } = await guideClient(server, sub, { ttl: 3 });
  const { header, payload } = decodeJwt(tokens[0]);
  assert.equal(header.alg, 'RS256');
  assert.equal(header.kid, issuer.kid);
  assert.equal(payload.iss, issuer.url);
  assert.equal(payload.sub, sub);
  assert.equal(payload.v, 2);
  assert.equal(payload.exp - payload.iat, 3);
  const sub1 = await subscribeFulfilled(client, client.query('todos').Where('list', '=', list));
  for (let k = 1; k <= rotations; k++) {
    await waitFor(() => tokens.length > k, { timeout: 10_000, message: `refresh ${k}` });
    const previousExp = expOf(tokens[k - 1]);
    await waitFor(() => Date.now() > previousExp * 1000 + 250, { timeout: 10_000, message: `token ${k - 1} expired` });
    await insert({ id: `${list}-${k}`, text: `after rotation ${k}`, ownerId: sub, list });
    await waitFor(() => sub1.results().some((t) => t.id === `${list}-${k}`), {
      timeout: 10_000,
      message: `update after rotation ${k}; errors ${JSON.stringify(errors)}`,
    });
  }
  assert.ok(tokens.length > rotations, 'a fresh token per lifetime');
  for (const t of tokens.slice(1)) assert.equal(decodeJwt(t).payload.sub, sub);
  assert.equal(client.wire.sockets.length, 1, 'one socket the whole time');
  assert.equal(client.connectionStatus, 'OPEN');
  assert.deepEqual(errors, []);
  await client.insert('todos', { id: `${list}-own`, text: 'written by the client', ownerId: sub, list });
  await waitFor(
    async () => (await ok(server, '/fetch', { query: { collectionName: 'todos', where: [['id', '=', `${list}-own`]] } })).length === 1,
    { timeout: 10_000, message: 'the client’s write reached the server' }
  );
  sub1.unsubscribe();
  await client.endSession();
}

const serviceInsert = (server) => (entity) => ok(server, '/insert', { collectionName: 'todos', entity });

// The scenarios mostly wait for tokens to expire, so they all run at once.
describe('Using Clerk with Triplit', { concurrency: true }, () => {
  describe('the guide with EXTERNAL_JWT_SECRET (Clerk’s PEM on one line)', { concurrency: true }, () => {
    let server;
    before(async () => {
      assert.ok(!issuer.pemOneLine.includes('\n'), 'the PEM is on one line');
      assert.equal(issuer.pem.split('\n').join(''), issuer.pemOneLine, 'the same key as the multi-line PEM');
      assert.match(issuer.pemOneLine, /^-----BEGIN PUBLIC KEY-----\S+-----END PUBLIC KEY-----$/);
      server = await startServer({ schema, env: { EXTERNAL_JWT_SECRET: issuer.pemOneLine } });
    });
    after(async () => {
      await server?.stop();
    });

    it('startSession + refreshHandler: one socket over several 3 s token lifetimes, live updates after each rotation', async () => {
      await sessionOutlivesTokens(server, { sub: 'user_rot', list: 'rot', insert: serviceInsert(server) });
    });

    it('two users are isolated by the permissions; a forbidden write is rejected and reported', async () => {
      const [alice, bob] = await Promise.all([guideClient(server, 'user_alice', { ttl: 60 }), guideClient(server, 'user_bob', { ttl: 60 })]);
      const list = 'iso';
      const sa = await subscribeFulfilled(alice.client, alice.client.query('todos').Where('list', '=', list));
      const sb = await subscribeFulfilled(bob.client, bob.client.query('todos').Where('list', '=', list));
      const ma = await subscribeFulfilled(alice.client, alice.client.query('messages').Where('room', '=', list));
      await alice.client.insert('todos', { id: 'iso-a', text: 'alice’s', ownerId: 'user_alice', list });
      await bob.client.insert('todos', { id: 'iso-b', text: 'bob’s', ownerId: 'user_bob', list });
      await bob.client.insert('messages', { id: 'iso-m', text: 'hi from bob', authorId: 'user_bob', room: list });
      await waitFor(() => sa.results().length === 1 && sb.results().length === 1, { message: 'own todos synced' });
      assert.deepEqual(sa.results().map((t) => t.id), ['iso-a']);
      assert.deepEqual(sb.results().map((t) => t.id), ['iso-b']);
      // Shared messages reach everyone.
      await waitFor(() => ma.results().some((m) => m.id === 'iso-m'), { message: 'bob’s message reached alice' });
      // A later write Bob can see is the sentinel: once it is here, a frame
      // about Alice's todo would have been too.
      await serviceInsert(server)({ id: 'iso-b2', text: 'sentinel', ownerId: 'user_bob', list });
      await waitFor(() => sb.results().some((t) => t.id === 'iso-b2'), { message: 'sentinel' });
      assert.ok(!JSON.stringify(bob.client.wire.received).includes('iso-a'), 'no frame to Bob mentions Alice’s todo');
      assert.ok(!JSON.stringify(alice.client.wire.received).includes('iso-b'), 'no frame to Alice mentions Bob’s todos');

      // Alice writes a message as Bob: refused with upstream's ERROR frame and callbacks.
      const failures = [];
      alice.client.onFailureToSyncWrites((error, changes) => failures.push({ error, changes }));
      const entityErrors = [];
      alice.client.onEntitySyncError('messages', 'iso-spoof', (error) => entityErrors.push(error));
      await alice.client.insert('messages', { id: 'iso-spoof', text: 'I am bob', authorId: 'user_bob', room: list });
      await waitFor(() => failures.length === 1 && entityErrors.length === 1, { message: 'failure callbacks' });
      const err = alice.client.wire.received.find((m) => m.type === 'ERROR');
      assert.equal(err.payload.messageType, 'CHANGES');
      assert.equal(err.payload.error.name, 'WritePermissionError');
      assert.equal(err.payload.error.status, 401);
      assert.equal(err.payload.metadata.failures[0].collection, 'messages');
      assert.equal(failures[0].error.name, 'WritePermissionError');
      assert.ok(failures[0].changes.messages.sets.has('iso-spoof'));
      assert.equal(entityErrors[0].name, 'WritePermissionError');
      const stored = await ok(server, '/fetch', { query: { collectionName: 'messages', where: [['id', '=', 'iso-spoof']] } });
      assert.deepEqual(stored, [], 'nothing stored');
      assert.equal(alice.client.connectionStatus, 'OPEN', 'the socket stays up');

      // The same token over HTTP: only Alice's rows, and the same refusal.
      const token = alice.tokens.at(-1);
      const rows = await call(server, '/fetch', { token, body: { query: { collectionName: 'todos', where: [['list', '=', list]] } } });
      assert.equal(rows.status, 200, rows.text);
      assert.deepEqual(rows.json.map((t) => t.id), ['iso-a']);
      const spoof = await call(server, '/insert', {
        token,
        body: { collectionName: 'todos', entity: { id: 'iso-http', text: 'x', ownerId: 'user_bob', list } },
      });
      assertTriplitError(spoof, { status: 401, name: 'WritePermissionError' });
      sa.unsubscribe();
      sb.unsubscribe();
      ma.unsubscribe();
    });

    it('no refreshHandler: the socket is closed with TOKEN_EXPIRED, onSessionError fires, no reconnect', async () => {
      const client = createClient(server, { token: null, autoConnect: false, schema: collections, roles });
      const errors = [];
      client.onSessionError((type) => errors.push(type));
      const token = await clerkToken('user_idle', 2);
      await client.startSession(token, true);
      const sub = await subscribeFulfilled(client, client.query('todos').Where('list', '=', 'idle'));
      await waitFor(() => Date.now() > expOf(token) * 1000 + 200, { timeout: 5000, message: 'past expiry' });
      if (target === 'reference') {
        // Upstream notices expiry only when a message passes (the idle socket
        // is still open); Ferry closes it at expiry (docs/compatibility.md).
        client.ping();
      }
      await waitFor(() => errors.length === 1, { timeout: 8000, message: 'onSessionError' });
      assert.deepEqual(errors, ['TOKEN_EXPIRED']);
      await waitFor(() => client.connectionStatus === 'CLOSED', { message: 'CLOSED' });
      assert.equal(client.wire.sockets[0].closed.code, 1008);
      assert.deepEqual(closeReason(client.wire.sockets[0].closed), { type: 'TOKEN_EXPIRED', retry: false });
      await sleep(800); // the client's first retry would come after 250 ms
      assert.equal(client.wire.sockets.length, 1, 'no reconnect');
      sub.unsubscribe();
    });

    it('a refresh that changes the roles (another Clerk user) closes with ROLES_MISMATCH', async () => {
      // Schemaless client: it cannot compare roles itself, so the server decides.
      // (3 s, not 2: the client refreshes 1 s before exp but never sooner
      // than 1 s after the token was set, so a 2 s token can leave it only
      // milliseconds to reach the server before expiry.)
      const client = createClient(server, { token: null, autoConnect: false });
      const errors = [];
      client.onSessionError((type) => errors.push(type));
      await client.startSession(await clerkToken('user_first', 3), true, {
        refreshHandler: () => clerkToken('user_second', 60),
      });
      const sub = await subscribeFulfilled(client, client.query('todos').Where('list', '=', 'mismatch'));
      await waitFor(() => errors.length === 1, { timeout: 8000, message: 'onSessionError' });
      assert.deepEqual(errors, ['ROLES_MISMATCH']);
      await waitFor(() => client.connectionStatus === 'CLOSED', { message: 'CLOSED' });
      const sock = client.wire.sockets[0];
      assert.equal(sock.closed.code, 1008);
      assert.deepEqual(closeReason(sock.closed), { type: 'ROLES_MISMATCH', retry: false });
      assert.equal(sock.received.find((m) => m.type === 'CLOSE')?.payload.type, 'ROLES_MISMATCH');
      sub.unsubscribe();
    });

    for (const [bad, name] of BAD_TOKEN_KINDS.entries()) {
      it(`${name}: CLOSE UNAUTHORIZED on the socket, Triplit's error over HTTP`, async () => {
        const { kind, token, http } = badTokens()[bad];
        assert.equal(kind, name);
        const raw = await openRaw(server, { token, ready: false });
        const closed = await raw.closedEvent;
        assert.equal(closed.code, 1008, kind);
        assert.deepEqual(closeReason(closed), { type: 'UNAUTHORIZED', retry: false }, kind);
        assert.ok(!raw.messages.some((m) => m.type === 'READY'), `${kind}: no READY`);
        const res = await call(server, '/fetch', { token, body: { query: { collectionName: 'todos' } } });
        assertTriplitError(res, http);
        // The published client reports it as a session error and stays closed.
        if (bad === 0) {
          const client = createClient(server, { token: null, autoConnect: false, schema: collections, roles });
          const errors = [];
          client.onSessionError((type) => errors.push(type));
          await client.startSession(token, true);
          await waitFor(() => errors.length === 1, { message: 'onSessionError' });
          assert.deepEqual(errors, ['UNAUTHORIZED']);
        }
      });
    }
  });

  // ---------------------------------------------------------------------------
  // `ferry dev` with TRIPLIT_EXTERNAL_JWT_SECRET (`triplit dev` for the reference).

  const DEV_SERVICE = serviceTokenFor('jwt-key-for-development-only');

  async function startDev(env) {
    const app = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-clerk-dev-'));
    const port = await freePort();
    const childEnv = { ...process.env };
    for (const k of Object.keys(childEnv)) if (k.startsWith('TRIPLIT_') || k.startsWith('CLERK_') || k.startsWith('FERRY_')) delete childEnv[k];
    Object.assign(childEnv, env);
    const [file, argv] =
      target === 'reference'
        ? [process.execPath, [TRIPLIT_CLI, 'dev', '--dbPort', String(port)]]
        : [FERRY_BIN, ['dev', '--dbPort', String(port), '--storage', 'memory']];
    const child = spawn(file, argv, { cwd: app, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    let exitInfo;
    const exited = new Promise((r) => child.on('exit', (code, signal) => r((exitInfo = { code, signal }))));
    const dev = {
      url: `http://127.0.0.1:${port}`,
      serviceToken: DEV_SERVICE,
      output: () => out,
      async stop() {
        if (!exitInfo) {
          child.kill('SIGTERM');
          const t = setTimeout(() => child.kill('SIGKILL'), 5000);
          await exited;
          clearTimeout(t);
        }
        fs.rmSync(app, { recursive: true, force: true });
      },
    };
    try {
      await waitFor(
        async () => {
          if (exitInfo) throw Object.assign(new Error(`dev server exited ${JSON.stringify(exitInfo)}:\n${out}`), { fatal: true });
          return (await fetch(dev.url + '/healthcheck', { signal: AbortSignal.timeout(2000) })).status === 200;
        },
        { timeout: 30_000, interval: 100, message: 'dev server up' }
      ).catch((e) => {
        throw new Error(`${e.message}\n${out}`);
      });
      await ok(dev, '/override-schema', { schema, failOnBackwardsIncompatibleChange: false });
    } catch (e) {
      await dev.stop();
      throw e;
    }
    return dev;
  }

  describe(`the guide with TRIPLIT_EXTERNAL_JWT_SECRET and ${target === 'reference' ? 'triplit dev' : 'ferry dev'}`, { concurrency: true }, () => {
    let dev;
    before(async () => {
      dev = await startDev({ TRIPLIT_EXTERNAL_JWT_SECRET: issuer.pemOneLine });
    });
    after(async () => {
      await dev?.stop();
    });

    it('the session outlives several token lifetimes, with live updates', async () => {
      await sessionOutlivesTokens(dev, { sub: 'user_dev', list: 'dev', rotations: 2, insert: serviceInsert(dev) });
    });

    it('users see only their own rows; a token signed by another key is UNAUTHORIZED', async () => {
      await serviceInsert(dev)({ id: 'dev-x', text: 'someone else’s', ownerId: 'user_other', list: 'dev-iso' });
      const { client } = await guideClient(dev, 'user_devB', { ttl: 60 });
      await client.insert('todos', { id: 'dev-b', text: 'mine', ownerId: 'user_devB', list: 'dev-iso' });
      const sub = await subscribeFulfilled(client, client.query('todos').Where('list', '=', 'dev-iso'));
      await waitFor(async () => (await ok(dev, '/fetch', { query: { collectionName: 'todos', where: [['id', '=', 'dev-b']] } })).length === 1, {
        message: 'write synced',
      });
      assert.deepEqual(sub.results().map((t) => t.id), ['dev-b']);
      sub.unsubscribe();
      const raw = await openRaw(dev, { token: await intruder.mint({ sub: 'user_devB' }), ready: false });
      assert.deepEqual(closeReason(await raw.closedEvent), { type: 'UNAUTHORIZED', retry: false });
    });
  });

  // ---------------------------------------------------------------------------
  // Ferry's own Clerk configuration (no equivalent upstream).

  const ferryOnly = target === 'reference' ? 'Ferry-only: the Clerk preset, JWKS URLs and OIDC discovery' : false;

  /** The `token refused` lines of a server started with --log-format json. */
  function refusalLines(server) {
    return server
      .output()
      .split('\n')
      .filter((l) => l.includes('token refused'))
      .map((l) => JSON.parse(l));
  }

  /** `ferry_auth_refusals_total` by reason, from GET /metrics. */
  async function refusalCounts(server) {
    const text = await (await fetch(server.url + '/metrics')).text();
    const counts = {};
    for (const m of text.matchAll(/^ferry_auth_refusals_total\{reason="([a-z_]+)"\} (\d+)/gm)) counts[m[1]] = Number(m[2]);
    return counts;
  }

  function tempConfig(text) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-clerk-config-'));
    const file = path.join(dir, 'ferry.toml');
    fs.writeFileSync(file, text);
    return { file, remove: () => fs.rmSync(dir, { recursive: true, force: true }) };
  }

  describe('Ferry: the Clerk preset (CLERK_PUBLISHABLE_KEY of ferry issuer)', { concurrency: true, skip: ferryOnly }, () => {
    let server;
    before(async () => {
      server = await startServer({
        schema,
        env: { CLERK_PUBLISHABLE_KEY: issuer.publishableKey, CLERK_AUTHORIZED_PARTIES: APP_ORIGIN },
        ferryArgs: ['--log-format', 'json'],
      });
    });
    after(async () => {
      await server?.stop();
    });

    it('the guide’s session outlives several token lifetimes, keys fetched from the issuer’s JWKS', async () => {
      await sessionOutlivesTokens(server, { sub: 'user_pk', list: 'pk', insert: serviceInsert(server) });
      assert.match(server.output(), /issuer keys loaded/);
    });

    it('no refresh: the idle socket outlives exp by the 5 s clock leeway, then closes with TOKEN_EXPIRED', async () => {
      const token = await clerkToken('user_leeway', 2);
      const exp = expOf(token);
      const raw = await openRaw(server, { token });
      raw.send({ type: 'CONNECT_QUERY', payload: { id: 'q', params: { collectionName: 'todos', where: [['list', '=', 'leeway']] } } });
      await raw.next('ENTITY_DATA');
      // Past exp, within the leeway: a server clock ahead of the browser's
      // must not end the session before the client's refresh arrives.
      await waitFor(() => Date.now() > exp * 1000 + 1500, { timeout: 5000, message: 'past exp' });
      await raw.roundTrip();
      const closed = await waitFor(() => raw.closed, { timeout: 10_000, message: 'closed after the leeway' });
      assert.ok(Date.now() >= (exp + 5) * 1000 - 100, `closed ${(exp + 5) * 1000 - Date.now()} ms before exp + leeway`);
      assert.equal(closed.code, 1008);
      assert.deepEqual(closeReason(closed), { type: 'TOKEN_EXPIRED', retry: false });
    });

    it('key rotation: after the issuer rolls its key, new tokens verify and older ones keep working', async () => {
      // Its own issuer and server: rotating the shared issuer would disturb
      // the other tests. Ferry refetches the JWKS for an unknown kid at most
      // once per refetch interval per issuer, counted from the fetch at
      // start (30 s by default; 2 s here), so the key is rolled after that.
      const own = await startIssuer();
      const server = await startServer({
        schema,
        env: { CLERK_PUBLISHABLE_KEY: own.publishableKey, FERRY_AUTH_REFETCH_INTERVAL_SECONDS: '2' },
      });
      const loaded = Date.now(); // the start-up fetch happened before the server answered
      try {
        const before = await own.mint({ sub: 'user_roll', ttl: 120 });
        const oldKid = decodeJwt(before).header.kid;
        const raw = await openRaw(server, { token: before });
        await serviceInsert(server)({ id: 'roll-1', text: 'mine', ownerId: 'user_roll', list: 'roll' });
        await waitFor(() => Date.now() > loaded + 2_500, { timeout: 10_000, interval: 100, message: 'refetch interval' });
        const kid = await own.rotate();
        assert.notEqual(kid, oldKid);
        const jwks = await (await fetch(own.jwksUrl)).json();
        assert.deepEqual(jwks.keys.map((k) => k.kid), [kid, oldKid], 'the JWKS publishes the new key and the previous one');
        const after = await own.mint({ sub: 'user_roll', ttl: 120 });
        assert.equal(decodeJwt(after).header.kid, kid);
        // A new session with the new key…
        const fresh = await openRaw(server, { token: after });
        const rows = await call(server, '/fetch', { token: after, body: { query: { collectionName: 'todos', where: [['list', '=', 'roll']] } } });
        assert.equal(rows.status, 200, rows.text);
        assert.deepEqual(rows.json.map((t) => t.id), ['roll-1']);
        // …the open one moves to it (same user, same roles)…
        raw.send({ type: 'UPDATE_TOKEN', payload: { token: after } });
        await raw.roundTrip();
        assert.equal(raw.closed, null);
        // …and a token minted before the rotation still verifies.
        assert.equal((await call(server, '/fetch', { token: before, body: { query: { collectionName: 'todos' } } })).status, 200);
        await raw.close();
        await fresh.close();
      } finally {
        await server.stop();
        await own.stop();
      }
    });

    it('tokens the preset refuses: UNAUTHORIZED on the socket, 401 over HTTP', async () => {
      const now = nowSec();
      const claims = { exp: now + 60, iat: now, iss: issuer.url, nbf: now - 5, sid: 'sess_x', sub: 'user_x', v: 2 };
      const cases = [
        ['no azp', await issuer.mint({ sub: 'user_x' })],
        ['another site’s azp', await issuer.mint({ sub: 'user_x', azp: 'https://evil.example' })],
        ['unknown kid (another key)', intruder.sign({ ...claims, azp: APP_ORIGIN })],
        ['another issuer', await intruder.mint({ sub: 'user_x', azp: APP_ORIGIN })],
        ['no sub', issuer.sign({ ...claims, azp: APP_ORIGIN, sub: undefined })],
      ];
      for (const [kind, token] of cases) {
        const raw = await openRaw(server, { token, ready: false });
        assert.deepEqual(closeReason(await raw.closedEvent), { type: 'UNAUTHORIZED', retry: false }, kind);
        const res = await call(server, '/fetch', { token, body: { query: { collectionName: 'todos' } } });
        assertTriplitError(res, { status: 401, name: 'InvalidTokenSignatureError' });
      }
    });
  });

  describe('Ferry: other ways to trust the issuer', { concurrency: true, skip: ferryOnly }, () => {
    const variants = [
      ['ferry.toml, clerk_publishable_key', () => `[[auth.issuers]]\nclerk_publishable_key = "${issuer.publishableKey}"\nauthorized_parties = ["${APP_ORIGIN}"]\n`],
      ['ferry.toml, jwks_url', () => `[[auth.issuers]]\nissuer = "${issuer.url}"\njwks_url = "${issuer.jwksUrl}"\n`],
      ['FERRY_OIDC_ISSUER (discovery)', null],
    ];
    for (const [name, toml] of variants) {
      it(`${name}: the guide's session works and another key is refused`, async () => {
        const config = toml ? tempConfig(toml()) : null;
        const env = config ? { FERRY_CONFIG: config.file } : { FERRY_OIDC_ISSUER: issuer.url };
        const server = await startServer({ schema, env });
        try {
          const { client, errors } = await guideClient(server, 'user_cfg', { ttl: 60 });
          await serviceInsert(server)({ id: 'cfg-1', text: 'mine', ownerId: 'user_cfg', list: 'cfg' });
          await serviceInsert(server)({ id: 'cfg-2', text: 'not mine', ownerId: 'user_zzz', list: 'cfg' });
          const sub = await subscribeFulfilled(client, client.query('todos').Where('list', '=', 'cfg'));
          assert.deepEqual(sub.results().map((t) => t.id), ['cfg-1']);
          assert.deepEqual(errors, []);
          sub.unsubscribe();
          await client.endSession();
          const raw = await openRaw(server, { token: intruder.sign({ sub: 'user_cfg', iss: issuer.url, exp: nowSec() + 60, azp: APP_ORIGIN }), ready: false });
          assert.deepEqual(closeReason(await raw.closedEvent), { type: 'UNAUTHORIZED', retry: false });
        } finally {
          await server.stop();
          config?.remove();
        }
      });
    }
  });

  describe('Ferry: why a token was refused (logs and /metrics)', { skip: ferryOnly && 'Ferry-only: refusal logs and metrics' }, () => {
    it('one `token refused` log line per refusal with reason, iss and kid, never the token; a counter per reason', async () => {
      const server = await startServer({
        schema,
        env: { EXTERNAL_JWT_SECRET: issuer.pemOneLine },
        ferryArgs: ['--log-format', 'json'],
      });
      try {
        const before = await refusalCounts(server);
        const cases = badTokens();
        for (const { token } of cases) {
          const raw = await openRaw(server, { token, ready: false });
          await raw.closedEvent;
          await call(server, '/fetch', { token, body: { query: { collectionName: 'todos' } } });
        }
        // Each token was refused twice (socket and HTTP).
        const expected = {};
        for (const { reason } of cases) expected[reason] = (expected[reason] ?? 0) + 2;
        await waitFor(async () => {
          const after = await refusalCounts(server);
          for (const [reason, n] of Object.entries(expected)) {
            assert.equal((after[reason] ?? 0) - (before[reason] ?? 0), n, `ferry_auth_refusals_total{reason="${reason}"}`);
          }
          return true;
        }, { message: 'refusal counters' });
        const lines = await waitFor(() => {
          const l = refusalLines(server);
          return l.length >= cases.length * 2 && l;
        }, { message: 'refusal log lines' });
        assert.equal(lines.length, cases.length * 2, 'one line per refusal');
        for (const { kind, token, reason } of cases) {
          const { header, payload } = token.includes('.') ? decodeJwt(token) : { header: {}, payload: {} };
          const mine = lines.filter((l) => l.fields.reason === reason && (l.fields.kid ?? '') === (header.kid ?? '') && (l.fields.alg ?? '') === (header.alg ?? ''));
          assert.ok(mine.length >= 2, `${kind}: log lines with reason ${reason}, kid and alg; got ${JSON.stringify(lines.map((l) => l.fields))}`);
          for (const l of mine) assert.equal(l.fields.iss, payload.iss ?? '', `${kind}: iss`);
        }
        const log = server.output();
        for (const { kind, token } of cases) {
          if (token === 'garbage') continue; // a word, not a secret
          for (const part of token.split('.').filter((p) => p.length > 20)) {
            assert.ok(!log.includes(part), `${kind}: the token (or a part of it) is not logged`);
          }
        }
      } finally {
        await server.stop();
      }
    });
  });
});
