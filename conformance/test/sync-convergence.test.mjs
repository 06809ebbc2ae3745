// Several TriplitClients write concurrently (seeded random inserts, updates
// and deletes on a shared pool of ids) and must converge: each client's local
// view of its query equals the server's /fetch of the same query, and
// clients subscribed to the same query agree with each other.
//
// Reproduce a failure with FERRY_SEED=<seed printed in the test name>; add
// FERRY_SYNC_DEBUG=1 (or =full) to print, for each diverged entity, the
// frames the client exchanged about it.
import {
  createClient,
  closeClients,
  waitFor,
  seededRandom,
  testSeed,
  localRows,
  serviceHttp,
  canon,
  sleep,
  subscribeFulfilled,
} from '../lib/sync.mjs';
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Schema as S } from '@triplit/client';
import { startServer } from '../lib/server.mjs';
import { signToken } from '../lib/tokens.mjs';

const collections = S.Collections({
  items: {
    schema: S.Schema({
      id: S.Id(),
      n: S.Number(),
      label: S.String(),
      tags: S.Set(S.String(), { default: S.Default.Set.empty() }),
      meta: S.Record({ a: S.Number(), b: S.String() }),
      run: S.String(),
    }),
  },
});

let server;
before(async () => {
  server = await startServer({ schema: { collections } });
});
after(async () => {
  await closeClients();
  await server?.stop();
});

const TAGS = ['red', 'green', 'blue', 'x😀', 'ünï'];

/**
 * One client's share of a round: one random operation on each of a random
 * subset of the ids it owns this round, in random order. `exists` is the
 * harness's own record of which ids exist on the server (exact, since an id
 * has one writer per round): a missing id is inserted; an existing one the
 * client can see in its own query is updated (one of four field changes) or
 * deleted; an existing one it cannot see is left alone (inserting it would be
 * an upsert, see playRounds).
 */
async function workload(client, rng, { run, mine, who, view, exists, retired, pool }) {
  const ids = mine.filter(() => rng.chance(0.75));
  for (let i = ids.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [ids[i], ids[j]] = [ids[j], ids[i]];
  }
  for (const [i, id] of ids.entries()) {
    if (retired?.has(id)) continue;
    const visible = (await localRows(client, view)).some((e) => e.id === id);
    if (!exists.has(id)) {
      exists.add(id);
      await client.insert('items', {
        id,
        n: rng.int(100),
        label: `${who}:${i}`,
        tags: new Set([rng.pick(TAGS), rng.pick(TAGS)]),
        meta: { a: rng.int(10), b: who },
        run,
      });
    } else if (!visible) {
      continue;
    } else if (rng.chance(0.75)) {
      const kind = rng.int(4);
      const t = rng.pick(TAGS);
      const n = rng.int(100);
      await client.update('items', id, (e) => {
        if (kind === 0) e.n = n;
        else if (kind === 1) e.label = `${who}:${i}`;
        else if (kind === 2) {
          if (e.tags.has(t)) e.tags.delete(t);
          else e.tags.add(t);
        } else e.meta.a = n % 10;
      });
    } else {
      exists.delete(id);
      if (retired) {
        // No reuse: the id is gone for good and a fresh one joins the pool.
        retired.add(id);
        pool.push(`${run}_e${pool.length}`);
      }
      await client.delete('items', id);
    }
    if (rng.chance(0.5)) await sleep(rng.int(8));
  }
}

/** Wait until every client's local view of its query equals the server's answer to it. */
async function assertConverged(clients, views, http, label) {
  await waitFor(
    async () => {
      for (let i = 0; i < clients.length; i++) {
        const truth = canon(await http.fetch(views[i]));
        assert.deepEqual(canon(await localRows(clients[i], views[i])), truth, `client ${i}`);
      }
      return true;
    },
    { timeout: 15_000, message: `clients converged with the server (${label})` }
  ).catch(async (e) => {
    if (process.env.FERRY_SYNC_DEBUG) await dumpDivergence(clients, views, http);
    throw e;
  });
}

