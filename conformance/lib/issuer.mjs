// `ferry issuer`, the local stand-in for Clerk, as a test fixture.
//
//   const issuer = await startIssuer();
//   issuer.url             http://127.0.0.1:<port> (the `iss` of its tokens)
//   issuer.publishableKey  pk_test_… for CLERK_PUBLISHABLE_KEY
//   issuer.pemOneLine      its PEM public key on one line (the Clerk guide's
//                          EXTERNAL_JWT_SECRET / TRIPLIT_EXTERNAL_JWT_SECRET)
//   issuer.kid, issuer.privatePem (from its --keys file, for crafting
//                          negative tokens with the issuer's own key)
//   await issuer.mint({ sub, ttl, azp, email })   GET /token → a real RS256 token
//   issuer.sign(claims, { header })               any claims, signed with its key
//   await issuer.rotate()                         POST /rotate: a new key (and kid)
//   await issuer.stop()
//
// The issuer is always the ferry binary (FERRY_BIN), whatever FERRY_TARGET
// says: it only mints tokens, and the reference server verifies them too.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import crypto from 'node:crypto';

const conformanceDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const FERRY_BIN = path.resolve(conformanceDir, process.env.FERRY_BIN || '../target/debug/ferry');

const live = new Set();
process.on('exit', () => {
  for (const child of live) {
    try {
      child.kill('SIGKILL');
    } catch {}
  }
});

/** Decode a JWT's header and payload without verifying it. */
export function decodeJwt(token) {
  const [h, p] = token.split('.');
  return {
    header: JSON.parse(Buffer.from(h, 'base64url').toString()),
    payload: JSON.parse(Buffer.from(p, 'base64url').toString()),
  };
}

/** Start `ferry issuer --port 0 --keys <temp file>` and read its banner. */
export async function startIssuer({ timeout = 20_000 } = {}) {
  if (!fs.existsSync(FERRY_BIN)) {
    throw new Error(`ferry binary not found at ${FERRY_BIN} (needed for \`ferry issuer\`); build it or set FERRY_BIN`);
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-issuer-'));
  const keysFile = path.join(dir, 'issuer.pem');
  const child = spawn(FERRY_BIN, ['issuer', '--port', '0', '--keys', keysFile], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  exited.then(() => live.delete(child));
  let exitInfo;
  exited.then((info) => (exitInfo = info));
  const deadline = Date.now() + timeout;
  // The banner ends with the multi-line PEM public key.
  while (!/^-----END PUBLIC KEY-----$/m.test(out)) {
    if (exitInfo) throw new Error(`ferry issuer exited (${JSON.stringify(exitInfo)}):\n${out}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`ferry issuer printed no banner within ${timeout} ms:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  const field = (re) => {
    const m = out.match(re);
    if (!m) throw new Error(`ferry issuer banner lacks ${re}:\n${out}`);
    return m[1];
  };
  const url = field(/Issuer:\s+(http:\/\/127\.0\.0\.1:\d+)/);
  const publishableKey = field(/CLERK_PUBLISHABLE_KEY=(pk_test_\S+)/);
  const pemOneLine = field(/TRIPLIT_EXTERNAL_JWT_SECRET="([^"]+)"/);
  let kid = field(/Key id:\s+(\S+)/);
  const pem = field(/^(-----BEGIN PUBLIC KEY-----\n[\s\S]*?\n-----END PUBLIC KEY-----)$/m);
  let privatePem = fs.readFileSync(keysFile, 'utf8');

  const issuer = {
    url,
    publishableKey,
    pemOneLine,
    pem,
    kid,
    privatePem,
    jwksUrl: `${url}/.well-known/jwks.json`,
    output: () => out,
    /** A fresh Clerk-shaped token from GET /token (ttl in seconds; 60 by default, as Clerk's). */
    async mint({ sub = 'user_A', ttl, azp, email, sid } = {}) {
      const params = new URLSearchParams({ sub });
      if (ttl !== undefined) params.set('ttl', String(ttl));
      if (azp !== undefined) params.set('azp', azp);
      if (email !== undefined) params.set('email', email);
      if (sid !== undefined) params.set('sid', sid);
      const res = await fetch(`${url}/token?${params}`);
      const text = await res.text();
      if (res.status !== 200) throw new Error(`ferry issuer /token → ${res.status}: ${text}`);
      return text.trim();
    },
    /**
     * Sign any `claims` (nothing is checked or added) with the issuer's own
     * private key: RS256, header `{alg, kid, typ}` unless `header` overrides.
     */
    sign(claims, { header = {} } = {}) {
      const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
      const input = `${b64({ alg: 'RS256', kid, typ: 'JWT', ...header })}.${b64(claims)}`;
      return `${input}.${crypto.sign('sha256', Buffer.from(input), privatePem).toString('base64url')}`;
    },
    /** POST /rotate: a new signing key (the JWKS keeps the previous one too); returns the new kid. */
    async rotate() {
      const res = await fetch(`${url}/rotate`, { method: 'POST' });
      const text = (await res.text()).trim();
      if (res.status !== 200) throw new Error(`ferry issuer /rotate → ${res.status}: ${text}`);
      kid = issuer.kid = text;
      privatePem = issuer.privatePem = fs.readFileSync(keysFile, 'utf8');
      return text;
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(t);
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  return issuer;
}
