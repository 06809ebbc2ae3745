// The query corpus: hand-written categories plus seeded random queries.
// Every case is `{name, query, session?}`; the runner adds `expected`.

import { rng } from './rng.mjs';
import { PATHS, SORTABLE, RELATIONAL_ORDER, RELATIONAL_WHERE, OPS, INVALID_OPS } from './paths.mjs';
import { VALUES, IN_VALUES, LIKE_PATTERNS, SET_VALUES } from './values.mjs';
import { SESSIONS } from './sessions.mjs';

// The path of each kind that gets the full value lists.
const FULL = new Set([
  'users.name', 'posts.title', 'posts.score', 'users.active', 'posts.created',
  'users.settings.theme', 'posts.extra.n', 'users.tags', 'posts.nums',
]);

const q = (collectionName, rest = {}) => ({ collectionName, ...rest });
const show = (v) => (typeof v === 'string' ? JSON.stringify(v) : JSON.stringify(v) ?? String(v));

function valuesFor(kind, op, full) {
  const size = full ? 'full' : 'short';
  if (op === 'isDefined') return [true, false];
  if (kind === 'set_string' || kind === 'set_number') {
    const sv = SET_VALUES[kind];
    if (op === 'has' || op === '!has') return full ? sv.has : sv.has.slice(0, 4);
    if (op === 'in' || op === 'nin') return sv.in;
    if (op === 'like' || op === 'nlike') return sv.like;
    return full ? sv.item : sv.item.slice(0, 2);
  }
  if (kind === 'record') return [true];
  if (op === 'in' || op === 'nin') {
    const xs = IN_VALUES[kind] ?? IN_VALUES.string;
    return full ? xs : xs.slice(0, 3);
  }
  if (op === 'like' || op === 'nlike') {
    if (kind === 'json') return full ? ['%', 'd%', '%K', '_', null] : ['%', 'd%'];
    return LIKE_PATTERNS[size];
  }
  if (op === 'has' || op === '!has') return ['dark', 1];
  return VALUES[kind][size];
}

// 1. Every operator on every path, with the values of its kind.
function operatorMatrix() {
  const out = [];
  for (const [coll, paths] of Object.entries(PATHS)) {
    for (const [path, kind] of Object.entries(paths)) {
      const full = FULL.has(`${coll}.${path}`);
      for (const op of OPS[kind]) {
        valuesFor(kind, op, full).forEach((v, i) => {
          out.push({
            name: `ops/${coll}.${path}/${op}/${i}`,
            query: q(coll, { where: [[path, op, v]] }),
          });
        });
      }
      for (const op of INVALID_OPS[kind]) {
        out.push({
          name: `ops-invalid/${coll}.${path}/${op}`,
          query: q(coll, { where: [[path, op, kind.startsWith('set') ? 'red' : 'x']] }),
        });
      }
      // The explicit SET_ prefix is the same operator.
      if (kind.startsWith('set')) {
        const v = kind === 'set_string' ? 'red' : 1;
        for (const op of ['SET_has', 'SET_!has', 'SET_=', 'SET_isDefined']) {
          out.push({
            name: `ops/${coll}.${path}/${op}`,
            query: q(coll, { where: [[path, op, op === 'SET_isDefined' ? true : v]] }),
          });
        }
      }
    }
  }
  // Ids: `in` keeps the order of the value list when no order is given.
  const idCases = [
    ['in', ['p3', 'p1', 'p2']],
    ['in', ['p10', 'nope', 'p1', 'p10']],
    ['in', []],
    ['nin', ['p1', 'p2']],
    ['=', 'p-é'],
    ['like', 'p1%'],
    ['<', 'p2'],
    ['>=', 'p😀'],
  ];
  idCases.forEach(([op, v], i) =>
    out.push({ name: `ops/posts.id/list/${i}`, query: q('posts', { where: [['id', op, v]] }) })
  );
  out.push({
    name: 'ops/posts.id/in-limit',
    query: q('posts', { where: [['id', 'in', ['p9', 'p4', 'p7', 'p1']]], limit: 2 }),
  });
  // Paths that are not in the schema.
  for (const [coll, path] of [['posts', 'nope'], ['users', 'profile.nope'], ['posts', 'meta.flags.nope'],
    ['posts', 'title.length'], ['users', 'settings.nope.deeper']]) {
    out.push({ name: `ops-invalid/${coll}.${path}/unknown-path`, query: q(coll, { where: [[path, '=', 'x']] }) });
  }
  return out;
}

