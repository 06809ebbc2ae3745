// A user's `/fetch` of `todos` under a "mine or shared" read permission over
// N todos (1 % shared, 1,000 owners): first use and steady state (indexes
// built on first use answer both branches of the permission after it).
//   node bench/or-permission.mjs target/release/ferry 100000
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
const [bin, n] = [process.argv[2], Number(process.argv[3] ?? 100000)];
const secret = 'orperm-secret';
const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
const sign = (claims) => {
  const h = b64({ alg: 'HS256', typ: 'JWT' }), p = b64(claims);
  const s = crypto.createHmac('sha256', secret).update(`${h}.${p}`).digest('base64url');
  return `${h}.${p}.${s}`;
};
const service = sign({ 'x-triplit-token-type': 'secret', 'x-triplit-project-id': 'local-project-id' });
const user = sign({ sub: 'u1' });
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-orperm-'));
const port = 20000 + Math.floor(Math.random() * 10000);
const child = spawn(bin, ['serve', '--host', '127.0.0.1', '--port', String(port)], { env: { ...process.env, JWT_SECRET: secret, LOCAL_DATABASE_URL: dir + '/f.db' }, stdio: 'ignore' });
const url = `http://127.0.0.1:${port}`;
const post = async (path, body, tok) => {
  const r = await fetch(url + path, { method: 'POST', headers: { authorization: `Bearer ${tok}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (r.status !== 200) throw new Error(`${path} ${r.status} ${await r.text()}`);
  return r.json();
};
for (let i = 0; i < 200; i++) { try { if ((await fetch(url + '/healthcheck')).ok) break; } catch {} await new Promise((r) => setTimeout(r, 50)); }
const schema = {
  roles: { user: { match: { sub: '$userId' } } },
  collections: {
    todos: { schema: { type: 'record', properties: { id: { type: 'string' }, ownerId: { type: 'string' }, shared: { type: 'boolean' } } },
      permissions: { user: { read: { filter: [{ mod: 'or', filters: [['ownerId', '=', '$role.userId'], ['shared', '=', true]] }] } } } },
  },
};
await post('/override-schema', { schema }, service);
for (let i = 0; i < n; i += 5000) {
  const todos = Array.from({ length: Math.min(5000, n - i) }, (_, k) => ({ id: `t${i + k}`, ownerId: `u${(i + k) % 1000}`, shared: (i + k) % 100 === 0 }));
  await post('/bulk-insert?noReturn=true', { todos }, service);
}
const times = [];
let rows = 0;
for (let i = 0; i < 30; i++) {
  const t0 = performance.now();
  rows = (await post('/fetch', { query: { collectionName: 'todos' } }, user)).length;
  times.push(performance.now() - t0);
  if (i === 0) await new Promise((r) => setTimeout(r, 2000)); // let a build on first use finish
}
const med = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
console.log(JSON.stringify({ rows, first_ms: times[0].toFixed(1), median_rest_ms: med(times.slice(1)).toFixed(2) }));
child.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
child.kill('SIGTERM');
