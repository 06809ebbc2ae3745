// Sequential user inserts under a relational write permission (`tasks`
// insert allowed when `members.userId = $role.userId`) over N members: the
// time of each `/insert`, first use and steady state (an index built on first
// use answers the permission's subquery after the first write).
//   node bench/write-permission.mjs target/release/ferry 100000
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
const [bin, n] = [process.argv[2], Number(process.argv[3] ?? 100000)];
const secret = 'wperm-secret';
const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
const sign = (claims) => {
  const h = b64({ alg: 'HS256', typ: 'JWT' }), p = b64(claims);
  const s = crypto.createHmac('sha256', secret).update(`${h}.${p}`).digest('base64url');
  return `${h}.${p}.${s}`;
};
const service = sign({ 'x-triplit-token-type': 'secret', 'x-triplit-project-id': 'local-project-id' });
const user = sign({ sub: 'u1' });
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-wperm-'));
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
    tasks: { schema: { type: 'record', properties: { id: { type: 'string' }, projectId: { type: 'string' } } },
      relationships: { members: { query: { collectionName: 'members', where: [['projectId', '=', '$projectId']] }, cardinality: 'many' } },
      permissions: { user: { read: { filter: [true] }, insert: { filter: [['members.userId', '=', '$role.userId']] } } } },
    members: { schema: { type: 'record', properties: { id: { type: 'string' }, projectId: { type: 'string' }, userId: { type: 'string' } } },
      permissions: { user: { read: { filter: [true] } } } },
  },
};
await post('/override-schema', { schema }, service);
for (let i = 0; i < n; i += 5000) {
  const members = Array.from({ length: Math.min(5000, n - i) }, (_, k) => ({ id: `m${i + k}`, projectId: `p${(i + k) % 1000}`, userId: `u${(i + k) % 7}` }));
  await post('/bulk-insert?noReturn=true', { members }, service);
}
const times = [];
for (let i = 0; i < 100; i++) {
  const t0 = performance.now();
  await post('/insert', { collectionName: 'tasks', entity: { id: `t${i}`, projectId: 'p1' } }, user);
  times.push(performance.now() - t0);
}
const med = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
console.log(JSON.stringify({ first_ms: times[0].toFixed(1), median_first10: med(times.slice(0, 10)).toFixed(2), median_last50_ms: med(times.slice(50)).toFixed(2) }));
child.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
child.kill('SIGTERM');
