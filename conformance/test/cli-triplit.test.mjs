// The published `triplit` CLI (@triplit/cli 1.0.61, the release built with
// @triplit/client 1.0.50 and @triplit/server 1.1.8) run against the target
// server, in a throwaway app folder with `triplit/schema.ts` and
// `triplit/seeds/*.ts`: schema push / print / refusals, seed run, snapshot
// create / push. The CLI loads the .ts files itself (esbuild, bundled in the
// package), so the app folder borrows this suite's node_modules by symlink.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer } from '../lib/server.mjs';
import { call, ok } from '../lib/http.mjs';

const conformanceDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLI = path.join(conformanceDir, 'node_modules/@triplit/cli/dist/index.js');

const SCHEMA_V1 = `import { Schema as S } from '@triplit/client';
export const roles = { user: { match: { sub: '$userId' } } };
export const schema = S.Collections({
  todos: {
    schema: S.Schema({ id: S.Id(), text: S.String(), done: S.Boolean({ default: false }) }),
  },
});
`;
// A new required attribute: refused while `todos` has entities.
const SCHEMA_REQUIRED = SCHEMA_V1.replace('done: S.Boolean({ default: false }) }', 'done: S.Boolean({ default: false }), prio: S.Number() }');
// A new optional attribute: always compatible.
const SCHEMA_OPTIONAL = SCHEMA_V1.replace('done: S.Boolean({ default: false }) }', 'done: S.Boolean({ default: false }), note: S.Optional(S.String()) }');

const SEED = `import { BulkInsert } from '@triplit/client';
import { schema } from '../schema';
export default function seed(): BulkInsert<typeof schema> {
  return { todos: [{ id: 's1', text: 'seeded one' }, { id: 's2', text: 'seeded two', done: true }] };
}
`;

/** A temp app folder: package.json, node_modules (symlink), triplit/schema.ts. */
function makeApp(schemaTs = SCHEMA_V1) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-cli-app-'));
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'cli-app', private: true, type: 'module' }));
  fs.symlinkSync(path.join(conformanceDir, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
  fs.mkdirSync(path.join(dir, 'triplit', 'seeds'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'triplit', 'schema.ts'), schemaTs);
  fs.writeFileSync(path.join(dir, 'triplit', 'seeds', 'todos.ts'), SEED);
  return dir;
}

/** The environment without the shell's TRIPLIT_* settings, plus `extra`. */
/** Removes ANSI colour escapes. */
const stripAnsi = (s) => s.replace(/\x1B\[[0-9;]*[A-Za-z]/g, '');

function cleanEnv(extra = {}) {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('TRIPLIT_')) delete env[k];
  // Plain output: CI=true otherwise makes the CLI colour its messages.
  delete env.CI;
  return { ...env, NO_COLOR: '1', FORCE_COLOR: '0', ...extra };
}

/** Runs `triplit <args>` in `cwd`; resolves to { code, stdout, stderr, out }. */
function triplit(cwd, args, env = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd, env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      stdout = stripAnsi(stdout);
      stderr = stripAnsi(stderr);
      resolve({ code, signal, stdout, stderr, out: stdout + stderr });
    });
  });
}

const remoteFlags = (srv) => ['--token', srv.serviceToken, '--remote', srv.url];
const remoteEnv = (srv) => ({ TRIPLIT_SERVICE_TOKEN: srv.serviceToken, TRIPLIT_DB_URL: srv.url });
const serverSchema = async (srv) => (await ok(srv, '/schema', { format: 'json' })).schema;
const todos = (srv) => ok(srv, '/fetch', { query: { collectionName: 'todos', order: [['id', 'ASC']] } });

let server;
let app;
let localJson; // the local schema as the CLI itself serialises it
before(async () => {
  server = await startServer();
  app = makeApp();
  const printed = await triplit(app, ['schema', 'print', '--location', 'local', '--format', 'json', '--token', 'unused']);
  assert.equal(printed.code, 0, printed.out);
  localJson = JSON.parse(printed.stdout);
});
after(async () => {
  await server?.stop();
  if (app) fs.rmSync(app, { recursive: true, force: true });
});

