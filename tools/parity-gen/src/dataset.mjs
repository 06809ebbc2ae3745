// The seeded dataset. Entities are built as JS input values (Sets for set
// fields) and inserted through the real DB, which encodes them; the fixture
// stores what upstream stored.

import { rng } from './rng.mjs';
import { STRINGS, NUMBERS, DATES, TAGS, SET_NUMBERS, JSONS, ORGS, COLORS } from './pools.mjs';

// Ids are strings compared lexicographically ('u10' < 'u2'), with a few
// non-ASCII ones. They avoid mixing astral characters with U+E000..U+FFFF:
// the in-memory store orders ids in UTF-16 order, the server and Ferry in
// code-point order (triplit.md Appendix C), and this corpus is about the
// query engine, not that storage difference.
const range = (prefix, n) => Array.from({ length: n }, (_, i) => `${prefix}${i + 1}`);

export const USER_IDS = [...range('u', 18), 'U0', 'u_ü', 'u😀'];
export const POST_IDS = [...range('p', 44), 'P0', 'p-é', 'p😀'];
export const COMMENT_IDS = range('c', 110);
export const MISSING_USER = 'u-missing';

// `maybe(r, v)`: the value, `null`, or absent (`undefined` drops the key).
function maybe(r, v, { nullable = true, pValue = 0.6 } = {}) {
  const x = r.next();
  if (x < pValue) return v;
  if (nullable && x < pValue + (1 - pValue) / 2) return null;
  return undefined;
}

function clean(o) {
  const out = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v;
  return out;
}

export function buildDataset(seed = 20261201) {
  const r = rng(seed);
  const users = USER_IDS.map((id, i) =>
    clean({
      id,
      name: STRINGS[(i * 7) % STRINGS.length],
      handle: maybe(r, r.pick(STRINGS)),
      age: maybe(r, r.pick(NUMBERS), { nullable: false }),
      active: i % 3 !== 0,
      orgId: maybe(r, ORGS[i % ORGS.length], { nullable: false, pValue: 0.75 }),
      kind: ['admin', 'member', 'guest'][i % 3],
      joined: DATES[i % DATES.length],
      tags: new Set(r.sample(TAGS, r.int(0, 3))),
      scores: new Set(r.sample(SET_NUMBERS, r.int(0, 3))),
      profile: {
        ...clean({ bio: maybe(r, r.pick(STRINGS), { nullable: false }) }),
        level: r.int(0, 4),
        address: clean({
          city: r.pick(['Paris', 'paris', 'Zürich', '東京', 'Berlin']),
          zip: maybe(r, r.pick(['75001', '8001', '', '10115'])),
        }),
      },
      settings: maybe(r, r.pick(JSONS), { nullable: false }),
    })
  );

  // Post authors always exist (relational order over a missing related
  // entity crashes upstream, triplit.md Appendix C); editors may be missing.
  const posts = POST_IDS.map((id, i) =>
    clean({
      id,
      title: STRINGS[(i * 5 + 3) % STRINGS.length],
      body: r.pick([
        'first line\nsecond line',
        'no newline here',
        'emoji 😀 inside',
        'UPPER lower Mixed',
        '',
        'x\ny\nz',
        '100% sure',
        'under_score and %percent',
      ]),
      authorId: USER_IDS[r.int(0, USER_IDS.length - 1)],
      editorId: maybe(r, r.chance(0.3) ? MISSING_USER : r.pick(USER_IDS)),
      score: i < 6 ? 3 : r.pick(NUMBERS),
      published: r.chance(0.6),
      created: i % 4 === 0 ? DATES[3] : r.pick(DATES),
      updated: maybe(r, r.pick(DATES)),
      tags: new Set(r.sample(TAGS, r.int(0, 4))),
      nums: new Set(r.sample(SET_NUMBERS, r.int(0, 3))),
      meta: {
        prio: r.int(-2, 5),
        ...clean({ label: maybe(r, r.pick(STRINGS), { nullable: false }) }),
        flags: clean({ pinned: r.chance(0.3), color: maybe(r, r.pick(COLORS)) }),
      },
      extra: maybe(r, r.pick(JSONS), { nullable: false }),
      rating: maybe(r, r.pick([1, 2, 3, 4, 5, 2.5, -1, 0])),
    })
  );

  // Only the first 40 posts get comments, so some posts have none.
  const comments = COMMENT_IDS.map((id, i) =>
    clean({
      id,
      postId: POST_IDS[r.int(0, 39)],
      authorId: USER_IDS[r.int(0, USER_IDS.length - 1)],
      parentId: i > 10 && r.chance(0.3) ? COMMENT_IDS[r.int(0, i - 1)] : undefined,
      text: r.pick(STRINGS),
      score: r.int(-3, 8),
      created: r.pick(DATES),
      hidden: maybe(r, r.chance(0.5), { nullable: false }),
    })
  );

  const secrets = range('s', 5).map((id, i) => ({
    id,
    ownerId: USER_IDS[i],
    value: `secret ${i}`,
  }));
  const notes = range('n', 10).map((id, i) => ({
    id,
    ownerId: i < 8 ? USER_IDS[i] : MISSING_USER,
    text: STRINGS[i + 10],
    pinned: i % 2 === 0,
  }));
  const shares = range('sh', 8).map((id, i) => ({
    id,
    code: ['open', 'secret', 'OPEN', 'open', 'x', '', 'ünï', 'secret'][i],
    postId: POST_IDS[i * 3],
    views: [0, 10, -1, 10, 3.5, 1e21, 7, 7][i],
  }));

  return { users, posts, comments, secrets, notes, shares };
}