// 2. Boolean literals and and/or groups.
function groups() {
  const A = ['published', '=', true];
  const B = ['score', '>', 2];
  const C = ['tags', 'has', 'red'];
  const D = ['title', 'like', '%a%'];
  const E = ['rating', 'isDefined', false];
  const and = (...filters) => ({ mod: 'and', filters });
  const or = (...filters) => ({ mod: 'or', filters });
  const shapes = {
    'true': [true],
    'false': [false],
    'true-and-A': [true, A],
    'false-and-A': [false, A],
    'empty-where': [],
    'A-B': [A, B],
    'or-A-B': [or(A, B)],
    'and-A-B': [and(A, B)],
    'or-empty': [or()],
    'and-empty': [and()],
    'or-true': [or(false, true)],
    'or-false': [or(false)],
    'and-false': [and(A, false)],
    'or-and': [or(and(A, B), and(C, D))],
    'and-or': [and(or(A, C), or(B, D))],
    'nested-3': [or(and(A, or(B, and(C, D))), E)],
    'same-kind-nested': [and(and(A), and(and(B)))],
    'or-or': [or(or(A), or(B, or(C)))],
    'or-with-bool': [or(A, false, B)],
    'E-or-C': [or(E, C)],
    'dup': [A, A, or(A, A)],
    'or-single': [or(D)],
  };
  return Object.entries(shapes).map(([n, where]) => ({ name: `groups/${n}`, query: q('posts', { where }) }));
}

// 3. Relation paths in `where`, and `exists`.
function relations() {
  const out = [];
  const rel = {
    string: ['like', '%a%'],
    number: ['>', 2],
    boolean: ['=', true],
    set_string: ['has', 'red'],
  };
  for (const [coll, list] of Object.entries(RELATIONAL_WHERE)) {
    for (const [path, kind] of list) {
      const [op, v] = rel[kind];
      out.push({ name: `relations/${coll}/${path}/${op}`, query: q(coll, { where: [[path, op, v]] }) });
      out.push({ name: `relations/${coll}/${path}/isDefined`, query: q(coll, { where: [[path, 'isDefined', true]] }) });
      out.push({ name: `relations/${coll}/${path}/notDefined`, query: q(coll, { where: [[path, 'isDefined', false]] }) });
      out.push({ name: `relations/${coll}/${path}/null`, query: q(coll, { where: [[path, '=', null]] }) });
    }
  }
  const ex = (where, extra = {}) => ({ exists: { ...extra, ...(where ? { where } : {}) } });
  const shapes = [
    ['posts', 'comments', [ex(null, { _extends: 'comments' })]],
    ['posts', 'comments-score', [ex([['score', '>', 5]], { _extends: 'comments' })]],
    ['posts', 'comments-neg', [ex([['score', '<', 0]], { _extends: 'comments' })]],
    ['posts', 'comments.author', [ex([['active', '=', true]], { _extends: 'comments.author' })]],
    ['posts', 'author', [ex([['orgId', '=', 'o1']], { _extends: 'author' })]],
    ['posts', 'editor', [ex(null, { _extends: 'editor' })]],
    ['posts', 'topComments', [ex([['score', '>', 6]], { _extends: 'topComments' })]],
    ['posts', 'or-exists', [{ mod: 'or', filters: [ex([['score', '>', 6]], { _extends: 'comments' }), ['score', '<', 0]] }]],
    ['posts', 'nested-exists', [ex([ex([['score', '>', 3]], { _extends: 'replies' })], { _extends: 'comments' })]],
    ['posts', 'subquery', [ex([['postId', '=', '$1.id'], ['score', '<', 0]], { collectionName: 'comments' })]],
    ['posts', 'subquery-bare-var', [ex([['postId', '=', '$id'], ['score', '>', 6]], { collectionName: 'comments' })]],
    ['posts', 'subquery-$1-author', [ex([['id', '=', '$1.authorId'], ['active', '=', false]], { collectionName: 'users' })]],
    ['posts', 'subquery-nested-$2', [ex([['authorId', '=', '$1.id'], ex([['id', '=', '$2.authorId']], { collectionName: 'users' })], { collectionName: 'posts' })]],
    ['posts', 'subquery-no-where', [ex(null, { collectionName: 'secrets' })]],
    ['posts', 'subquery-limit', [ex([['postId', '=', '$1.id']], { collectionName: 'comments', limit: 0 })]],
    ['posts', 'and-exists', [ex(null, { _extends: 'comments' }), ['published', '=', false]]],
    ['users', 'posts', [ex([['published', '=', true]], { _extends: 'posts' })]],
    ['users', 'posts.comments', [ex([['score', '>', 6]], { _extends: 'posts.comments' })]],
    ['users', 'latestPost', [ex([['score', '>', 3]], { _extends: 'latestPost' })]],
    ['users', 'orgmates', [ex(null, { _extends: 'orgmates' })]],
    ['comments', 'post.author', [ex([['active', '=', true]], { _extends: 'post.author' })]],
    ['comments', 'parent', [ex(null, { _extends: 'parent' })]],
    ['comments', 'replies', [ex(null, { _extends: 'replies' })]],
    ['posts', 'unknown-relation', [ex(null, { _extends: 'nope' })]],
    ['posts', 'not-a-relation', [ex(null, { _extends: 'title' })]],
    ['posts', 'unknown-collection', [ex(null, { collectionName: 'nope' })]],
  ];
  for (const [coll, n, where] of shapes) out.push({ name: `exists/${coll}/${n}`, query: q(coll, { where }) });
  // Relational values: flipped into exists by the preparation.
  const flips = [
    ['comments', 'include-post-author', { include: { same: { subquery: q('posts', { where: [['authorId', '=', '$1.post.authorId']] }), cardinality: 'many' } } }],
  ];
  for (const [coll, n, rest] of flips) out.push({ name: `relational-value/${coll}/${n}`, query: q(coll, rest) });
  return out;
}

