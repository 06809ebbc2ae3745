// `ferry schema push|print|diff` against the target server (a Ferry, or the
// reference @triplit/server with FERRY_TARGET=reference: the commands are
// clients of the public admin routes and work against either). The ferry
// binary is needed for both targets (FERRY_BIN, default ../target/debug/ferry).
// JSON schemas need no Node; a `triplit/schema.ts` is evaluated with the
// app's @triplit/cli (this suite's node_modules, symlinked into the app).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer } from '../lib/server.mjs';
import { ok } from '../lib/http.mjs';

const conformanceDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const FERRY = path.resolve(conformanceDir, process.env.FERRY_BIN || '../target/debug/ferry');

const DEFAULT_ROLES = {
  anonymous: { match: { 'x-triplit-token-type': 'anon' } },
  authenticated: { match: { sub: '$sub' } },
};
const prop = (type, config = {}) => ({ type, config });
const todos = (extra = {}) => ({
  collections: {
    todos: { schema: { type: 'record', properties: { id: prop('string'), text: prop('string'), ...extra } } },
  },
});
const V1 = todos();
const OPTIONAL = todos({ note: prop('string', { optional: true }) });
const REQUIRED = todos({ note: prop('string', { optional: true }), prio: prop('number') });

/** A temp folder holding `files` ({relative path: text}); node_modules symlinked. */
function makeDir(files) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-schema-cmd-'));
  fs.symlinkSync(path.join(conformanceDir, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
  for (const [name, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), typeof text === 'string' ? text : JSON.stringify(text, null, 2));
  }
  return dir;
}

/** Runs `ferry <args>` in `cwd` with only `env`'s TRIPLIT_* settings. */
function ferry(cwd, args, env = {}) {
  const childEnv = { ...process.env };
  for (const k of Object.keys(childEnv)) if (k.startsWith('TRIPLIT_')) delete childEnv[k];
  Object.assign(childEnv, env);
  return new Promise((resolve, reject) => {
    const child = spawn(FERRY, args, { cwd, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, out: stdout + stderr });
    });
  });
}

const remote = (srv) => ['--remote', srv.url, '--token', srv.serviceToken];
const serverSchema = async (srv) => (await ok(srv, '/schema', { format: 'json' })).schema;

