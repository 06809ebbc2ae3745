// The development server in an app folder with `triplit/schema.ts`:
// `ferry dev` (FERRY_TARGET=ferry) or the published `triplit dev`
// (@triplit/cli 1.0.61, FERRY_TARGET=reference). Both load the schema file at
// start, applying what the stored data allows, and refuse to start
// otherwise. On save they differ on purpose: `ferry dev` applies
// backwards-compatible changes and prints refusals with their issues;
// `triplit dev` only prints "restart or push" (docs/configuration.md, "Schema").
import { createClient, closeClients, localRows } from '../lib/sync.mjs';
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, target } from '../lib/server.mjs';
import { serviceTokenFor } from '../lib/tokens.mjs';

const conformanceDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const FERRY = path.resolve(conformanceDir, process.env.FERRY_BIN || '../target/debug/ferry');
const CLI = path.join(conformanceDir, 'node_modules/@triplit/cli/dist/index.js');
const DEV_SERVICE = serviceTokenFor('jwt-key-for-development-only');

const schemaTs = (extra = '') => `import { Schema as S } from '@triplit/client';
export const schema = S.Collections({
  todos: { schema: S.Schema({ id: S.Id(), text: S.String()${extra} }) },
});
`;
const NOTE = ', note: S.Optional(S.String())';
const PRIO = ', prio: S.Number()';

const apps = [];
const devs = [];
after(async () => {
  await closeClients();
  for (const d of devs) await d.stop();
  for (const a of apps) fs.rmSync(a, { recursive: true, force: true });
});