// 4. Includes.
function includes() {
  const out = [];
  const shapes = [
    ['posts', 'author-null', { author: null }],
    ['posts', 'author-true', { author: true }],
    ['posts', 'editor', { editor: null }],
    ['posts', 'comments', { comments: null }],
    ['posts', 'topComments', { topComments: null }],
    ['posts', 'firstComment', { firstComment: null }],
    ['posts', 'sameAuthor', { sameAuthor: null }],
    ['posts', 'several', { author: null, comments: null, firstComment: true }],
    ['posts', 'extends-where', { comments: { _extends: 'comments', where: [['score', '>', 3]] } }],
    ['posts', 'extends-order-limit', { comments: { _extends: 'comments', order: [['score', 'DESC'], ['id', 'ASC']], limit: 2 } }],
    ['posts', 'extends-limit0', { comments: { _extends: 'comments', limit: 0 } }],
    ['posts', 'extends-nested', { comments: { _extends: 'comments', where: [['score', '>=', 0]], include: { author: null } } }],
    ['posts', 'extends-deep', { comments: { _extends: 'comments', limit: 3, include: { author: { _extends: 'author', include: { posts: { _extends: 'posts', order: [['score', 'DESC']], limit: 1 } } } } } }],
    ['posts', 'alias', { best: { _extends: 'comments', order: [['score', 'DESC'], ['id', 'DESC']], limit: 1 } }],
    ['posts', 'override-relation-limit', { topComments: { _extends: 'topComments', limit: 1 } }],
    ['posts', 'override-relation-order', { firstComment: { _extends: 'firstComment', order: [['created', 'DESC'], ['id', 'ASC']] } }],
    ['posts', 'extends-where-merged', { topComments: { _extends: 'topComments', where: [['score', '<', 5]] } }],
    ['posts', 'adhoc-many', { cs: { subquery: q('comments', { where: [['postId', '=', '$1.id']], order: [['id', 'DESC']] }), cardinality: 'many' } }],
    ['posts', 'adhoc-one', { c: { subquery: q('comments', { where: [['postId', '=', '$1.id']], order: [['score', 'ASC'], ['id', 'ASC']] }), cardinality: 'one' } }],
    ['posts', 'adhoc-one-empty', { u: { subquery: q('users', { where: [['id', '=', '$1.editorId']] }), cardinality: 'one' } }],
    ['posts', 'adhoc-nested-$2', { cs: { subquery: q('comments', { where: [['postId', '=', '$1.id']], include: { others: { subquery: q('posts', { where: [['authorId', '=', '$2.authorId'], ['id', '!=', '$2.id']] }), cardinality: 'many' } } }), cardinality: 'many' } }],
    ['posts', 'adhoc-exists-inside', { cs: { subquery: q('comments', { where: [['postId', '=', '$1.id'], { exists: { _extends: 'replies' } }] }), cardinality: 'many' } }],
    ['posts', 'unknown-relation', { nope: null }],
    ['posts', 'relation-path', { 'comments.author': null }],
    ['users', 'posts', { posts: null }],
    ['users', 'latestPost', { latestPost: null }],
    ['users', 'posts-comments', { posts: { _extends: 'posts', include: { comments: null } } }],
    ['users', 'orgmates', { orgmates: { _extends: 'orgmates', select: ['id', 'name'] } }],
    ['comments', 'post', { post: null }],
    ['comments', 'post-author', { post: { _extends: 'post', include: { author: null } } }],
    ['comments', 'parent-replies', { parent: null, replies: null }],
    ['comments', 'author-where', { author: { _extends: 'author', where: [['active', '=', true]] } }],
    ['notes', 'owner', { owner: null }],
    ['shares', 'post', { post: { _extends: 'post', include: { author: null } } }],
  ];
  for (const [coll, n, include] of shapes) out.push({ name: `include/${coll}/${n}`, query: q(coll, { include }) });
  // With a root filter, order and limit.
  out.push({ name: 'include/posts/with-root-limit', query: q('posts', { where: [['published', '=', true]], order: [['score', 'DESC'], ['id', 'ASC']], limit: 5, include: { author: null, topComments: null } }) });
  out.push({ name: 'include/posts/with-select', query: q('posts', { select: ['id', 'title'], include: { author: null } }) });
  out.push({ name: 'include/comments/with-exists', query: q('comments', { where: [{ exists: { _extends: 'replies' } }], include: { replies: null } }) });
  return out;
}

