// Sequential user inserts under a relational write permission (`tasks`
// insert allowed when `members.userId = $role.userId`) over N members: the
// time of each `/insert`, first use and steady state (an index built on first
// use answers the permission's subquery after the first write).
//   node bench/write-permission.mjs target/release/ferry 100000
import { median, sign, start } from './lib/one-server.mjs';

const [bin, n] = [process.argv[2], Number(process.argv[3] ?? 100000)];
const srv = await start(bin);
const user = sign({ sub: 'u1' });
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
await srv.post('/override-schema', { schema });
for (let i = 0; i < n; i += 5000) {
  const members = Array.from({ length: Math.min(5000, n - i) }, (_, k) => ({ id: `m${i + k}`, projectId: `p${(i + k) % 1000}`, userId: `u${(i + k) % 7}` }));
  await srv.post('/bulk-insert?noReturn=true', { members });
}
const times = [];
for (let i = 0; i < 100; i++) {
  const t0 = performance.now();
  await srv.post('/insert', { collectionName: 'tasks', entity: { id: `t${i}`, projectId: 'p1' } }, user);
  times.push(performance.now() - t0);
}
console.log(JSON.stringify({ first_ms: times[0].toFixed(1), median_first10: median(times.slice(0, 10)).toFixed(2), median_last50_ms: median(times.slice(50)).toFixed(2) }));
srv.stop();
