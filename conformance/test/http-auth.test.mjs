// Bearer authentication, token verification and the service-key check.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import jwt from 'jsonwebtoken';
import { startServer } from '../lib/server.mjs';
import { call } from '../lib/http.mjs';
import { signToken } from '../lib/tokens.mjs';
import { assertTriplitError } from '../lib/expect.mjs';

const nowSec = () => Math.floor(Date.now() / 1000);
const anonClaims = { 'x-triplit-token-type': 'anon', 'x-triplit-project-id': 'local-project-id' };

let server;
before(async () => {
  server = await startServer();
});
after(async () => {
  await server?.stop();
});

const query = { query: { collectionName: 'auth_probe' } };
const fetchWith = (opts) => call(server, '/fetch', { body: query, ...opts });

describe('the Authorization header', () => {
  it('missing → 401 NoTokenProvidedError', async () => {
    const body = assertTriplitError(await fetchWith({ token: null }), {
      status: 401,
      name: 'NoTokenProvidedError',
    });
    assert.equal(body.baseMessage, 'No token provided.');
    assert.equal(body.contextMessage, 'Missing authorization header');
  });

  for (const header of ['Basic dXNlcjpwYXNz', 'bearer ' + 'x.y.z', 'Token abc']) {
    it(`a scheme other than "Bearer" (${header.split(' ')[0]}) → 401 InvalidAuthenticationSchemeError`, async () => {
      const body = assertTriplitError(await fetchWith({ token: null, headers: { Authorization: header } }), {
        status: 401,
        name: 'InvalidAuthenticationSchemeError',
      });
      assert.equal(body.baseMessage, 'Must use Bearer authentication scheme.');
    });
  }

  for (const header of ['Bearer', 'Bearer ']) {
    it(`"${header}" with no token → 401 NoTokenProvidedError`, async () => {
      const body = assertTriplitError(await fetchWith({ token: null, headers: { Authorization: header } }), {
        status: 401,
        name: 'NoTokenProvidedError',
      });
      assert.equal(body.contextMessage, 'Missing authorization token');
    });
  }
});

describe('token verification', () => {
  for (const token of ['garbage', 'a.b.c', 'eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.sig']) {
    it(`an undecodable token (${token.slice(0, 12)}) → 400 InvalidTokenPayloadError`, async () => {
      const body = assertTriplitError(await fetchWith({ token }), { status: 400, name: 'InvalidTokenPayloadError' });
      assert.equal(body.baseMessage, 'The token payload is invalid.');
    });
  }

  it('a bad signature → 401 InvalidTokenSignatureError', async () => {
    const token = signToken(anonClaims, { secret: 'some-other-secret' });
    const body = assertTriplitError(await fetchWith({ token }), { status: 401, name: 'InvalidTokenSignatureError' });
    assert.equal(body.baseMessage, 'The signature on your token could not be verified successfully.');
  });

  it('a tampered payload → 401 InvalidTokenSignatureError', async () => {
    const [h, , s] = server.anonToken.split('.');
    const payload = Buffer.from(JSON.stringify({ 'x-triplit-token-type': 'secret' })).toString('base64url');
    assertTriplitError(await fetchWith({ token: `${h}.${payload}.${s}` }), {
      status: 401,
      name: 'InvalidTokenSignatureError',
    });
  });

  it('an expired token → 401 InvalidTokenSignatureError', async () => {
    for (const token of [
      signToken({ ...anonClaims, exp: nowSec() - 1 }),
      signToken(anonClaims, { expiresIn: -3600, noTimestamp: false }),
    ]) {
      assertTriplitError(await fetchWith({ token }), { status: 401, name: 'InvalidTokenSignatureError' });
    }
  });

  it('a token that is not valid yet (nbf in the future) → 401 InvalidTokenSignatureError', async () => {
    const token = signToken({ ...anonClaims, nbf: nowSec() + 3600 });
    assertTriplitError(await fetchWith({ token }), { status: 401, name: 'InvalidTokenSignatureError' });
  });

  it('alg "none" is rejected', async () => {
    const token = jwt.sign(anonClaims, null, { algorithm: 'none' });
    assertTriplitError(await fetchWith({ token }), { status: 401, name: 'InvalidTokenSignatureError' });
  });

  it('accepts HS256, HS384 and HS512, with or without exp/iat', async () => {
    const tokens = [
      signToken(anonClaims),
      signToken(anonClaims, { algorithm: 'HS384' }),
      signToken(anonClaims, { algorithm: 'HS512' }),
      signToken(anonClaims, { expiresIn: 3600, noTimestamp: false }),
      signToken({ ...anonClaims, nbf: nowSec() - 10 }),
    ];
    for (const token of tokens) {
      const res = await fetchWith({ token });
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.json, []);
    }
  });

  it('the project id claim is not checked', async () => {
    const token = signToken({ 'x-triplit-token-type': 'anon', 'x-triplit-project-id': 'some-other-project' });
    assert.equal((await fetchWith({ token })).status, 200);
    assert.equal((await fetchWith({ token: signToken({ 'x-triplit-token-type': 'anon' }) })).status, 200);
  });

  it('a token without triplit claims (external) falls back to JWT_SECRET when no EXTERNAL_JWT_SECRET is set', async () => {
    assert.equal((await fetchWith({ token: signToken({ sub: 'user-1' }) })).status, 200);
    assertTriplitError(await fetchWith({ token: signToken({ sub: 'user-1' }, { secret: 'elsewhere' }) }), {
      status: 401,
      name: 'InvalidTokenSignatureError',
    });
  });

  it('routes that only need a token accept a user token', async () => {
    const token = signToken({ sub: 'user-1', role: 'member' });
    const res = await call(server, '/insert', {
      body: { collectionName: 'auth_user_writes', entity: { id: 'u1', v: 1 } },
      token,
    });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json, { id: 'u1', v: 1 });
  });
});