// 5. Order, limit and after.
function ordering() {
  const out = [];
  for (const [coll, paths] of Object.entries(SORTABLE)) {
    for (const path of paths) {
      for (const dir of ['ASC', 'DESC']) {
        out.push({ name: `order/${coll}/${path}/${dir}`, query: q(coll, { order: [[path, dir]] }) });
      }
    }
    for (const path of RELATIONAL_ORDER[coll]) {
      for (const dir of ['ASC', 'DESC']) {
        out.push({ name: `order-relational/${coll}/${path}/${dir}`, query: q(coll, { order: [[path, dir], ['id', 'ASC']] }) });
      }
    }
  }
  const multi = [
    ['posts', [['published', 'DESC'], ['score', 'ASC']]],
    ['posts', [['score', 'DESC'], ['id', 'DESC']]],
    ['posts', [['created', 'ASC'], ['title', 'DESC'], ['id', 'ASC']]],
    ['posts', [['meta.prio', 'DESC'], ['rating', 'ASC']]],
    ['posts', [['author.name', 'ASC'], ['score', 'DESC']]],
    ['posts', [['score', 'ASC'], ['score', 'DESC']]],
    ['users', [['active', 'ASC'], ['age', 'DESC'], ['name', 'ASC']]],
    ['users', [['profile.level', 'DESC'], ['joined', 'ASC']]],
    ['comments', [['postId', 'ASC'], ['score', 'DESC'], ['created', 'ASC']]],
    ['comments', [['post.published', 'DESC'], ['score', 'ASC'], ['id', 'DESC']]],
  ];
  multi.forEach(([coll, order], i) => out.push({ name: `order-multi/${coll}/${i}`, query: q(coll, { order }) }));
  // Invalid orders.
  const bad = [
    ['posts', [['tags', 'ASC']]],
    ['posts', [['meta', 'ASC']]],
    ['posts', [['comments', 'ASC']]],
    ['posts', [['comments.score', 'ASC']]],
    ['posts', [['nope', 'ASC']]],
    ['posts', [['score', 'UP']]],
    ['posts', [['score']]],
    ['posts', 'score'],
    ['users', [['scores', 'DESC']]],
    ['users', [['settings', 'ASC']]],
  ];
  bad.forEach(([coll, order], i) => out.push({ name: `order-invalid/${coll}/${i}`, query: q(coll, { order }) }));
  // Limits.
  for (const limit of [0, 1, 2, 5, 47, 100]) {
    out.push({ name: `limit/${limit}/unordered`, query: q('posts', { limit }) });
    out.push({ name: `limit/${limit}/ordered`, query: q('posts', { order: [['score', 'DESC']], limit }) });
  }
  out.push({ name: 'limit/filtered', query: q('comments', { where: [['score', '>', 2]], limit: 7 }) });
  out.push({ name: 'limit/ties', query: q('posts', { order: [['created', 'ASC']], limit: 9 }) });
  for (const [i, limit] of [[0, -1], [1, 1.5], [2, '3'], [3, null]]) {
    out.push({ name: `limit-odd/${i}`, query: q('posts', { limit }) });
  }
  // Cursors.
  const afters = [
    ['posts', [['score', 'DESC'], ['id', 'ASC']], [[3, 'p3'], false]],
    ['posts', [['score', 'DESC'], ['id', 'ASC']], [[3, 'p3'], true]],
    ['posts', [['score', 'ASC']], [[3], false]],
    ['posts', [['score', 'ASC']], [[3], true]],
    ['posts', [['score', 'ASC']], [[null], false]],
    ['posts', [['score', 'ASC']], [[2.5], false]],
    ['posts', [['created', 'ASC'], ['id', 'ASC']], [['2024-01-01T00:00:00.000Z', 'p5'], false]],
    ['posts', [['created', 'DESC'], ['id', 'DESC']], [['2024-01-01T00:00:00.000Z', 'p5'], true]],
    ['posts', [['title', 'ASC'], ['id', 'ASC']], [['alice', 'zzz'], false]],
    ['posts', [['rating', 'DESC'], ['id', 'ASC']], [[null, 'p1'], false]],
    ['posts', [['published', 'ASC'], ['id', 'ASC']], [[false, 'p40'], true]],
    ['users', [['name', 'ASC']], [['Bob'], false]],
    ['users', [['age', 'DESC'], ['id', 'ASC']], [[42, 'u1'], false]],
    ['comments', [['score', 'DESC'], ['id', 'ASC']], [[5, 'c50'], false]],
    ['posts', [['id', 'ASC']], [['p3'], false]],
  ];
  afters.forEach(([coll, order, after], i) => {
    out.push({ name: `after/${coll}/${i}`, query: q(coll, { order, after }) });
    out.push({ name: `after/${coll}/${i}/limit3`, query: q(coll, { order, after, limit: 3 }) });
  });
  const badAfter = [
    ['posts', undefined, [[3], false]],
    ['posts', [['score', 'ASC']], [[3, 'p1'], false]],
    ['posts', [['score', 'ASC']], [[3]]],
    ['posts', [['score', 'ASC']], [3, false]],
    ['posts', [['score', 'ASC']], [[3], 'yes']],
    ['posts', [['author.name', 'ASC']], [['Alice'], false]],
  ];
  badAfter.forEach(([coll, order, after], i) =>
    out.push({ name: `after-invalid/${coll}/${i}`, query: q(coll, { ...(order ? { order } : {}), after }) })
  );
  return out;
}