let server;
let dir;
before(async () => {
  assert.ok(fs.existsSync(FERRY), `ferry binary not found at ${FERRY}; build it (cargo build -p ferry) or set FERRY_BIN`);
  server = await startServer();
  dir = makeDir({ 'v1.json': V1, 'optional.json': OPTIONAL, 'required.json': REQUIRED, 'bare.json': V1.collections });
});
after(async () => {
  await server?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('ferry schema print', () => {
  it('prints nothing for a schemaless server', async () => {
    const res = await ferry(dir, ['schema', 'print', ...remote(server)]);
    assert.equal(res.code, 0, res.out);
    assert.equal(res.stdout, '');
  });
});

describe('ferry schema push', () => {
  it('pushes a JSON schema (flags), then print shows what the server stores', async () => {
    const res = await ferry(dir, ['schema', 'push', '--schema', 'v1.json', ...remote(server)]);
    assert.equal(res.code, 0, res.out);
    assert.match(res.stdout, /Schema pushed to /);
    assert.deepEqual(await serverSchema(server), { ...V1, roles: DEFAULT_ROLES });
    const printed = await ferry(dir, ['schema', 'print', '--format', 'json'], {
      TRIPLIT_DB_URL: server.url,
      TRIPLIT_SERVICE_TOKEN: server.serviceToken,
    });
    assert.equal(printed.code, 0, printed.out);
    assert.deepEqual(JSON.parse(printed.stdout), await serverSchema(server));
  });

  it('a bare collections object is accepted, and pushing the same schema changes nothing', async () => {
    const res = await ferry(dir, ['schema', 'push', '--schema', 'bare.json', ...remote(server)]);
    assert.equal(res.code, 0, res.out);
    assert.match(res.stdout, /no changes/);
  });

  it('refuses a dangerous change with exit code 1 and prints each issue with its cure', async () => {
    await ok(server, '/insert', { collectionName: 'todos', entity: { id: 'a', text: 'x' } });
    const before = await serverSchema(server);
    const res = await ferry(dir, ['schema', 'push', '--schema', 'required.json', ...remote(server)]);
    assert.equal(res.code, 1, res.out);
    assert.match(res.stderr, /\[EXISTING_DATA_MISMATCH\]/);
    assert.match(res.stderr, /Collection 'todos'/);
    assert.match(res.stderr, /'prio': added an attribute where optional is not set \(existing data violates it\)/);
    assert.match(res.stderr, /fix: +make 'prio' optional or delete all entities in 'todos' to allow this edit/);
    assert.deepEqual(await serverSchema(server), before);
  });

  it('-e refuses any backwards-incompatible change; --force overrides -e; compatible changes pass -e', async () => {
    const srv = await startServer();
    try {
      assert.equal((await ferry(dir, ['schema', 'push', '--schema', 'v1.json', ...remote(srv)])).code, 0);
      // Empty collection: the data allows a new required attribute, -e does not.
      const strict = await ferry(dir, ['schema', 'push', '--schema', 'required.json', '-e', ...remote(srv)]);
      assert.equal(strict.code, 1, strict.out);
      assert.match(strict.stderr, /\[SCHEMA_COMPATIBILITY_MISMATCH\]/);
      assert.match(strict.stderr, /'prio': added an attribute where optional is not set\n/);
      const compatible = await ferry(dir, ['schema', 'push', '--schema', 'optional.json', '-e', ...remote(srv)]);
      assert.equal(compatible.code, 0, compatible.out);
      assert.match(compatible.stdout, /1 change\(s\) applied/);
      assert.match(compatible.stdout, /\+ todos\.note: string, optional/);
      const forced = await ferry(dir, ['schema', 'push', '--schema', 'required.json', '-e', '--force', ...remote(srv)]);
      assert.equal(forced.code, 0, forced.out);
      assert.equal((await serverSchema(srv)).collections.todos.schema.properties.prio.type, 'number');
    } finally {
      await srv.stop();
    }
  });

  it('without --token, a loopback server gets the dev service token for TRIPLIT_JWT_SECRET', async () => {
    const res = await ferry(dir, ['schema', 'print', '--remote', server.url], { TRIPLIT_JWT_SECRET: server.jwtSecret });
    assert.equal(res.code, 0, res.out);
    assert.deepEqual(JSON.parse(res.stdout), await serverSchema(server));
  });

  it('a wrong token or an unreachable server is an error (exit code 1)', async () => {
    const bad = await ferry(dir, ['schema', 'push', '--schema', 'v1.json', '--remote', server.url, '--token', server.anonToken]);
    assert.equal(bad.code, 1, bad.out);
    assert.match(bad.stderr, /answered 401/);
    const down = await ferry(dir, ['schema', 'print', '--remote', 'http://127.0.0.1:9', '--token', 'x']);
    assert.equal(down.code, 1, down.out);
    assert.match(down.stderr, /no answer from http:\/\/127\.0\.0\.1:9/);
  });
});

describe('ferry schema diff', () => {
  it('shows what a push would change and which changes are dangerous, without changing anything', async () => {
    const before = await serverSchema(server);
    const none = await ferry(dir, ['schema', 'diff', '--schema', 'v1.json', ...remote(server)]);
    assert.equal(none.code, 0, none.out);
    assert.match(none.stdout, /No differences/);
    const text = await ferry(dir, ['schema', 'diff', '--schema', 'required.json', ...remote(server)]);
    assert.equal(text.code, 0, text.out);
    assert.match(text.stdout, /^\+ todos\.note: string, optional$/m);
    assert.match(text.stdout, /^\+ todos\.prio: number$/m);
    assert.match(text.stdout, /1 backwards-incompatible change/);
    assert.match(text.stdout, /needs: collection_is_empty/);
    const json = await ferry(dir, ['schema', 'diff', '--schema', 'required.json', '--format', 'json', ...remote(server)]);
    assert.equal(json.code, 0, json.out);
    const { diff, issues } = JSON.parse(json.stdout);
    assert.deepEqual(
      diff.map((d) => [d._diff, d.type, d.attribute]),
      [
        ['collectionAttribute', 'insert', ['note']],
        ['collectionAttribute', 'insert', ['prio']],
      ]
    );
    assert.deepEqual(
      issues.map((i) => [i.issue, i.dataConstraint, i.cure]),
      [['added an attribute where optional is not set', 'collection_is_empty', "make 'prio' optional or delete all entities in 'todos' to allow this edit"]]
    );
    // The same issues as the server's own check (a push that is refused).
    const answer = await ok(server, '/override-schema', { schema: REQUIRED, failOnBackwardsIncompatibleChange: true });
    assert.equal(answer.successful, false);
    assert.deepEqual(answer.diff, diff);
    assert.deepEqual(answer.issues.map((i) => i.cure), issues.map((i) => i.cure));
    // --ahead remote: the other direction (a delete of both attributes).
    const back = await ferry(dir, ['schema', 'diff', '--schema', 'required.json', '--ahead', 'remote', '--format', 'json', ...remote(server)]);
    assert.deepEqual(JSON.parse(back.stdout).diff.map((d) => d.type), ['delete', 'delete']);
    assert.deepEqual(await serverSchema(server), before);
  });
});

describe('ferry schema with a TypeScript schema', () => {
  it('evaluates triplit/schema.ts with the app\'s @triplit/cli: print -l local, push, diff', async () => {
    const srv = await startServer();
    const app = makeDir({
      'package.json': { name: 'ts-app', private: true, type: 'module' },
      'triplit/schema.ts': `import { Schema as S } from '@triplit/client';
export const roles = { user: { match: { sub: '$userId' } } };
export const schema = S.Collections({ notes: { schema: S.Schema({ id: S.Id(), body: S.String() }) } });
`,
    });
    try {
      const local = await ferry(app, ['schema', 'print', '--location', 'local']);
      assert.equal(local.code, 0, local.out);
      const printed = JSON.parse(local.stdout);
      assert.deepEqual(Object.keys(printed.collections), ['notes']);
      assert.deepEqual(printed.roles, { user: { match: { sub: '$userId' } } });
      const pushed = await ferry(app, ['schema', 'push', ...remote(srv)]);
      assert.equal(pushed.code, 0, pushed.out);
      assert.deepEqual(await serverSchema(srv), printed);
      const diff = await ferry(app, ['schema', 'diff', ...remote(srv)]);
      assert.match(diff.stdout, /No differences/);
      // Without @triplit/cli the error says what to install.
      fs.rmSync(path.join(app, 'node_modules'));
      const missing = await ferry(app, ['schema', 'push', ...remote(srv)]);
      assert.equal(missing.code, 1, missing.out);
      assert.match(missing.stderr, /npm install --save-dev @triplit\/cli/);
    } finally {
      fs.rmSync(app, { recursive: true, force: true });
      await srv.stop();
    }
  });
});