describe('triplit schema push / print', () => {
  it('push (--token, --remote) stores triplit/schema.ts as the server schema', async () => {
    const res = await triplit(app, ['schema', 'push', ...remoteFlags(server)]);
    assert.equal(res.code, 0, res.out);
    assert.match(res.out, /Schema pushed to/);
    const stored = await serverSchema(server);
    assert.deepEqual(stored.collections, localJson.collections);
    assert.deepEqual(stored.roles, localJson.roles);
  });

  it('print --location remote --format json (TRIPLIT_SERVICE_TOKEN, TRIPLIT_DB_URL) prints the server schema', async () => {
    const res = await triplit(app, ['schema', 'print', '--location', 'remote', '--format', 'json'], remoteEnv(server));
    assert.equal(res.code, 0, res.out);
    assert.deepEqual(JSON.parse(res.stdout), await serverSchema(server));
  });

  it('a dangerous change is refused with exit code 1 and the schema is kept', async () => {
    await ok(server, '/insert', { collectionName: 'todos', entity: { id: 'keep', text: 'data' } });
    const before = await serverSchema(server);
    const dangerous = makeApp(SCHEMA_REQUIRED);
    try {
      const res = await triplit(dangerous, ['schema', 'push', ...remoteFlags(server)]);
      assert.equal(res.code, 1, res.out);
      // The CLI prints the server's message only (logSchemaChangeViolations
      // returns early when `message` is set); the issue list is in the answer:
      assert.match(res.out, /Schema update failed\.\s+Schema update failed due to existing data violations\./);
      assert.deepEqual(await serverSchema(server), before);
      // The same push over HTTP, to see the issue list the CLI received.
      const schema = (await triplit(dangerous, ['schema', 'print', '-l', 'local', '-f', 'json', '-t', 'x'])).stdout;
      const answer = await ok(server, '/override-schema', { schema: JSON.parse(schema), failOnBackwardsIncompatibleChange: false });
      assert.equal(answer.code, 'EXISTING_DATA_MISMATCH');
      assert.deepEqual(
        answer.issues.map((i) => [i.issue, i.dataConstraint, i.violatesExistingData, i.cure]),
        [['added an attribute where optional is not set', 'collection_is_empty', true, "make 'prio' optional or delete all entities in 'todos' to allow this edit"]]
      );
    } finally {
      fs.rmSync(dangerous, { recursive: true, force: true });
    }
  });

  it('--enforceBackwardsCompatibility refuses an incompatible change that data would allow; --force overrides it', async () => {
    const srv = await startServer();
    const required = makeApp(SCHEMA_REQUIRED);
    try {
      assert.equal((await triplit(app, ['schema', 'push', ...remoteFlags(srv)])).code, 0);
      const strict = await triplit(required, ['schema', 'push', '-e', ...remoteFlags(srv)]);
      assert.equal(strict.code, 1, strict.out);
      assert.match(strict.out, /backwards incompatible changes/);
      assert.equal((await serverSchema(srv)).collections.todos.schema.properties.prio, undefined);
      const forced = await triplit(required, ['schema', 'push', '-e', '--force', ...remoteFlags(srv)]);
      assert.equal(forced.code, 0, forced.out);
      assert.equal((await serverSchema(srv)).collections.todos.schema.properties.prio.type, 'number');
    } finally {
      fs.rmSync(required, { recursive: true, force: true });
      await srv.stop();
    }
  });

  it('a compatible change is applied even with -e', async () => {
    const optional = makeApp(SCHEMA_OPTIONAL);
    try {
      const res = await triplit(optional, ['schema', 'push', '-e', ...remoteFlags(server)]);
      assert.equal(res.code, 0, res.out);
      assert.match(res.out, /Schema update successful/);
      assert.equal((await serverSchema(server)).collections.todos.schema.properties.note.config.optional, true);
    } finally {
      fs.rmSync(optional, { recursive: true, force: true });
    }
  });
});

describe('triplit with a non-service token', () => {
  it('a wrong token is refused: the CLI exits non-zero and nothing changes', async () => {
    const before = await serverSchema(server);
    const res = await triplit(app, ['schema', 'push', '--token', server.anonToken, '--remote', server.url]);
    assert.notEqual(res.code, 0, res.out);
    assert.deepEqual(await serverSchema(server), before);
    // The anon token may not read the schema either.
    const r = await call(server, '/schema', { body: {}, token: server.anonToken });
    assert.equal(r.status, 401, r.text);
  });
});

describe('triplit seed run', () => {
  it('runs triplit/seeds/<name>.ts through /bulk-insert', async () => {
    const srv = await startServer();
    try {
      assert.equal((await triplit(app, ['schema', 'push', ...remoteFlags(srv)])).code, 0);
      const res = await triplit(app, ['seed', 'run', 'todos', ...remoteFlags(srv)]);
      assert.equal(res.code, 0, res.out);
      assert.match(res.out, /Inserted 2 document\(s\) into todos/);
      assert.deepEqual(await todos(srv), [
        { id: 's1', text: 'seeded one', done: false },
        { id: 's2', text: 'seeded two', done: true },
      ]);
      // --all runs every seed file again (same ids: the documents are rewritten).
      const all = await triplit(app, ['seed', 'run', '--all'], remoteEnv(srv));
      assert.equal(all.code, 0, all.out);
      assert.match(all.out, /Successfully seeded with todos\.ts/);
      assert.equal((await todos(srv)).length, 2);
    } finally {
      await srv.stop();
    }
  });
});

describe('triplit snapshot create / push', () => {
  it('exports schema and data to files and pushes them into another server', async () => {
    const from = await startServer();
    const to = await startServer();
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-snapshot-'));
    try {
      assert.equal((await triplit(app, ['schema', 'push', ...remoteFlags(from)])).code, 0);
      assert.equal((await triplit(app, ['seed', 'run', 'todos', ...remoteFlags(from)])).code, 0);
      const dir = path.join(out, 'snap');
      const created = await triplit(app, ['snapshot', 'create', '--outDir', dir, ...remoteFlags(from)]);
      assert.equal(created.code, 0, created.out);
      assert.deepEqual(JSON.parse(fs.readFileSync(path.join(dir, 'schema.json'), 'utf8')), await serverSchema(from));
      assert.deepEqual(JSON.parse(fs.readFileSync(path.join(dir, 'collections', 'todos.json'), 'utf8')), await todos(from));

      assert.equal((await triplit(app, ['schema', 'push', ...remoteFlags(to)])).code, 0);
      const pushed = await triplit(app, ['snapshot', 'push', dir, '--snapshot', dir, '--ignoreDestructiveWarning', ...remoteFlags(to)]);
      assert.equal(pushed.code, 0, pushed.out);
      assert.match(pushed.out, /Upload successful/);
      assert.deepEqual(await todos(to), await todos(from));
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
      await from.stop();
      await to.stop();
    }
  });
});