describe('admin routes need the service token', () => {
  const adminRoutes = [
    ['/clear', {}],
    ['/stats', {}],
    ['/schema', {}],
    ['/override-schema', { schema: { collections: {} } }],
    ['/apply-changes', { changes: { json: {} } }],
    ['/delete-all', { collectionName: 'auth_probe' }],
    ['/webhooks-get', {}],
    ['/webhooks-push', { webhooks: [] }],
    ['/webhooks-clear', {}],
  ];
  const nonAdmin = {
    anon: () => server.anonToken,
    user: () => signToken({ sub: 'user-1' }),
    test: () => signToken({ 'x-triplit-token-type': 'test' }),
  };
  for (const [path, body] of adminRoutes) {
    it(`${path} → 401 ServiceKeyRequiredError without it`, async () => {
      for (const [kind, token] of Object.entries(nonAdmin)) {
        const res = await call(server, path, { body, token: token() });
        const err = assertTriplitError(res, { status: 401, name: 'ServiceKeyRequiredError' });
        assert.equal(err.message, 'Service token required.', kind);
      }
    });
  }

  it('the service token passes the check', async () => {
    assert.equal((await call(server, '/stats', { body: {} })).status, 200);
    assert.equal((await call(server, '/webhooks-get', { body: {} })).status, 200);
  });
});

describe('EXTERNAL_JWT_SECRET', () => {
  const external = 'the-external-auth-provider-secret';
  let ext;
  before(async () => {
    ext = await startServer({ env: { EXTERNAL_JWT_SECRET: external } });
  });
  after(async () => {
    await ext?.stop();
  });

  it('verifies tokens without triplit claims with the external secret', async () => {
    const res = await call(ext, '/fetch', { body: query, token: signToken({ sub: 'u' }, { secret: external }) });
    assert.equal(res.status, 200, res.text);
  });

  it('no longer accepts external tokens signed with JWT_SECRET', async () => {
    assertTriplitError(await call(ext, '/fetch', { body: query, token: signToken({ sub: 'u' }) }), {
      status: 401,
      name: 'InvalidTokenSignatureError',
    });
  });

  it('still verifies triplit-typed tokens with JWT_SECRET only', async () => {
    assert.equal((await call(ext, '/fetch', { body: query, token: ext.anonToken })).status, 200);
    assert.equal((await call(ext, '/stats', { body: {} })).status, 200);
    assertTriplitError(
      await call(ext, '/fetch', { body: query, token: signToken(anonClaims, { secret: external }) }),
      { status: 401, name: 'InvalidTokenSignatureError' }
    );
  });
});
