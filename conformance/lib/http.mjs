// Raw HTTP helpers around fetch, so tests can assert on status, headers and
// exact bodies. `HttpClient` from @triplit/client is used directly in tests.
import http from 'node:http';
import { HttpClient } from '@triplit/client';

/**
 * POST (by default) `path` with a JSON body and a Bearer token.
 *   body:    a value to JSON.stringify, or { raw: string|FormData|Buffer } to send as is
 *   token:   the Bearer token; null sends no Authorization header
 *   headers: extra/overriding headers
 * Resolves to { status, headers, text, json } (json is undefined when the body is not JSON).
 */
export async function call(server, path, { body, token = server.serviceToken, method = 'POST', headers = {} } = {}) {
  const h = {};
  let payload;
  if (body !== undefined) {
    if (body && typeof body === 'object' && 'raw' in body) {
      payload = body.raw;
    } else {
      payload = JSON.stringify(body);
      h['Content-Type'] = 'application/json';
    }
  }
  if (token !== null) h.Authorization = 'Bearer ' + token;
  Object.assign(h, headers);
  const res = await fetch(server.url + path, { method, headers: h, body: payload });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: res.status, headers: res.headers, text, json };
}

/** POST and expect a 200; returns the parsed JSON body (or the text if not JSON). */
export async function ok(server, path, body, token) {
  const r = await call(server, path, { body, token });
  if (r.status !== 200) {
    throw new Error(`${path} → ${r.status} ${r.text}`);
  }
  return r.json === undefined ? r.text : r.json;
}

/** A published-client HttpClient pointed at the server. `schema` is the collections object. */
export function httpClient(server, { token = server.serviceToken, schema } = {}) {
  return new HttpClient({ serverUrl: server.url, token, schema });
}

/** A collection name unique to this process and call, so tests never share data. */
let seq = 0;
export function uniqueName(prefix = 'c') {
  return `${prefix}_${process.pid}_${++seq}`;
}

/**
 * One request on a fresh connection (node:http, no keep-alive pool), for
 * requests after which a server may drop the connection, such as a 413 sent
 * before the body was read. Same result shape as `call()`.
 */
export function request(server, path, { method = 'POST', body, token = server.serviceToken, headers = {}, chunked = false } = {}) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(body);
    const h = { ...headers };
    if (token !== null) h.Authorization = 'Bearer ' + token;
    if (data && !chunked) h['Content-Length'] = String(data.length);
    const req = http.request(server.url + path, { method, headers: h, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json;
        try {
          json = JSON.parse(text);
        } catch {}
        resolve({ status: res.statusCode, headers: new Headers(res.headers), text, json });
      });
      res.on('error', reject);
    });
    // A server may answer and close before it has read the whole body; the
    // response still counts, so a write error after it is ignored.
    req.on('error', reject);
    if (data && chunked) {
      // Transfer-Encoding: chunked, 64 KiB at a time.
      for (let i = 0; i < data.length; i += 65536) req.write(data.subarray(i, i + 65536));
      req.end();
    } else if (data) req.end(data);
    else req.end();
  });
}

/** A multipart/form-data body with one text field, built by hand. */
export function multipartBody(field, value) {
  const boundary = '----ferryconformance' + Math.random().toString(16).slice(2);
  const body = Buffer.concat([
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${field}"\r\n\r\n`),
    Buffer.from(value),
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
  return { body, contentType: `multipart/form-data; boundary=${boundary}` };
}
