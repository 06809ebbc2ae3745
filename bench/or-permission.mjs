// A user's `/fetch` of `todos` under a "mine or shared" read permission over
// N todos (1 % shared, 1,000 owners): first use and steady state (indexes
// built on first use answer both branches of the permission after it).
//   node bench/or-permission.mjs target/release/ferry 100000
import { median, sign, start } from './lib/one-server.mjs';

const [bin, n] = [process.argv[2], Number(process.argv[3] ?? 100000)];
const srv = await start(bin);
const user = sign({ sub: 'u1' });
const schema = {
  roles: { user: { match: { sub: '$userId' } } },
  collections: {
    todos: { schema: { type: 'record', properties: { id: { type: 'string' }, ownerId: { type: 'string' }, shared: { type: 'boolean' } } },
      permissions: { user: { read: { filter: [{ mod: 'or', filters: [['ownerId', '=', '$role.userId'], ['shared', '=', true]] }] } } } },
  },
};
await srv.post('/override-schema', { schema });
for (let i = 0; i < n; i += 5000) {
  const todos = Array.from({ length: Math.min(5000, n - i) }, (_, k) => ({ id: `t${i + k}`, ownerId: `u${(i + k) % 1000}`, shared: (i + k) % 100 === 0 }));
  await srv.post('/bulk-insert?noReturn=true', { todos });
}
const times = [];
let rows = 0;
for (let i = 0; i < 30; i++) {
  const t0 = performance.now();
  rows = (await srv.post('/fetch', { query: { collectionName: 'todos' } }, user)).length;
  times.push(performance.now() - t0);
  if (i === 0) await new Promise((r) => setTimeout(r, 2000)); // let a build on first use finish
}
console.log(JSON.stringify({ rows, first_ms: times[0].toFixed(1), median_rest_ms: median(times.slice(1)).toFixed(2) }));
srv.stop();