// 6. select.
function selects() {
  const shapes = [
    ['posts', ['id', 'title']],
    ['posts', ['title']],
    ['posts', ['meta.prio', 'id']],
    ['posts', ['meta']],
    ['posts', ['tags', 'nums', 'created', 'id']],
    ['posts', ['extra', 'rating', 'updated', 'editorId']],
    ['posts', []],
    ['posts', ['author.name']],
    ['posts', ['nope']],
    ['posts', ['comments']],
    ['users', ['profile.address.city', 'id', 'settings']],
    ['users', ['id', 'handle', 'age', 'scores']],
  ];
  return shapes.map(([coll, select], i) => ({
    name: `select/${coll}/${i}`,
    query: q(coll, { select, where: [['id', '<', coll === 'posts' ? 'p2' : 'u2']] }),
  }));
}

// 7. Variables.
function variables() {
  const out = [];
  const cases = [
    ['query-var', q('posts', { where: [['authorId', '=', '$query.uid']], vars: { uid: 'u1' } })],
    ['query-var-number', q('posts', { where: [['score', '>', '$query.min']], vars: { min: 3 } })],
    ['query-var-list', q('posts', { where: [['id', 'in', '$query.ids']], vars: { ids: ['p3', 'p1', 'p2'] } })],
    ['query-var-nested', q('posts', { where: [['meta.prio', '=', '$query.m.prio']], vars: { m: { prio: 2 } } })],
    ['query-var-missing', q('posts', { where: [['rating', '=', '$query.nope']], vars: {} })],
    ['query-var-no-vars', q('posts', { where: [['editorId', '=', '$query.nope']] })],
    ['query-var-date', q('posts', { where: [['created', '>', '$query.d']], vars: { d: '2024-01-01T00:00:00.000Z' } })],
    ['query-var-set-has', q('posts', { where: [['tags', 'has', '$query.t']], vars: { t: 'red' } })],
    ['global-var', q('posts', { where: [['editorId', '=', '$global.x']] })],
    ['bare-var-root', q('posts', { where: [['authorId', '=', '$authorId']] })],
    ['role-var-outside-permission', q('posts', { where: [['authorId', '=', '$role.userId']] })],
    ['include-$1', q('users', { include: { mine: { subquery: q('posts', { where: [['authorId', '=', '$1.id']], order: [['id', 'ASC']] }), cardinality: 'many' } } })],
    ['include-$1-nested-path', q('users', { include: { sameCity: { subquery: q('users', { where: [['profile.address.city', '=', '$1.profile.address.city'], ['id', '!=', '$1.id']] }), cardinality: 'many' } } })],
    ['exists-$1-set', q('posts', { where: [{ exists: { collectionName: 'users', where: [['id', '=', '$1.authorId'], ['tags', 'has', 'red']] } }] })],
    ['query-var-in-include', q('posts', { vars: { min: 4 }, include: { good: { _extends: 'comments', where: [['score', '>=', '$query.min']] } } })],
  ];
  for (const [n, query] of cases) out.push({ name: `vars/${n}`, query });
  // Session variables, with and without a session.
  const sess = [
    ['session-sub', q('posts', { where: [['authorId', '=', '$session.sub']] })],
    ['token-sub', q('posts', { where: [['authorId', '=', '$token.sub']] })],
    ['session-missing', q('posts', { where: [['editorId', '=', '$session.nope']] })],
    ['session-org', q('users', { where: [['orgId', '=', '$session.org']] })],
    ['session-type', q('posts', { where: [['title', '!=', '$token.x-triplit-token-type']] })],
  ];
  for (const [n, query] of sess) {
    out.push({ name: `vars/${n}/service`, query });
    for (const s of ['u1', 'u2org', 'serviceClaims', 'anon']) {
      out.push({ name: `vars/${n}/${s}`, query, session: SESSIONS[s] });
    }
  }
  return out;
}