/**
 * Rounds of concurrent writes. In each round all clients write at the same
 * time, each on the ids it owns in that round (id i belongs to client
 * (i + round) mod N), at most one operation per id; then all must converge
 * before the next round. Ownership rotates, so over the run every entity is
 * inserted, updated, deleted and re-created by several clients.
 *
 * Why at most one write per entity between two convergence points:
 * TriplitClient 1.0.50 runs its message handlers concurrently (an async
 * onmessage per frame), and each applies its message in its own KV
 * transaction with no conflict check. When two messages touching the same
 * entity are handled in the same tick (two ENTITY_DATA, or a CHANGES_ACK and
 * an ENTITY_DATA carrying someone else's change), the older state can commit
 * last, and the client stays diverged for good. That happens against the
 * reference server too, so a test that writes the same entity repeatedly or
 * from several clients at once is flaky whatever the server does. With one
 * write per entity per round, each client sees at most one message per entity
 * per round, and the writer's ACK (cached base + its patch) equals the
 * ENTITY_DATA the server sends (the same base + the same patch).
 *
 * For the same reason a client never inserts an id that exists on the server
 * but is outside its query: the server's upsert deep-merges (set items of
 * both survive), so its ENTITY_DATA differs from the client's ACKed insert.
 *
 * And where clients see only part of the data (filtered queries), a deleted id
 * is never re-inserted (reuseIds: false): an entity a client wrote but that
 * never entered its query stays in its cache after someone else deletes it
 * (the server never sent it, so never evicts it), and a later insert of the
 * same id merges with that stale copy; ENTITY_DATA sets are deep-merged into
 * the cache too, so stale set items never go away.
 *
 * Rotating ownership also keeps each id's delete and re-insert in different
 * rounds. Folded into one CHANGES batch ({sets: [id → entity], deletes: [id]}),
 * the reference stores the new entity but sends the old and new deep-merged
 * in ENTITY_DATA (e.g. set items of the deleted entity come back).
 */
async function playRounds({ clients, views, run, pool, rounds, seed, http, reuseIds = true }) {
  const n = clients.length;
  const rngs = clients.map((_, i) => seededRandom(seed * 31 + i));
  const exists = new Set();
  const retired = reuseIds ? undefined : new Set();
  for (let round = 0; round < rounds; round++) {
    await Promise.all(
      clients.map((c, ci) =>
        workload(c, rngs[ci], {
          run,
          mine: pool.filter((_, i) => (i + round) % n === ci),
          who: `c${ci}r${round}`,
          view: views[ci],
          exists,
          retired,
          pool,
        })
      )
    );
    await assertConverged(clients, views, http, `seed ${seed}, after round ${round}`);
  }
}

async function dumpDivergence(clients, views, http) {
  for (let i = 0; i < clients.length; i++) {
    const truth = canon(await http.fetch(views[i]));
    const local = canon(await localRows(clients[i], views[i]));
    const ids = new Set([...truth, ...local].map((e) => e.id));
    for (const id of ids) {
      const a = JSON.stringify(truth.find((e) => e.id === id));
      const b = JSON.stringify(local.find((e) => e.id === id));
      if (a === b) continue;
      console.log(`client ${i} entity ${id}\n  server ${a}\n  local  ${b}`);
      for (const sock of clients[i].wire.sockets) {
        for (const [dir, m] of sock.log ?? []) {
          const t = JSON.stringify(m);
          if (t.includes(id) || m.type === 'CHANGES_ACK') console.log('   ', dir, process.env.FERRY_SYNC_DEBUG === 'full' ? t : t.slice(0, 400));
        }
      }
    }
  }
}

function userToken(i) {
  return signToken({ sub: `user-${i}` });
}

