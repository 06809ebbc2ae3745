// Public and trivial routes, routing of unknown paths, CORS.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../lib/server.mjs';
import { call } from '../lib/http.mjs';
import { assertTriplitError } from '../lib/expect.mjs';

let server;
before(async () => {
  server = await startServer();
});
after(async () => {
  await server?.stop();
});

describe('GET /healthcheck', () => {
  it('answers 200 "OK" as text without a token', async () => {
    const res = await call(server, '/healthcheck', { method: 'GET', token: null });
    assert.equal(res.status, 200);
    assert.equal(res.text, 'OK');
    assert.match(res.headers.get('content-type'), /^text\/plain/);
    assert.equal(res.headers.get('access-control-allow-origin'), '*');
  });

  it('ignores a query string and a bad token', async () => {
    const res = await call(server, '/healthcheck?probe=1', { method: 'GET', token: 'not-a-jwt' });
    assert.equal(res.status, 200);
    assert.equal(res.text, 'OK');
  });

  it('is GET only: POST /healthcheck needs a token and is then a RouteNotFoundError', async () => {
    const noToken = await call(server, '/healthcheck', { body: {}, token: null });
    assertTriplitError(noToken, { status: 401, name: 'NoTokenProvidedError' });
    const res = await call(server, '/healthcheck', { body: {}, token: server.anonToken });
    assertTriplitError(res, {
      status: 404,
      name: 'RouteNotFoundError',
      message: 'The server does not have a handler for this request: /healthcheck',
    });
  });
});

describe('GET /version', () => {
  for (const kind of ['anonToken', 'serviceToken']) {
    it(`answers "1.0.0" as text with the ${kind}`, async () => {
      const res = await call(server, '/version', { method: 'GET', token: server[kind] });
      assert.equal(res.status, 200);
      assert.equal(res.text, '1.0.0');
      assert.match(res.headers.get('content-type'), /^text\/plain/);
    });
  }

  it('needs a valid token', async () => {
    assertTriplitError(await call(server, '/version', { method: 'GET', token: null }), {
      status: 401,
      name: 'NoTokenProvidedError',
    });
    assertTriplitError(await call(server, '/version', { method: 'GET', token: 'garbage' }), {
      status: 400,
      name: 'InvalidTokenPayloadError',
    });
  });

  it('is GET only: POST /version is a RouteNotFoundError', async () => {
    assertTriplitError(await call(server, '/version', { body: {} }), {
      status: 404,
      name: 'RouteNotFoundError',
      message: 'The server does not have a handler for this request: /version',
    });
  });
});

describe('unknown routes', () => {
  // Every POST /<segment> that is not a route is a RouteNotFoundError whose
  // message names the path (clients and the CLI show it).
  const paths = ['/nope', '/insert-triples', '/delete-triples', '/queryTriples', '/query-triples', '/fetch/extra', '/fetch/', '/'];
  for (const path of paths) {
    it(`POST ${path} → 404 RouteNotFoundError`, async () => {
      const res = await call(server, path, { body: {} });
      const body = assertTriplitError(res, { status: 404, name: 'RouteNotFoundError' });
      assert.equal(body.message, `The server does not have a handler for this request: ${path}`);
      assert.equal(body.baseMessage, body.message);
      assert.equal(body.contextMessage, undefined);
      assert.equal(res.headers.get('access-control-allow-origin'), '*');
    });
  }

  it('authenticates before routing: an unknown path without a token is a 401', async () => {
    assertTriplitError(await call(server, '/nope', { body: {}, token: null }), {
      status: 401,
      name: 'NoTokenProvidedError',
    });
  });

  it('other methods on unknown or POST-only paths are a plain 404', async () => {
    for (const [method, path] of [
      ['GET', '/fetch'],
      ['PUT', '/nope'],
      ['GET', '/nope'],
    ]) {
      const res = await call(server, path, { method, token: server.anonToken });
      assert.equal(res.status, 404, `${method} ${path}`);
    }
  });

  it('GET / without a WebSocket upgrade: 401 without a token, 404 with one', async () => {
    assertTriplitError(await call(server, '/', { method: 'GET', token: null }), {
      status: 401,
      name: 'NoTokenProvidedError',
    });
    const res = await call(server, '/', { method: 'GET', token: server.anonToken });
    assert.equal(res.status, 404);
  });
});

describe('CORS', () => {
  const preflight = (path, headers = {}) =>
    fetch(server.url + path, {
      method: 'OPTIONS',
      headers: { Origin: 'http://app.example', 'Access-Control-Request-Method': 'POST', ...headers },
    });

  for (const path of ['/fetch', '/update-token', '/healthcheck', '/nope', '/']) {
    it(`answers the preflight OPTIONS ${path} with 204 before auth`, async () => {
      const res = await preflight(path, { 'Access-Control-Request-Headers': 'authorization,content-type,x-custom' });
      assert.equal(res.status, 204);
      assert.equal(await res.text(), '');
      assert.equal(res.headers.get('access-control-allow-origin'), '*');
      assert.equal(res.headers.get('access-control-allow-methods'), 'GET,HEAD,PUT,POST,DELETE,PATCH');
      // The requested headers are echoed back.
      assert.equal(res.headers.get('access-control-allow-headers'), 'authorization,content-type,x-custom');
      assert.match(res.headers.get('vary') ?? '', /Access-Control-Request-Headers/i);
    });
  }

  it('a preflight without Access-Control-Request-Headers allows no extra headers', async () => {
    const res = await preflight('/fetch');
    assert.equal(res.status, 204);
    assert.equal(res.headers.get('access-control-allow-origin'), '*');
    assert.equal(res.headers.get('access-control-allow-headers'), null);
  });

  it('puts access-control-allow-origin: * on successes and on errors', async () => {
    const withOrigin = { Origin: 'http://app.example' };
    const results = [
      await call(server, '/fetch', { body: { query: { collectionName: 'cors_x' } }, token: server.anonToken, headers: withOrigin }),
      await call(server, '/fetch', { body: { query: { collectionName: 'cors_x' } }, token: null, headers: withOrigin }),
      await call(server, '/fetch', { body: {}, token: 'garbage', headers: withOrigin }),
      await call(server, '/stats', { body: {}, token: server.anonToken, headers: withOrigin }),
      await call(server, '/nope', { body: {}, headers: withOrigin }),
      await call(server, '/version', { method: 'GET', headers: withOrigin }),
      await call(server, '/fetch', { body: { query: {} } }),
    ];
    assert.deepEqual(
      results.map((r) => r.status),
      [200, 401, 400, 401, 404, 200, 400]
    );
    for (const r of results) assert.equal(r.headers.get('access-control-allow-origin'), '*');
  });
});