// 8. Permissions: every session against queries on every collection.
function permissions() {
  const out = [];
  const queries = [
    ['users/all', q('users')],
    ['users/where', q('users', { where: [['profile.level', '>=', 1]] })],
    ['users/include-posts', q('users', { include: { posts: null } })],
    ['users/include-comments', q('users', { include: { comments: { _extends: 'comments', order: [['id', 'ASC']], limit: 3 } } })],
    ['users/exists-comments', q('users', { where: [{ exists: { _extends: 'comments' } }] })],
    ['users/order-limit', q('users', { order: [['name', 'DESC']], limit: 4 })],
    ['posts/all', q('posts')],
    ['posts/author-path', q('posts', { where: [['author.active', '=', true]] })],
    ['posts/include-author', q('posts', { include: { author: null } })],
    ['posts/include-comments', q('posts', { where: [['id', '<', 'p2']], include: { comments: null } })],
    ['posts/exists-comments', q('posts', { where: [{ exists: { _extends: 'comments', where: [['score', '>', 4]] } }] })],
    ['posts/order-author', q('posts', { order: [['author.name', 'ASC'], ['id', 'ASC']], limit: 10 })],
    ['comments/all', q('comments')],
    ['comments/include-post-author', q('comments', { where: [['score', '>', 5]], include: { post: { _extends: 'post', include: { author: null } } } })],
    ['comments/order-limit', q('comments', { order: [['score', 'DESC'], ['id', 'ASC']], limit: 10 })],
    ['comments/replies', q('comments', { where: [{ exists: { _extends: 'replies' } }] })],
    ['secrets/all', q('secrets')],
    ['secrets/include-owner', q('secrets', { include: { owner: null } })],
    ['posts/exists-secrets', q('posts', { where: [{ exists: { collectionName: 'secrets', where: [['ownerId', '=', '$1.authorId']] } }] })],
    ['notes/all', q('notes')],
    ['notes/include-owner', q('notes', { include: { owner: null } })],
    ['shares/no-code', q('shares')],
    ['shares/code', q('shares', { vars: { code: 'open' } })],
    ['shares/code-case', q('shares', { vars: { code: 'OPEN' } })],
    ['shares/code-empty', q('shares', { vars: { code: '' } })],
    ['shares/include-post', q('shares', { vars: { code: 'secret' }, include: { post: { _extends: 'post', include: { comments: null } } } })],
  ];
  const sessions = [['service', undefined], ...Object.entries(SESSIONS)];
  for (const [sn, session] of sessions) {
    for (const [qn, query] of queries) {
      out.push({ name: `perm/${sn}/${qn}`, query, ...(session ? { session } : {}) });
    }
  }
  return out;
}

