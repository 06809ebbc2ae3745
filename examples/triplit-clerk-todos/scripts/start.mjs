#!/usr/bin/env node
// One command for the whole app: Ferry (embedded SQLite storage), the local
// Clerk stand-in (`ferry issuer`, unless a real Clerk key is configured)
// and the Vite dev server. `npm start` or `./run`; Ctrl-C stops everything.
//
// Settings (environment, or .env / .env.local for the VITE_ ones):
//   VITE_CLERK_PUBLISHABLE_KEY  sign in with this Clerk app instead of the stand-in
//   FERRY_AUTH_FLOW             how Ferry trusts the tokens: clerk-key (default:
//                               CLERK_PUBLISHABLE_KEY) or pem (TRIPLIT_EXTERNAL_JWT_SECRET)
//   LOCAL_TOKEN_TTL             lifetime of the stand-in's tokens in seconds (default 60)
//   FERRY_PORT, ISSUER_PORT, APP_PORT   6543, 6544, 5173
//   FERRY_BIN                   the ferry binary (default: cargo build -p ferry)
import { watch } from 'node:fs';
import { resolve } from 'node:path';
import { loadEnv, createServer } from 'vite';
import { APP_DIR, AUTH_FLOWS, ferryAuthEnv, resolveFerry, startFerry, startIssuer } from './stack.mjs';
import { writeSchemaJson } from './schema-json.mjs';

const env = { ...loadEnv('development', APP_DIR, ['VITE_']), ...process.env };
const port = (name, fallback) => {
  const value = Number(env[name] ?? fallback);
  if (!Number.isInteger(value) || value < 0 || value > 65535) throw new Error(`${name} must be a port number`);
  return value;
};
const ferryPort = port('FERRY_PORT', 6543);
const issuerPort = port('ISSUER_PORT', 6544);
const appPort = port('APP_PORT', 5173);
const clerkKey = env.VITE_CLERK_PUBLISHABLE_KEY || '';
const flow = env.FERRY_AUTH_FLOW || 'clerk-key';
if (!AUTH_FLOWS.includes(flow)) throw new Error(`FERRY_AUTH_FLOW must be one of ${AUTH_FLOWS.join(', ')}`);
const origins = [`http://127.0.0.1:${appPort}`, `http://localhost:${appPort}`];

const DATA = resolve(APP_DIR, 'triplit/.data');
const SCHEMA_JSON = resolve(DATA, 'schema.json');
const log = (line) => console.log(`[start] ${line}`);
const echo = (name) => (chunk, stream) => {
  if (stream === 'stderr') process.stderr.write(chunk.replace(/^(?=.)/gm, `[${name}] `));
};

const ferryBin = resolveFerry({ log });
await writeSchemaJson(SCHEMA_JSON);

let issuer;
let ferryEnv;
if (clerkKey) {
  // Real Clerk: Ferry fetches the Clerk instance's keys itself.
  ferryEnv =
    flow === 'clerk-key'
      ? { CLERK_PUBLISHABLE_KEY: env.CLERK_PUBLISHABLE_KEY || clerkKey, CLERK_AUTHORIZED_PARTIES: env.CLERK_AUTHORIZED_PARTIES || origins.join(',') }
      : {}; // pem: TRIPLIT_EXTERNAL_JWT_SECRET comes from your environment or .env (ferry dev loads it)
  if (flow === 'pem' && !env.TRIPLIT_EXTERNAL_JWT_SECRET && !loadEnv('development', APP_DIR, ['TRIPLIT_']).TRIPLIT_EXTERNAL_JWT_SECRET) {
    throw new Error('FERRY_AUTH_FLOW=pem needs TRIPLIT_EXTERNAL_JWT_SECRET (Clerk dashboard → API keys → Show JWT public key)');
  }
} else {
  // The key is kept, so tokens and the key id survive restarts.
  issuer = await startIssuer({ ferryBin, port: issuerPort, keys: resolve(DATA, 'issuer-key.pem'), echo: echo('issuer') });
  ferryEnv = ferryAuthEnv(flow, issuer, origins);
}

const ferryOptions = { ferryBin, port: ferryPort, schema: SCHEMA_JSON, cwd: APP_DIR, env: ferryEnv, echo: echo('ferry') };
let ferry = await startFerry(ferryOptions);

// The app reads these at start (import.meta.env).
process.env.VITE_TRIPLIT_SERVER_URL = ferry.url;
if (issuer) process.env.VITE_LOCAL_ISSUER_URL = issuer.url;
if (env.LOCAL_TOKEN_TTL) process.env.VITE_LOCAL_TOKEN_TTL = env.LOCAL_TOKEN_TTL;
const vite = await createServer({
  root: APP_DIR,
  server: { host: '127.0.0.1', port: appPort, strictPort: true },
});
await vite.listen();
const appUrl = vite.resolvedUrls?.local[0] ?? `http://127.0.0.1:${appPort}/`;

// Saving triplit/schema.ts regenerates the JSON and restarts Ferry on the
// same data (clients reconnect by themselves).
let restarting = Promise.resolve();
let debounce;
watch(resolve(APP_DIR, 'triplit/schema.ts'), () => {
  clearTimeout(debounce);
  debounce = setTimeout(() => {
    restarting = restarting.then(async () => {
      try {
        await writeSchemaJson(SCHEMA_JSON);
        await ferry.stop();
        ferry = await startFerry(ferryOptions);
        log('triplit/schema.ts changed: schema reloaded, Ferry restarted');
      } catch (e) {
        log(`the schema could not be loaded: ${e.message.split('\n')[0]}`);
        log('fix triplit/schema.ts and save again');
      }
    });
  }, 200);
});

const auth = clerkKey
  ? `Clerk (${clerkKey.slice(0, 16)}…); Ferry trusts it via ${flow === 'clerk-key' ? 'CLERK_PUBLISHABLE_KEY' : 'TRIPLIT_EXTERNAL_JWT_SECRET'}`
  : `local Clerk stand-in at ${issuer.url} (ferry issuer, ${env.LOCAL_TOKEN_TTL || 60} s tokens); Ferry trusts it via ${
      flow === 'clerk-key' ? `CLERK_PUBLISHABLE_KEY=${issuer.publishableKey}` : 'TRIPLIT_EXTERNAL_JWT_SECRET (its PEM)'
    }`;
console.log(`
  Triplit + Clerk todos, on Ferry

  App:    ${appUrl}
  Ferry:  ${ferry.url}  (data in triplit/.data/ferry/, schema from triplit/schema.ts)
  Auth:   ${auth}

  Open the app in two windows (or a normal and a private one) and sign in as
  two users to watch changes sync. Ctrl-C stops everything.
`);

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  await restarting;
  await Promise.allSettled([vite.close(), ferry.stop(), issuer?.stop()]);
  process.exit(0);
}
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
