// The e2e harness: the whole stack on free loopback ports, and the browser.
//
//   startStack({ flow, tokenTtl })  ferry issuer + ferry dev (fresh SQLite
//       database) + the app, built with Vite and served by `vite preview`
//   launchBrowser()                 headless Chromium (/usr/bin/chromium)
//   openUser(browser, stack, name)  a fresh browser context signed in as a
//       local user, with everything its page does on the network recorded
//   waitFor(fn)                     poll until fn() is truthy / stops throwing
//   shoot(user, name)               a screenshot in e2e/artifacts/ (emptied by npm run test:e2e)
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';
import { build, preview } from 'vite';
import { APP_DIR, ferryAuthEnv, resolveFerry, startFerry, startIssuer } from '../../scripts/stack.mjs';
import { writeSchemaJson } from '../../scripts/schema-json.mjs';

export const ARTIFACTS = resolve(APP_DIR, 'e2e/artifacts');
export const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Poll `fn` every `interval` ms until it returns a truthy value (returned).
 * If it throws (an assert), keep polling; at the timeout rethrow the last
 * error, or throw one naming `message`.
 */
export async function waitFor(fn, { timeout = 10_000, interval = 25, message = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let lastError;
  for (;;) {
    try {
      const value = await fn();
      if (value) return value;
      lastError = undefined;
    } catch (e) {
      lastError = e;
    }
    if (Date.now() >= deadline) {
      const why = lastError ? `; last error: ${lastError.message}` : '';
      throw new Error(`waitFor(${message}) timed out after ${timeout} ms${why}`);
    }
    await sleep(interval);
  }
}

function freePort() {
  return new Promise((res, rej) => {
    const server = createServer();
    server.once('error', rej);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => res(port));
    });
  });
}

/**
 * The stack on free ports: the issuer, Ferry trusting it with `flow`
 * ('clerk-key' or 'pem', see scripts/stack.mjs), and the app built with
 * `tokenTtl`-second local tokens. Nothing is read from the app's .env.
 */
export async function startStack({ flow = 'clerk-key', tokenTtl = 5 } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'triplit-clerk-todos-e2e-'));
  const ferryBin = resolveFerry();
  const schema = await writeSchemaJson(join(dir, 'schema.json'));
  const appPort = await freePort();
  const origin = `http://127.0.0.1:${appPort}`;

  const issuer = await startIssuer({ ferryBin });
  const ferryOptions = (authFlow, port = 0) => ({
    ferryBin,
    port,
    schema,
    database: join(dir, 'ferry.db'),
    cwd: dir,
    isolated: true,
    env: { RUST_LOG: process.env.RUST_LOG || 'info', ...ferryAuthEnv(authFlow, issuer, [origin]) },
  });
  let ferry = await startFerry(ferryOptions(flow));
  const stoppedFerries = [];

  const app = await serveApp({
    port: appPort,
    env: {
      VITE_TRIPLIT_SERVER_URL: ferry.url,
      VITE_LOCAL_ISSUER_URL: issuer.url,
      VITE_LOCAL_TOKEN_TTL: String(tokenTtl),
      VITE_CLERK_PUBLISHABLE_KEY: '',
    },
  });

  const stack = {
    appUrl: `${origin}/`,
    origin,
    issuer,
    outDir: app.outDir,
    get ferry() {
      return ferry;
    },
    /** Stop Ferry (SIGTERM). */
    async stopFerry() {
      await ferry.stop();
      stoppedFerries.push(ferry);
    },
    /** Start Ferry again on the same port and database, trusting the issuer with `flow`. */
    async startFerry(authFlow) {
      ferry = await startFerry(ferryOptions(authFlow, ferry.port));
    },
    /** Every todo on the server (POST /fetch with the service token). */
    async serverTodos() {
      const res = await fetch(`${ferry.url}/fetch`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ferry.serviceToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({ query: { collectionName: 'todos' } }),
      });
      if (!res.ok) throw new Error(`/fetch: ${res.status} ${await res.text()}`);
      return res.json();
    },
    output: () => [issuer, ...stoppedFerries, ferry].map((p) => p.output()).join('\n'),
    async stop() {
      await app.stop();
      await Promise.allSettled([ferry.stop(), issuer.stop()]);
      mkdirSync(ARTIFACTS, { recursive: true });
      writeFileSync(join(ARTIFACTS, 'servers.log'), stack.output());
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return stack;
}

