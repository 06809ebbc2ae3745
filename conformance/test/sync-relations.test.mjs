// Relational subscriptions converge: queries with `include` (one and many)
// and relation-path filters (`author.name = …`, which the client turns into
// an `exists` subquery) stay equal to the server's /fetch of the same query
// while other clients rename, re-parent, insert and delete related entities.
// The server must ship the related entities the client needs to evaluate the
// query locally (includes and exists witnesses) and evict them when they
// leave (triplit.md §4.4).
import { createClient, closeClients, waitFor, seededRandom, testSeed, localRows, serviceHttp, canon, subscribeFulfilled, sleep } from '../lib/sync.mjs';
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Schema as S } from '@triplit/client';
import { startServer } from '../lib/server.mjs';
import { ok } from '../lib/http.mjs';
import { signToken } from '../lib/tokens.mjs';

// Under CPU load the client applies ENTITY_DATA frames (and CHANGES_ACKs)
// that arrive in one socket read concurrently, and an older one can win in
// its store or in its live queries (client-frame-race.test.mjs); these cases
// failed now and then on the reference (2 of 8 runs of the relations case
// under load average > 10). Ferry restates such entities (sync/settle.rs)
// and writes the set items of a deleted entity as removed into a re-insert
// of its id (db/ghosts.rs), which a live query merging the re-insert into
// the old row needs: with load average ~16 on 2 cores the cases passed 40
// of 40 runs (they failed 1 of 77 before the second fix).

