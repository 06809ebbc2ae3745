// Starts the server under test: the ferry binary (default) or the reference
// @triplit/server 1.1.8, chosen by FERRY_TARGET=ferry|reference.
//
// Both are started the same way, as a child process:
//
//   <program> serve --host 127.0.0.1 --port <free port>
//   env JWT_SECRET=<test secret>
//       LOCAL_DATABASE_URL=<fresh temp dir>/ferry.db
//       EXTERNAL_JWT_SECRET=…   (only when the test gives one)
//       MAX_BODY_SIZE=…         (only when the test gives one; in MB)
//
// and are ready when GET /healthcheck answers 200.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TEST_SECRET, anonTokenFor, serviceTokenFor } from './tokens.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const conformanceDir = path.resolve(here, '..');

export const target = process.env.FERRY_TARGET || 'ferry';
if (target !== 'ferry' && target !== 'reference') {
  throw new Error(`FERRY_TARGET must be "ferry" or "reference", not ${JSON.stringify(target)}`);
}

const READY_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 5_000;

const live = new Set();
process.on('exit', () => {
  for (const child of live) {
    try {
      child.kill('SIGKILL');
    } catch {}
  }
});

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function command(port, ferryArgs = []) {
  const cliArgs = ['serve', '--host', '127.0.0.1', '--port', String(port)];
  if (target === 'reference') {
    return { file: process.execPath, args: [path.join(here, 'reference-runner.mjs'), ...cliArgs] };
  }
  const bin = path.resolve(conformanceDir, process.env.FERRY_BIN || '../target/debug/ferry');
  if (!fs.existsSync(bin)) {
    throw new Error(
      `ferry binary not found at ${bin}; build it (cargo build) or set FERRY_BIN, ` +
        `or run against the reference with FERRY_TARGET=reference`
    );
  }
  return { file: bin, args: [...cliArgs, ...ferryArgs] };
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Start a server.
 *   schema: a DBSchema (`{collections, roles?}`) pushed with POST /override-schema
 *   env:    extra environment, e.g. { MAX_BODY_SIZE: '1', EXTERNAL_JWT_SECRET: '…' };
 *           JWT_SECRET may be overridden too.
 *   ferryArgs: extra flags for the ferry binary only (e.g. ['--log-format', 'json']);
 *           the reference runner gets none.
 * Returns { url, port, dbPath, serviceToken, anonToken, output(), stop(), kill(), down(), restart() }.
 */
export async function startServer({ schema, env = {}, ferryArgs = [] } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-conformance-'));
  const dbPath = path.join(dir, 'ferry.db');
  let port = await freePort();
  const jwtSecret = env.JWT_SECRET ?? TEST_SECRET;
  const childEnv = { ...process.env, JWT_SECRET: jwtSecret, LOCAL_DATABASE_URL: dbPath };
  // The harness must not inherit these from the shell running the suite.
  delete childEnv.EXTERNAL_JWT_SECRET;
  delete childEnv.MAX_BODY_SIZE;
  delete childEnv.DATABASE_URL;
  for (const k of ['CLERK_PUBLISHABLE_KEY', 'CLERK_AUTHORIZED_PARTIES', 'FERRY_CONFIG', 'FERRY_OIDC_ISSUER', 'FERRY_JWKS_URL', 'FERRY_JWKS_ISSUER']) {
    delete childEnv[k];
  }
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete childEnv[k];
    else childEnv[k] = String(v);
  }
  let url = `http://127.0.0.1:${port}`;
  let child;
  let logs = '';

  async function launch() {
    const { file, args } = command(port, ferryArgs);
    logs = '';
    child = spawn(file, args, { env: childEnv, cwd: conformanceDir, stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(child);
    const me = child;
    const keep = (d) => {
      logs = (logs + d).slice(-20_000);
    };
    me.stdout.on('data', keep);
    me.stderr.on('data', keep);
    me.exited = new Promise((resolve) => {
      me.on('exit', (code, signal) => resolve({ code, signal }));
      me.on('error', (e) => resolve({ error: e.message })); // e.g. not executable
    });
    me.exited.then(() => live.delete(me));
    const deadline = Date.now() + READY_TIMEOUT_MS;
    let exitInfo;
    me.exited.then((info) => (exitInfo = info));
    while (Date.now() < deadline) {
      if (exitInfo) {
        const err = new Error(
          `server exited before it was ready (${JSON.stringify(exitInfo)}): ${file} ${args.join(' ')}\n${logs}`
        );
        err.exitedEarly = true;
        throw err;
      }
      try {
        const res = await fetch(url + '/healthcheck', { signal: AbortSignal.timeout(2000) });
        if (res.status === 200) return;
      } catch {}
      await sleep(50);
    }
    me.kill('SIGKILL');
    throw new Error(`server not ready within ${READY_TIMEOUT_MS} ms: ${file} ${args.join(' ')}\n${logs}`);
  }

  async function halt(signal) {
    const me = child;
    if (!me || me.exitCode !== null || me.signalCode !== null) return;
    me.kill(signal);
    let timer;
    const timeout = new Promise((r) => (timer = setTimeout(() => r('timeout'), STOP_TIMEOUT_MS)));
    const outcome = await Promise.race([me.exited, timeout]);
    clearTimeout(timer);
    if (outcome === 'timeout') {
      me.kill('SIGKILL');
      await me.exited;
    }
  }

  // The free port may be taken by someone else before the server binds it
  // (test files run in parallel); then try another one.
  for (let attempt = 1; ; attempt++) {
    try {
      await launch();
      break;
    } catch (e) {
      const portClash = e.exitedEarly && /EADDRINUSE|address already in use/i.test(logs);
      if (!portClash || attempt >= 3) {
        fs.rmSync(dir, { recursive: true, force: true });
        throw e;
      }
      port = await freePort();
      url = `http://127.0.0.1:${port}`;
    }
  }

  const handle = {
    target,
    url,
    port,
    dbPath,
    jwtSecret,
    serviceToken: serviceTokenFor(jwtSecret),
    anonToken: anonTokenFor(jwtSecret),
    /** The server's recent stdout+stderr, for diagnostics. */
    output: () => logs,
    /** SIGTERM, wait for exit, remove the temp dir. */
    async stop() {
      await halt('SIGTERM');
      fs.rmSync(dir, { recursive: true, force: true });
    },
    /** SIGKILL (a crash), keep the database. */
    async kill() {
      await halt('SIGKILL');
    },
    /** Stop the process (SIGTERM, or SIGKILL with { crash: true }), keep the database; restart() starts it again. */
    async down({ crash = false } = {}) {
      await halt(crash ? 'SIGKILL' : 'SIGTERM');
    },
    /**
     * Stop the process (SIGTERM, or SIGKILL with { crash: true }) and start it
     * again on the same database and port.
     */
    async restart({ crash = false } = {}) {
      await halt(crash ? 'SIGKILL' : 'SIGTERM');
      await launch();
    },
  };

  if (schema) {
    const res = await fetch(url + '/override-schema', {
      method: 'POST',
      headers: { Authorization: 'Bearer ' + handle.serviceToken, 'Content-Type': 'application/json' },
      body: JSON.stringify({ schema, failOnBackwardsIncompatibleChange: false }),
    });
    const text = await res.text();
    let body;
    try {
      body = JSON.parse(text);
    } catch {}
    if (res.status !== 200 || !body?.successful) {
      await handle.stop();
      throw new Error(`schema push failed: ${res.status} ${text}`);
    }
  }
  return handle;
}