// 9. Malformed queries.
function malformed() {
  const shapes = [
    ['no-collection', {}],
    ['unknown-collection', { collectionName: 'nope' }],
    ['where-not-array', { collectionName: 'posts', where: { a: 1 } }],
    ['filter-bad-shape', { collectionName: 'posts', where: [['title', '=']] }],
    ['filter-number', { collectionName: 'posts', where: [3] }],
    ['group-bad-mod', { collectionName: 'posts', where: [{ mod: 'xor', filters: [] }] }],
    ['metadata', { collectionName: '_metadata' }],
  ];
  return shapes.map(([n, query]) => ({ name: `malformed/${n}`, query }));
}

// 10. Seeded random queries.
function randomQueries(dataset, count, seed) {
  const r = rng(seed);
  const out = [];
  const colls = ['users', 'posts', 'comments'];
  const entityValue = (coll, path) => {
    const e = r.pick(dataset[coll]);
    let v = e;
    for (const seg of path.split('.')) v = v == null ? undefined : v[seg];
    if (v instanceof Set) v = [...v][0];
    if (Array.isArray(v) || (v && typeof v === 'object')) v = undefined;
    return v === undefined ? null : v;
  };
  const randomValue = (coll, path, kind, op) => {
    if (op === 'isDefined') return r.chance(0.5);
    if (kind.startsWith('set')) {
      const sv = SET_VALUES[kind];
      if (op === 'in' || op === 'nin') return r.pick(sv.in);
      if (op === 'like' || op === 'nlike') return r.pick(sv.like);
      const e = r.pick(dataset[coll]);
      let v = e;
      for (const seg of path.split('.')) v = v == null ? undefined : v[seg];
      const items = v instanceof Set ? [...v] : [];
      return items.length && r.chance(0.6) ? r.pick(items) : r.pick(sv.has);
    }
    if (op === 'in' || op === 'nin') {
      const n = r.int(0, 3);
      return Array.from({ length: n }, () => entityValue(coll, path));
    }
    if (op === 'like' || op === 'nlike') {
      const v = entityValue(coll, path);
      if (typeof v === 'string' && v.length > 1 && r.chance(0.6)) {
        const chars = [...v];
        const i = r.int(0, chars.length - 1);
        return r.chance(0.5) ? chars.slice(0, i).join('') + '%' : '%' + chars.slice(i).join('');
      }
      return r.pick(LIKE_PATTERNS.full);
    }
    if (r.chance(0.7)) return entityValue(coll, path);
    const pool = VALUES[kind] ?? VALUES.string;
    return r.pick(pool.full);
  };
  const poolValue = (kind, op) => {
    if (op === 'isDefined') return r.chance(0.5);
    if (kind.startsWith('set')) return r.pick(SET_VALUES[kind].has);
    if (op === 'in' || op === 'nin') return r.pick(IN_VALUES[kind] ?? IN_VALUES.string);
    if (op === 'like' || op === 'nlike') return r.pick(LIKE_PATTERNS.full);
    return r.pick((VALUES[kind] ?? VALUES.string).full);
  };
  const statement = (coll) => {
    if (r.chance(0.12) && RELATIONAL_WHERE[coll].length) {
      const [path, kind] = r.pick(RELATIONAL_WHERE[coll]);
      const op = r.pick(OPS[kind]);
      return [path, op, poolValue(kind, op)];
    }
    const entries = Object.entries(PATHS[coll]).filter(([, k]) => k !== 'record' || r.chance(0.2));
    const [path, kind] = r.pick(entries);
    const op = r.chance(0.03) ? r.pick(INVALID_OPS[kind]) : r.pick(OPS[kind].filter((o) => kind !== 'json' || (o !== 'has' && o !== '!has')));
    return [path, op, randomValue(coll, path, kind, op)];
  };
  const filter = (coll, depth) => {
    const x = r.next();
    if (x < 0.04) return r.chance(0.5);
    if (x < 0.2 && depth < 3) {
      const n = r.int(1, 3);
      return { mod: r.chance(0.5) ? 'and' : 'or', filters: Array.from({ length: n }, () => filter(coll, depth + 1)) };
    }
    if (x < 0.27 && depth < 2) {
      const rels = { posts: ['comments', 'author', 'topComments'], users: ['posts', 'comments'], comments: ['post', 'author', 'replies'] }[coll];
      const relName = r.pick(rels);
      const target = { comments: 'comments', author: 'users', topComments: 'comments', posts: 'posts', post: 'posts', replies: 'comments' }[relName];
      const where = r.chance(0.7) ? [filter(target, depth + 1)] : undefined;
      return { exists: { _extends: relName, ...(where ? { where } : {}) } };
    }
    return statement(coll);
  };
  for (let i = 0; i < count; i++) {
    const coll = r.pick(colls);
    const query = { collectionName: coll };
    const nWhere = r.int(0, 3);
    if (nWhere) query.where = Array.from({ length: nWhere }, () => filter(coll, 0));
    if (r.chance(0.55)) {
      const nOrder = r.int(1, 3);
      query.order = Array.from({ length: nOrder }, () => [
        r.chance(0.1) && RELATIONAL_ORDER[coll].length ? r.pick(RELATIONAL_ORDER[coll]) : r.pick(SORTABLE[coll]),
        r.chance(0.5) ? 'ASC' : 'DESC',
      ]);
      if (r.chance(0.25) && !query.order.some(([p]) => p.includes('.') && !PATHS[coll][p])) {
        // A null in a cursor crashes upstream's cursor encoding, so
        // random cursors come from an entity with every key present
        // (after-invalid and after/posts/9 keep the null case).
        const valueAt = (e, p) => {
          let v = e;
          for (const seg of p.split('.')) v = v == null ? undefined : v[seg];
          return v === undefined ? null : v;
        };
        const candidates = dataset[coll].filter((e) => query.order.every(([p]) => valueAt(e, p) !== null));
        if (candidates.length) {
          const e = r.pick(candidates);
          query.after = [query.order.map(([p]) => valueAt(e, p)), r.chance(0.5)];
        }
      }
    }
    if (r.chance(0.4)) query.limit = r.pick([0, 1, 2, 3, 5, 8, 13, 50]);
    if (r.chance(0.08)) {
      const paths = Object.keys(PATHS[coll]);
      query.select = ['id', ...r.sample(paths.filter((p) => p !== 'id'), r.int(1, 3))];
    }
    if (r.chance(0.2)) {
      const rels = { posts: ['author', 'comments', 'topComments', 'firstComment', 'editor'], users: ['posts', 'latestPost', 'comments'], comments: ['post', 'author', 'parent', 'replies'] }[coll];
      const include = {};
      const targets = { author: 'users', comments: 'comments', topComments: 'comments', firstComment: 'comments', editor: 'users', posts: 'posts', latestPost: 'posts', post: 'posts', parent: 'comments', replies: 'comments' };
      for (const rel of r.sample(rels, r.int(1, 2))) {
        if (r.chance(0.4)) {
          include[rel] = null;
          continue;
        }
        const spec = { _extends: rel };
        if (r.chance(0.5)) spec.where = [statement(targets[rel])];
        if (r.chance(0.6)) spec.order = [[r.pick(SORTABLE[targets[rel]]), r.chance(0.5) ? 'ASC' : 'DESC'], ['id', 'ASC']];
        if (r.chance(0.6)) spec.limit = r.int(0, 3);
        if (r.chance(0.2)) {
          const inner = { users: 'posts', posts: 'author', comments: 'author' }[targets[rel]];
          spec.include = { [inner]: null };
        }
        include[rel] = spec;
      }
      query.include = include;
    }
    const session = r.chance(0.3) ? SESSIONS[r.pick(Object.keys(SESSIONS))] : undefined;
    out.push({ name: `random/${String(i).padStart(4, '0')}`, query, ...(session ? { session } : {}) });
  }
  return out;
}

export function buildCorpus(dataset) {
  return {
    ops: operatorMatrix(),
    groups: groups(),
    relations: relations(),
    include: includes(),
    order: ordering(),
    select: selects(),
    vars: variables(),
    perm: permissions(),
    malformed: malformed(),
    random: randomQueries(dataset, 700, 424242),
  };
}