const collections = S.Collections({
  authors: {
    schema: S.Schema({ id: S.Id(), name: S.String(), team: S.String(), run: S.String() }),
    relationships: {
      posts: S.RelationMany('posts', { where: [['authorId', '=', '$id']] }),
    },
  },
  posts: {
    schema: S.Schema({ id: S.Id(), title: S.String(), authorId: S.String(), score: S.Number(), run: S.String() }),
    relationships: {
      author: S.RelationById('authors', '$authorId'),
      comments: S.RelationMany('comments', { where: [['postId', '=', '$id']] }),
    },
  },
  comments: {
    schema: S.Schema({ id: S.Id(), postId: S.String(), body: S.String(), run: S.String() }),
    relationships: {
      post: S.RelationById('posts', '$postId'),
    },
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

/** The viewers' queries: each uses includes and/or a relation-path filter. */
function viewQueries(c, run) {
  return [
    // relation-path filter on a one-relation, plus both includes
    c.query('posts').Where('run', '=', run).Where('author.name', '=', 'Ann').Include('author').Include('comments'),
    // a filter on the root, a many-include with its own filter and order
    c
      .query('authors')
      .Where('run', '=', run)
      .Where('team', '=', 'red')
      .Include('posts', (rel) => rel('posts').Where('score', '>=', 3).Order('score', 'DESC')),
    // relation-path filter through a many-relation (exists a comment with that body)
    c.query('posts').Where('run', '=', run).Where('comments.body', '=', 'hot'),
    // a path two hops away: comments whose post's author is on team blue, with the post
    c.query('comments').Where('run', '=', run).Where('post.author.team', '=', 'blue').Include('post'),
  ];
}

async function seedRun(run) {
  await ok(server, '/bulk-insert', {
    authors: [
      { id: `${run}_a1`, name: 'Ann', team: 'red', run },
      { id: `${run}_a2`, name: 'Bob', team: 'blue', run },
      { id: `${run}_a3`, name: 'Cy', team: 'red', run },
    ],
    posts: [
      { id: `${run}_p1`, title: 'one', authorId: `${run}_a1`, score: 1, run },
      { id: `${run}_p2`, title: 'two', authorId: `${run}_a2`, score: 5, run },
      { id: `${run}_p3`, title: 'three', authorId: `${run}_a1`, score: 3, run },
    ],
    comments: [
      { id: `${run}_c1`, postId: `${run}_p1`, body: 'hot', run },
      { id: `${run}_c2`, postId: `${run}_p2`, body: 'cold', run },
    ],
  });
}

/**
 * One random write by `client` on an entity of its own, never an entity some
 * other client writes in the same round (see sync-convergence.test.mjs,
 * playRounds, for why one write per entity per round).
 */
async function randomWrite(client, rng, run, who, { ids, taken }) {
  const pickFree = (list) => {
    const free = list.filter((id) => !taken.has(id));
    if (!free.length) return undefined;
    const id = rng.pick(free);
    taken.add(id);
    return id;
  };
  const local = async (collection) => (await localRows(client, client.query(collection).Where('run', '=', run))).map((e) => e.id);
  const [authors, posts, comments] = [await local('authors'), await local('posts'), await local('comments')];
  const r = rng.int(8);
  if (r === 0) {
    const id = pickFree(authors);
    if (id) {
      const name = rng.pick(['Ann', 'Bob', 'Cy']);
      await client.update('authors', id, (e) => void (e.name = name));
    }
  } else if (r === 1) {
    const id = pickFree(authors);
    if (id) {
      const team = rng.pick(['red', 'blue']);
      await client.update('authors', id, (e) => void (e.team = team));
    }
  } else if (r === 2 && authors.length) {
    const id = pickFree(posts);
    if (id) {
      const authorId = rng.pick([...authors, `${run}_ghost`]); // sometimes a dangling reference
      await client.update('posts', id, (e) => void (e.authorId = authorId));
    }
  } else if (r === 3) {
    const id = pickFree(posts);
    if (id) {
      const score = rng.int(7);
      await client.update('posts', id, (e) => void (e.score = score));
    }
  } else if (r === 4 && authors.length) {
    const id = `${run}_p${ids.next++}`;
    taken.add(id);
    await client.insert('posts', { id, title: `${who}`, authorId: rng.pick(authors), score: rng.int(7), run });
  } else if (r === 5 && posts.length) {
    const id = `${run}_c${ids.next++}`;
    taken.add(id);
    await client.insert('comments', { id, postId: rng.pick(posts), body: rng.pick(['hot', 'cold', 'meh']), run });
  } else if (r === 6) {
    const id = pickFree(comments);
    if (id) {
      if (rng.chance(0.5)) await client.delete('comments', id);
      else {
        const body = rng.pick(['hot', 'cold']);
        await client.update('comments', id, (e) => void (e.body = body));
      }
    }
  } else if (r === 7) {
    const id = pickFree(posts);
    if (id && rng.chance(0.4)) await client.delete('posts', id);
  }
}

describe('relational queries converge', () => {
  it('viewers with include / relation-path queries match the server while writers change related data', async () => {
    const seed = testSeed(5005);
    const run = `rel_${seed}`;
    await seedRun(run);
    const writers = [0, 1].map((i) => createClient(server, { token: signToken({ sub: `w${i}` }), schema: collections }));
    const viewer = createClient(server, { token: signToken({ sub: 'viewer' }), schema: collections });
    const views = viewQueries(viewer, run);
    const subs = [];
    for (const q of views) subs.push(await subscribeFulfilled(viewer, q));
    // Writers see all three collections of the run.
    for (const w of writers) {
      for (const c of ['authors', 'posts', 'comments']) await subscribeFulfilled(w, w.query(c).Where('run', '=', run));
    }
    const http = serviceHttp(server, collections);
    const check = async (label) => {
      try {
        await checkViews(label);
      } catch (e) {
        if (process.env.FERRY_WIRE_DUMP) {
          const { writeFileSync } = await import('node:fs');
          writeFileSync(process.env.FERRY_WIRE_DUMP, JSON.stringify({ viewer: viewer.wire, writers: writers.map((w) => w.wire) }));
        }
        throw e;
      }
    };
    const checkViews = async (label) => {
      await waitFor(
        async () => {
          for (let i = 0; i < views.length; i++) {
            const truth = canon(await http.fetch(views[i]));
            assert.deepEqual(canon(await localRows(viewer, views[i])), truth, `view ${i} (local)`);
            assert.deepEqual(canon(subs[i].results()), truth, `view ${i} (live)`);
          }
          return true;
        },
        { timeout: 15_000, message: `views match the server (${label})` }
      );
    };
    await check('initial');
    // Before any write the views are not trivial.
    assert.ok((await http.fetch(views[0])).length > 0);

    const rngs = writers.map((_, i) => seededRandom(seed * 7 + i));
    const ids = { next: 100 };
    for (let round = 0; round < 12; round++) {
      const taken = new Set();
      await Promise.all(
        writers.map(async (w, wi) => {
          for (let k = 0; k < 3; k++) {
            await randomWrite(w, rngs[wi], run, `w${wi}r${round}`, { ids, taken });
            if (rngs[wi].chance(0.5)) await sleep(rngs[wi].int(6));
          }
        })
      );
      await check(`seed ${seed}, round ${round}`);
    }
    for (const s of subs) s.unsubscribe();
  });

  it('a relation-path filter: renaming the related entity moves rows in and out, and evicts what left', async () => {
    const run = 'rel_fixed';
    await seedRun(run);
    const viewer = createClient(server, { token: signToken({ sub: 'viewer2' }), schema: collections });
    const q = viewer.query('posts').Where('run', '=', run).Where('author.name', '=', 'Ann').Include('author');
    const sub = await subscribeFulfilled(viewer, q);
    const ids = () => sub.results().map((e) => e.id).sort();
    assert.deepEqual(ids(), [`${run}_p1`, `${run}_p3`]);
    assert.equal(sub.results()[0].author.name, 'Ann');

    // Bob becomes Ann: his post joins, and he is shipped along as its author.
    await ok(server, '/update', { collectionName: 'authors', entityId: `${run}_a2`, changes: { name: 'Ann' } });
    await waitFor(() => ids().length === 3, { message: 'p2 joined' });
    assert.equal(sub.results().find((e) => e.id === `${run}_p2`).author.id, `${run}_a2`);

    // Ann (a1) is renamed: her posts leave, and her entity leaves the client's cache.
    await ok(server, '/update', { collectionName: 'authors', entityId: `${run}_a1`, changes: { name: 'Zed' } });
    await waitFor(() => JSON.stringify(ids()) === JSON.stringify([`${run}_p2`]), { message: 'p1, p3 left' });
    await waitFor(async () => (await viewer.fetchById('authors', `${run}_a1`, { policy: 'local-only' })) === null, {
      message: 'a1 evicted from the cache',
    });
    await waitFor(async () => (await viewer.fetchById('posts', `${run}_p1`, { policy: 'local-only' })) === null, {
      message: 'p1 evicted from the cache',
    });
    // Deleting the related entity removes the row too.
    await ok(server, '/delete', { collectionName: 'authors', entityId: `${run}_a2` });
    await waitFor(() => ids().length === 0, { message: 'p2 left after its author was deleted' });
    sub.unsubscribe();
  });

  it('a many-include follows inserts and deletes of the related rows', async () => {
    const run = 'rel_many';
    await seedRun(run);
    const viewer = createClient(server, { token: signToken({ sub: 'viewer3' }), schema: collections });
    const q = viewer.query('posts').Where('id', '=', `${run}_p1`).Include('comments');
    const sub = await subscribeFulfilled(viewer, q);
    const commentIds = () => (sub.results()[0]?.comments ?? []).map((c) => c.id).sort();
    assert.deepEqual(commentIds(), [`${run}_c1`]);
    const other = createClient(server, { token: signToken({ sub: 'writer3' }), schema: collections });
    await other.insert('comments', { id: `${run}_c9`, postId: `${run}_p1`, body: 'new', run });
    await waitFor(() => commentIds().length === 2, { message: 'c9 included' });
    await ok(server, '/delete', { collectionName: 'comments', entityId: `${run}_c1` });
    await waitFor(() => JSON.stringify(commentIds()) === JSON.stringify([`${run}_c9`]), { message: 'c1 gone' });
    // Re-parenting a comment away removes it from the include.
    await ok(server, '/update', { collectionName: 'comments', entityId: `${run}_c9`, changes: { postId: `${run}_p2` } });
    await waitFor(() => commentIds().length === 0, { message: 'c9 moved away' });
    assert.deepEqual(canon(await localRows(viewer, q)), canon(await serviceHttp(server, collections).fetch(q)));
    sub.unsubscribe();
  });
});
