// Starting the servers the app talks to, for `npm start` (scripts/start.mjs)
// and the e2e suite (e2e/lib/harness.mjs):
//
//   resolveFerry()       the ferry binary: $FERRY_BIN, else `cargo build -p ferry`
//                        (in this repository), else `ferry` on the PATH
//   startIssuer(opts)    `ferry issuer`, the offline stand-in for Clerk
//   startFerry(opts)     `ferry dev` with the schema and the token settings
//   ferryAuthEnv(flow, issuer, origins)
//                        the environment that makes Ferry accept the issuer's
//                        tokens, in one of the two ways (see AUTH_FLOWS)
//
// Children are started with their output captured (`proc.output()`), and
// are stopped by `stop()` or, at the latest, when this process exits.
import { spawn, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { delimiter, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const APP_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const REPO_ROOT = resolve(APP_DIR, '../..');

/**
 * How Ferry is told to trust the issuer's tokens. Both work; `clerk-key` is
 * the default.
 *   clerk-key  Ferry's Clerk preset: CLERK_PUBLISHABLE_KEY (the same pk_…
 *              the frontend uses). Ferry finds the issuer's JWKS from it and
 *              follows key rotation; CLERK_AUTHORIZED_PARTIES pins the app's
 *              origins (the token's `azp`).
 *   pem        The Triplit/Clerk guide's way: the issuer's PEM public key in
 *              TRIPLIT_EXTERNAL_JWT_SECRET (one line).
 */
export const AUTH_FLOWS = ['clerk-key', 'pem'];

/**
 * The ferry binary to run: $FERRY_BIN; else, inside the Ferry repository,
 * its target/debug/ferry, built first (`cargo build -p ferry`); else (a copy
 * of this example elsewhere) `ferry` on the PATH.
 */
export function resolveFerry({ log = () => {} } = {}) {
  if (process.env.FERRY_BIN) {
    const bin = resolve(process.env.FERRY_BIN);
    if (!existsSync(bin)) throw new Error(`FERRY_BIN=${bin} does not exist`);
    return bin;
  }
  if (!existsSync(resolve(REPO_ROOT, 'crates/cli/Cargo.toml'))) {
    const onPath = (process.env.PATH ?? '')
      .split(delimiter)
      .map((dir) => resolve(dir, 'ferry'))
      .find((bin) => existsSync(bin));
    if (!onPath) throw new Error('no ferry binary: install ferry on the PATH or set FERRY_BIN');
    return onPath;
  }
  log('building ferry (cargo build -p ferry)…');
  try {
    execFileSync('cargo', ['build', '-p', 'ferry'], { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
  } catch (e) {
    throw new Error(`cargo build -p ferry failed (${e.message}); set FERRY_BIN to a ferry binary instead`);
  }
  const meta = JSON.parse(
    execFileSync('cargo', ['metadata', '--format-version', '1', '--no-deps'], { cwd: REPO_ROOT, encoding: 'utf8' })
  );
  return resolve(meta.target_directory, 'debug', 'ferry');
}

const children = new Set();
process.on('exit', () => {
  for (const child of children) {
    try {
      child.kill('SIGKILL');
    } catch {}
  }
});

/**
 * Spawns `bin args` and resolves once `ready(stdoutSoFar)` returns a value
 * (which is returned as `ready`), or rejects if the process exits first or
 * `timeout` ms pass.
 */
function startProcess(name, bin, args, { env, cwd, ready, timeout = 30_000, stopSignal = 'SIGTERM', echo }) {
  const child = spawn(bin, args, { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let stdout = '';
  let stderr = '';
  const exited = new Promise((res) => child.once('exit', (code, signal) => res({ code, signal })));
  exited.then(() => children.delete(child));
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stdout.on('data', (d) => {
    stdout += d;
    echo?.(d, 'stdout');
  });
  child.stderr.on('data', (d) => {
    stderr += d;
    echo?.(d, 'stderr');
  });
  const proc = {
    name,
    child,
    pid: child.pid,
    exited,
    output: () => `--- ${name} stdout\n${stdout}\n--- ${name} stderr\n${stderr}`,
    /** Stop the process (stopSignal, then SIGKILL after 5 s) and wait for it to exit. */
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      child.kill(stopSignal);
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      const result = await exited;
      clearTimeout(timer);
      return result;
    },
  };
  return new Promise((resolvePromise, reject) => {
    const deadline = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${name} did not start within ${timeout} ms\n${proc.output()}`));
    }, timeout);
    const check = () => {
      let value;
      try {
        value = ready(stdout);
      } catch (e) {
        clearTimeout(deadline);
        reject(e);
        return;
      }
      if (value) {
        clearTimeout(deadline);
        child.stdout.off('data', check);
        resolvePromise({ ...proc, ready: value });
      }
    };
    child.stdout.on('data', check);
    exited.then(({ code, signal }) => {
      clearTimeout(deadline);
      reject(new Error(`${name} exited (code ${code}, signal ${signal}) before it was ready\n${proc.output()}`));
    });
  });
}

/**
 * `ferry issuer` on 127.0.0.1:`port` (0: any free port). With `keys`, the
 * private key is kept in that file across restarts.
 * Resolves to { url, publishableKey, pem, pemOneLine, tokenUrl(params), stop(), output() }.
 */
export async function startIssuer({ ferryBin, port = 0, keys, echo } = {}) {
  const args = ['issuer', '--port', String(port)];
  if (keys) args.push('--keys', keys);
  const proc = await startProcess('ferry issuer', ferryBin, args, {
    env: process.env,
    echo,
    // The issuer stops on Ctrl-C (SIGINT).
    stopSignal: 'SIGINT',
    ready: (out) => {
      const url = out.match(/^\s*Issuer:\s+(http\S+)/m)?.[1];
      const publishableKey = out.match(/CLERK_PUBLISHABLE_KEY=(pk_\S+)/)?.[1];
      // The multi-line PEM at the end (not the one-line copy in the banner).
      const pem = out.match(/^-----BEGIN PUBLIC KEY-----\n[\s\S]*?\n-----END PUBLIC KEY-----$/m)?.[0];
      return url && publishableKey && pem ? { url, publishableKey, pem } : null;
    },
  });
  const { url, publishableKey, pem } = proc.ready;
  return {
    ...proc,
    url,
    publishableKey,
    pem,
    pemOneLine: pem.trim().split('\n').join(''),
    /** A token from the issuer, e.g. token({ sub: 'user_alice', ttl: 60 }). */
    async token(params) {
      const res = await fetch(`${url}/token?${new URLSearchParams(params)}`);
      if (!res.ok) throw new Error(`issuer /token: ${res.status} ${await res.text()}`);
      return (await res.text()).trim();
    },
  };
}

/**
 * The environment that makes Ferry accept `issuer`'s tokens with `flow`
 * (see AUTH_FLOWS); `origins` are the app's origins (the tokens' `azp`).
 */
export function ferryAuthEnv(flow, issuer, origins = []) {
  switch (flow) {
    case 'clerk-key':
      return {
        CLERK_PUBLISHABLE_KEY: issuer.publishableKey,
        ...(origins.length ? { CLERK_AUTHORIZED_PARTIES: origins.join(',') } : {}),
      };
    case 'pem':
      return { TRIPLIT_EXTERNAL_JWT_SECRET: issuer.pemOneLine };
    default:
      throw new Error(`unknown auth flow ${JSON.stringify(flow)}: use one of ${AUTH_FLOWS.join(', ')}`);
  }
}

/** Variables that would change how `ferry dev` verifies tokens; removed unless passed explicitly. */
const AUTH_VARS = [
  'CLERK_PUBLISHABLE_KEY',
  'CLERK_AUTHORIZED_PARTIES',
  'TRIPLIT_EXTERNAL_JWT_SECRET',
  'TRIPLIT_JWT_SECRET',
  'FERRY_OIDC_ISSUER',
  'FERRY_JWKS_URL',
  'FERRY_JWKS_ISSUER',
  'FERRY_CONFIG',
];

/**
 * `ferry dev` on 127.0.0.1:`port` (0: any free port) with the schema JSON
 * at `schema` and SQLite storage at `database`, run in `cwd` (it loads
 * `.env`/`.env.local` from there, like `triplit dev`). `env` is added to the
 * environment; with `isolated`, inherited auth variables are dropped first.
 * Resolves to { url, port, serviceToken, stop(), output() }.
 */
export async function startFerry({ ferryBin, port = 0, schema, database, cwd, env = {}, isolated = false, echo } = {}) {
  const base = { ...process.env };
  if (isolated) for (const k of AUTH_VARS) delete base[k];
  const args = ['dev', '--dbPort', String(port)];
  if (schema) args.push('--schema', schema);
  if (database) args.push('--database', database);
  const proc = await startProcess('ferry dev', ferryBin, args, {
    env: { ...base, RUST_LOG: process.env.RUST_LOG ?? 'warn', ...env },
    cwd,
    echo,
    ready: (out) => {
      const url = out.match(/Server URL:\s+(http\S+)/)?.[1];
      const serviceToken = out.match(/Service token:\s+(\S+)/)?.[1];
      return url && serviceToken ? { url, serviceToken } : null;
    },
  });
  const { url, serviceToken } = proc.ready;
  await waitForHealth(url);
  return { ...proc, url, port: Number(new URL(url).port), serviceToken };
}

async function waitForHealth(url, timeout = 10_000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    try {
      const res = await fetch(`${url}/healthcheck`);
      if (res.ok) return;
    } catch {}
    if (Date.now() > deadline) throw new Error(`${url}/healthcheck did not answer within ${timeout} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