function makeApp(files) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-dev-app-'));
  apps.push(dir);
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'dev-app', private: true, type: 'module' }));
  fs.symlinkSync(path.join(conformanceDir, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
  for (const [name, text] of Object.entries(files)) write(dir, name, text);
  return dir;
}

function write(dir, name, text) {
  fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
  fs.writeFileSync(path.join(dir, name), typeof text === 'string' ? text : JSON.stringify(text));
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function waitFor(fn, { timeout = 20_000, what = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      if (e.fatal) throw e;
      last = e;
    }
    await sleep(100);
  }
  throw last ?? new Error(`timed out waiting for ${what}`);
}

/**
 * Starts the dev server in `app`; `args` are extra flags, `env` extra
 * environment. `sqlite`: a database file in the app (kept across restarts).
 */
async function startDev(app, { args = [], env = {}, sqlite = false } = {}) {
  const port = await freePort();
  const childEnv = { ...process.env };
  for (const k of Object.keys(childEnv)) if (k.startsWith('TRIPLIT_')) delete childEnv[k];
  Object.assign(childEnv, env);
  let file;
  let argv;
  if (target === 'reference') {
    if (sqlite) childEnv.TRIPLIT_LOCAL_DATABASE_URL = path.join(app, 'db', 'app.db');
    file = process.execPath;
    argv = [CLI, 'dev', '--dbPort', String(port), ...(sqlite ? ['--storage', 'sqlite'] : []), ...args];
  } else {
    file = FERRY;
    argv = ['dev', '--dbPort', String(port), ...(sqlite ? ['--database', path.join(app, 'db', 'ferry.db')] : ['--storage', 'memory']), ...args];
  }
  const child = spawn(file, argv, { cwd: app, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  const dev = { url: `http://127.0.0.1:${port}`, out: '', exited: null };
  child.stdout.on('data', (d) => (dev.out += d));
  child.stderr.on('data', (d) => (dev.out += d));
  const exited = new Promise((r) => child.on('exit', (code) => r((dev.exited = { code }))));
  dev.stop = async () => {
    if (dev.exited) return;
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
  };
  devs.push(dev);
  /** The output printed from now on. */
  dev.mark = () => {
    const at = dev.out.length;
    return () => dev.out.slice(at);
  };
  await waitFor(
    async () => {
      if (dev.exited) {
        throw Object.assign(new Error(`dev server exited: ${JSON.stringify(dev.exited)}\n${dev.out}`), { fatal: true });
      }
      return (await fetch(dev.url + '/healthcheck')).status === 200;
    },
    { what: 'healthcheck' }
  );
  return dev;
}

async function post(dev, route, body) {
  const res = await fetch(dev.url + '/' + route, {
    method: 'POST',
    headers: { Authorization: 'Bearer ' + DEV_SERVICE, 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  assert.equal(res.status, 200, `${route}: ${text}`);
  return JSON.parse(text);
}
const props = async (dev) => {
  const s = await post(dev, 'schema', { format: 'json' });
  return s.type === 'schema' ? Object.keys(s.schema.collections.todos.schema.properties) : null;
};

describe('dev server and triplit/schema.ts', () => {
  it('loads triplit/schema.ts at start', async () => {
    const app = makeApp({ 'triplit/schema.ts': schemaTs() });
    const dev = await startDev(app);
    assert.deepEqual(await props(dev), ['id', 'text']);
    await dev.stop();
  });

  it('on save: ferry dev applies a compatible change and refuses a dangerous one with its issues (triplit dev only prints a notice)', async () => {
    const app = makeApp({ 'triplit/schema.ts': schemaTs() });
    const dev = await startDev(app);
    await post(dev, 'insert', { collectionName: 'todos', entity: { id: 'a', text: 'kept' } });

    let since = dev.mark();
    write(app, 'triplit/schema.ts', schemaTs(NOTE));
    if (target === 'reference') {
      await waitFor(() => /Schema file changed\. Restart the dev server or run/.test(since()), { what: 'notice' });
      assert.deepEqual(await props(dev), ['id', 'text']);
    } else {
      await waitFor(async () => (await props(dev)).includes('note'), { what: 'note applied' });
      await waitFor(() => /Schema updated from triplit\/schema\.ts: 1 change\(s\) applied\./.test(since()), { what: 'message' });
      assert.match(since(), /\+ todos\.note: string, optional/);
    }

    since = dev.mark();
    write(app, 'triplit/schema.ts', schemaTs(NOTE + PRIO));
    if (target === 'reference') {
      await waitFor(() => /Schema file changed/.test(since()), { what: 'notice' });
      assert.deepEqual(await props(dev), ['id', 'text']);
    } else {
      await waitFor(() => /not applied/.test(since()), { what: 'refusal' });
      await waitFor(() => /fix: /.test(since()), { what: 'issue list' });
      const out = since();
      assert.match(out, /Schema change in triplit\/schema\.ts not applied; the server keeps its schema\./);
      assert.match(out, /\[EXISTING_DATA_MISMATCH\]/);
      assert.match(out, /'prio': added an attribute where optional is not set \(existing data violates it\)/);
      assert.match(out, /fix: +make 'prio' optional or delete all entities in 'todos' to allow this edit/);
      assert.deepEqual(await props(dev), ['id', 'text', 'note']);
    }
    assert.deepEqual(await post(dev, 'fetch', { query: { collectionName: 'todos' } }), [{ id: 'a', text: 'kept' }]);
    await dev.stop();
  });

  it('a save reaches a connected syncSchema client live (triplit dev: its subscription fails, the server has a schema)', async () => {
    const app = makeApp({ 'triplit/schema.ts': schemaTs() });
    const dev = await startDev(app);
    const client = createClient({ url: dev.url, serviceToken: DEV_SERVICE }, { syncSchema: true });
    if (target === 'reference') {
      // docs/compatibility.md: upstream rejects the filter on `id` of _metadata.
      const err = await waitFor(() => client.wire.received.find((m) => m.type === 'ERROR'), { what: 'ERROR' });
      assert.equal(err.payload.error.name, 'QuerySyncError');
      assert.equal(err.payload.metadata.innerError.name, 'InvalidFilterError');
    } else {
      const cached = async () => {
        const doc = (await localRows(client, client.query('_metadata')))[0];
        return Object.keys(doc?.collections?.todos?.schema?.properties ?? {});
      };
      await waitFor(async () => (await cached()).join() === 'id,text', { what: 'schema cached' });
      write(app, 'triplit/schema.ts', schemaTs(NOTE));
      await waitFor(async () => (await cached()).includes('note'), { what: 'note reached the client' });
    }
    await closeClients();
    await dev.stop();
  });

  it('ferry dev: an incompatible change the data would allow is still refused on save (and applied at the next start)', async () => {
    const app = makeApp({ 'triplit/schema.ts': schemaTs() });
    let dev = await startDev(app, { sqlite: true });
    const since = dev.mark();
    write(app, 'triplit/schema.ts', schemaTs(PRIO));
    if (target === 'reference') {
      await waitFor(() => /Schema file changed/.test(since()), { what: 'notice' });
    } else {
      await waitFor(() => /fix: /.test(since()), { what: 'refusal' });
      assert.match(since(), /\[SCHEMA_COMPATIBILITY_MISMATCH\]/);
      assert.match(since(), /run `ferry schema push` to apply it/);
    }
    assert.deepEqual(await props(dev), ['id', 'text']);
    await dev.stop();
    // At start the file is applied as `triplit dev` does: the empty
    // collection allows the new required attribute.
    dev = await startDev(app, { sqlite: true });
    assert.deepEqual(await props(dev), ['id', 'text', 'prio']);
    await dev.stop();
  });

  it('at start, a change existing data forbids stops the server (exit 1); the stored schema and data are kept', async () => {
    const app = makeApp({ 'triplit/schema.ts': schemaTs() });
    let dev = await startDev(app, { sqlite: true });
    await post(dev, 'insert', { collectionName: 'todos', entity: { id: 'a', text: 'kept' } });
    await dev.stop();
    write(app, 'triplit/schema.ts', schemaTs(PRIO));
    await assert.rejects(startDev(app, { sqlite: true }), (e) => {
      assert.match(e.message, /dev server exited: \{"code":1\}/);
      if (target === 'reference') {
        assert.match(e.message, /Failed to initialize database: SCHEMA_UPDATE_FAILED/);
      } else {
        assert.match(e.message, /the schema in triplit\/schema\.ts was refused/);
        assert.match(e.message, /'prio': added an attribute where optional is not set \(existing data violates it\)/);
      }
      return true;
    });
    write(app, 'triplit/schema.ts', schemaTs());
    dev = await startDev(app, { sqlite: true });
    assert.deepEqual(await props(dev), ['id', 'text']);
    assert.deepEqual(await post(dev, 'fetch', { query: { collectionName: 'todos' } }), [{ id: 'a', text: 'kept' }]);
    await dev.stop();
  });

  it('TRIPLIT_SCHEMA_PATH names the schema file; an imported sibling module is watched too', async () => {
    const app = makeApp({
      'db/fields.ts': `import { Schema as S } from '@triplit/client';\nexport const fields = { id: S.Id(), title: S.String() };\n`,
      'db/schema.ts': `import { Schema as S } from '@triplit/client';\nimport { fields } from './fields';\nexport const schema = S.Collections({ todos: { schema: S.Schema(fields) } });\n`,
    });
    const dev = await startDev(app, { env: { TRIPLIT_SCHEMA_PATH: 'db/schema.ts' } });
    assert.deepEqual(await props(dev), ['id', 'title']);
    const since = dev.mark();
    write(app, 'db/fields.ts', `import { Schema as S } from '@triplit/client';\nexport const fields = { id: S.Id(), title: S.String(), tag: S.Optional(S.String()) };\n`);
    if (target === 'reference') {
      // triplit dev watches the schema file only; nothing is printed or applied.
      await sleep(2500);
      assert.doesNotMatch(since(), /Schema file changed/);
      assert.deepEqual(await props(dev), ['id', 'title']);
    } else {
      await waitFor(async () => (await props(dev)).includes('tag'), { what: 'tag applied' });
    }
    await dev.stop();
  });

  it('a JSON schema: ferry dev --schema file.json loads and watches it (triplit dev takes .ts files only)', async () => {
    const collections = (extra = {}) => ({
      todos: { schema: { type: 'record', properties: { id: { type: 'string', config: {} }, ...extra } } },
    });
    const app = makeApp({ 'schema.json': { collections: collections() } });
    if (target === 'reference') {
      const child = spawn(process.execPath, [CLI, 'dev', '--dbPort', String(await freePort()), '--schemaPath', 'schema.json'], {
        cwd: app,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (out += d));
      const code = await new Promise((r) => child.on('exit', r));
      assert.equal(code, 1, out);
      assert.match(out, /File must be a \.ts file/);
      return;
    }
    const dev = await startDev(app, { args: ['--schema', 'schema.json'] });
    assert.deepEqual(await props(dev), ['id']);
    write(app, 'schema.json', { collections: collections({ done: { type: 'boolean', config: { optional: true } } }) });
    await waitFor(async () => (await props(dev)).includes('done'), { what: 'done applied' });
    // A broken save is reported and changes nothing; fixing it applies.
    const since = dev.mark();
    write(app, 'schema.json', '{ "collections": ');
    await waitFor(() => /could not be read/.test(since()), { what: 'read error' });
    assert.deepEqual(await props(dev), ['id', 'done']);
    write(app, 'schema.json', { collections: collections({ done: { type: 'boolean', config: { optional: true } }, n: { type: 'number', config: { optional: true } } }) });
    await waitFor(async () => (await props(dev)).includes('n'), { what: 'n applied' });
    await dev.stop();
  });
});