// Under CPU load the client applies ENTITY_DATA frames (and CHANGES_ACKs)
// that arrive in one socket read concurrently, and an older one can win in
// its store or in its live queries (client-frame-race.test.mjs); these cases
// failed now and then on the reference (2 of 8 runs of the relations case
// under load average > 10). Ferry restates such entities (sync/settle.rs)
// and writes the set items of a deleted entity as removed into a re-insert
// of its id (db/ghosts.rs), which a live query merging the re-insert into
// the old row needs: with load average ~16 on 2 cores the cases passed 40
// of 40 runs (they failed 1 of 77 before the second fix).

describe('random concurrent writes converge', () => {
  for (const { nClients, seed, rounds } of [
    { nClients: 2, seed: testSeed(1001), rounds: 10 },
    { nClients: 3, seed: testSeed(2002), rounds: 9 },
    { nClients: 4, seed: testSeed(3003), rounds: 8 },
  ]) {
    it(`${nClients} clients, ${rounds} rounds, seed ${seed}`, async () => {
      const run = `r${nClients}_${seed}`;
      const pool = Array.from({ length: 6 * nClients }, (_, i) => `${run}_e${i}`);
      const clients = Array.from({ length: nClients }, (_, i) =>
        createClient(server, { token: userToken(i), schema: collections })
      );
      const views = clients.map((c) => c.query('items').Where('run', '=', run));
      const subs = await Promise.all(clients.map((c, i) => subscribeFulfilled(c, views[i])));
      const http = serviceHttp(server, collections);
      await playRounds({ clients, views, run, pool, rounds, seed, http });
      const truth = canon(await http.fetch(views[0]));
      assert.ok(truth.length > 0, 'something survived');
      // The live subscriptions show the same rows.
      await waitFor(
        () => {
          for (const s of subs) assert.deepEqual(canon(s.results()), truth);
          return true;
        },
        { message: 'subscription results converged' }
      ).catch(async (e) => {
        if (process.env.FERRY_WIRE_DUMP) {
          // Every frame each client sent and received, with what each shows.
          const { writeFileSync } = await import('node:fs');
          const shown = await Promise.all(
            clients.map(async (c, i) => ({ live: canon(subs[i].results()), local: canon(await localRows(c, views[i])) }))
          );
          writeFileSync(process.env.FERRY_WIRE_DUMP, JSON.stringify({ truth, shown, wires: clients.map((c) => c.wire) }));
        }
        throw e;
      });
      for (const s of subs) s.unsubscribe();
    });
  }

  it('clients subscribed to different filtered and ordered queries each match the server for theirs', async () => {
    const seed = testSeed(4004);
    const run = `f_${seed}`;
    const pool = Array.from({ length: 24 }, (_, i) => `${run}_e${i}`);
    const makers = [
      (c) => c.query('items').Where('run', '=', run),
      (c) => c.query('items').Where('run', '=', run).Where('n', '>=', 50),
      (c) => c.query('items').Where('run', '=', run).Where('tags', 'has', 'red'),
      (c) => c.query('items').Where('run', '=', run).Where('meta.a', '<', 5).Order(['n', 'DESC'], ['label', 'ASC']),
    ];
    const clients = makers.map((_, i) => createClient(server, { token: userToken(10 + i), schema: collections }));
    const views = clients.map((c, i) => makers[i](c));
    const subs = await Promise.all(clients.map((c, i) => subscribeFulfilled(c, views[i])));
    const http = serviceHttp(server, collections);
    await playRounds({ clients, views, run, pool, rounds: 8, seed, http, reuseIds: false });
    await waitFor(
      async () => {
        for (let i = 0; i < clients.length; i++) {
          assert.deepEqual(canon(subs[i].results()), canon(await http.fetch(views[i])), `client ${i}`);
        }
        return true;
      },
      { message: 'subscription results match the server' }
    );
    // The ordered query's live results come in the server's order. (The order
    // is total on purpose: the client's live results do not break ties by id
    // the way the server does.)
    const ordered = await http.fetch(views[3]);
    assert.deepEqual(subs[3].results().map((e) => e.id), ordered.map((e) => e.id));
    for (const s of subs) s.unsubscribe();
  });
});