/**
 * The app built with these VITE_ settings (and nothing from .env files)
 * and served by `vite preview` on 127.0.0.1:`port` (0: any free port).
 * Resolves to { url, outDir, stop() }.
 */
export async function serveApp({ env, port = 0 }) {
  const dir = mkdtempSync(join(tmpdir(), 'triplit-clerk-todos-app-'));
  const envDir = join(dir, 'env');
  mkdirSync(envDir);
  const outDir = join(dir, 'dist');
  // The build reads its settings from VITE_ variables (they win over .env files).
  Object.assign(process.env, env);
  const common = { root: APP_DIR, envDir, logLevel: 'error', build: { outDir, emptyOutDir: true } };
  await build(common);
  const server = await preview({ ...common, preview: { host: '127.0.0.1', port: port || (await freePort()), strictPort: true } });
  return {
    url: server.resolvedUrls.local[0],
    outDir,
    async stop() {
      await new Promise((r) => server.httpServer.close(r));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function launchBrowser() {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `Chromium is not at ${CHROMIUM}. Install it with \`apt-get install -y chromium\` (or set CHROMIUM_BIN); ` +
        'browsers are never downloaded by this suite.'
    );
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Playwright gives every launch a fresh temporary user-data dir.
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/**
 * What a page does on the network: its WebSockets (to Ferry) with every
 * frame, its requests, and its uncaught errors and console messages.
 */
function record(page) {
  const rec = { sockets: [], requests: [], pageErrors: [], console: [] };
  page.on('websocket', (ws) => {
    const socket = { url: ws.url(), received: [], sent: [], closed: false, openedAt: Date.now() };
    rec.sockets.push(socket);
    ws.on('framereceived', (f) => socket.received.push(String(f.payload)));
    ws.on('framesent', (f) => socket.sent.push(String(f.payload)));
    ws.on('close', () => (socket.closed = true));
  });
  page.on('request', (r) => rec.requests.push(r.url()));
  page.on('pageerror', (e) => rec.pageErrors.push(e.message));
  page.on('console', (m) => rec.console.push(`${m.type()}: ${m.text()}`));
  rec.openSockets = () => rec.sockets.filter((s) => !s.closed);
  rec.framesReceived = () => rec.sockets.reduce((n, s) => n + s.received.length, 0);
  rec.receivedText = () => rec.sockets.flatMap((s) => s.received).join('\n');
  rec.requestsTo = (suffix) => rec.requests.filter((u) => new URL(u).pathname.endsWith(suffix));
  return rec;
}

/** A user in their own browser context (own IndexedDB, own sessionStorage). */
export async function openUser(browser, stack, name) {
  const context = await browser.newContext({ viewport: { width: 900, height: 1000 } });
  const page = await context.newPage();
  const net = record(page);
  await page.goto(stack.appUrl);
  await page.getByTestId(`sign-in-${name}`).click();
  const user = { name, context, page, net };
  await waitConnected(user);
  return user;
}

/** Wait until the page says its connection to Ferry is live. */
export async function waitConnected(user, timeout = 10_000) {
  await user.page.getByTestId('new-shared').waitFor({ timeout });
  await user.page.locator('[data-testid="connection"][data-status="connected"]').waitFor({ timeout });
}

/** The <li> of the todo with this text in `list` ('shared' or 'private'). */
export function todo(user, list, text) {
  return user.page.getByTestId(`${list}-list`).locator(`li[data-testid="todo"][data-text=${JSON.stringify(text)}]`);
}

/** Type a todo into a list's box and press Enter. */
export async function addTodo(user, list, text) {
  const input = user.page.getByTestId(`new-${list}`);
  await input.fill(text);
  await input.press('Enter');
}

/** The texts of a list's todos, in order. */
export async function texts(user, list) {
  return user.page
    .getByTestId(`${list}-list`)
    .locator('li[data-testid="todo"]')
    .evaluateAll((items) => items.map((li) => li.dataset.text));
}

export async function shoot(user, name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  await user.page.screenshot({ path: join(ARTIFACTS, `${name}-${user.name}.png`), fullPage: true });
}
