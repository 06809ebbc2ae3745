// Runs cases through the real @triplit/db: an in-memory DB holding the
// schema and the seeded data, queried the way the server's /fetch does
// (`db.withSessionVars(claims).fetch(query, {skipRules})`).

import {
  DB,
  prepareQuery,
  EntityStoreQueryEngine,
  serializeFetchResult,
} from '@triplit/db';

export const SERVICE_CLAIMS = { 'x-triplit-token-type': 'secret' };

export async function openDb(schema, dataset) {
  const db = new DB({ schema });
  for (const [collection, entities] of Object.entries(dataset)) {
    for (const e of entities) await db.insert(collection, e, { skipRules: true });
  }
  return db;
}

// What upstream stored, per collection, in id order as the store scans.
export async function storedEntities(db, collections) {
  const out = {};
  for (const c of collections) {
    const views = await db.rawFetch(prepareQuery({ collectionName: c }, db.schema.collections, db.systemVars, undefined, {}));
    out[c] = views.map((v) => v.data);
  }
  return out;
}

// The include spec nested under an include, if any.
function nestedInclude(spec) {
  if (spec && typeof spec === 'object') {
    if (spec.subquery) return spec.subquery.include ?? null;
    return spec.include ?? null;
  }
  return null;
}

function hasKeys(o) {
  return !!o && typeof o === 'object' && Object.keys(o).length > 0;
}

function includeTree(view, include) {
  const out = {};
  for (const alias of Object.keys(include).sort()) {
    const sub = view.subqueries[alias];
    const nested = nestedInclude(include[alias]);
    const entry = (e) => (hasKeys(nested) ? { id: e.data.id, includes: includeTree(e, nested) } : e.data.id);
    if (sub === undefined) throw new Error(`include ${alias} missing from the result`);
    out[alias] = sub === null ? null : Array.isArray(sub) ? sub.map(entry) : entry(sub);
  }
  return out;
}

function errorOf(e) {
  if (e && e.__isTriplitError) return { error: e.name };
  // A JS crash: the HTTP server answers it as a 500 TriplitError.
  return { error: 'TriplitError', crash: `${e?.name}: ${e?.message}` };
}

// The same tree built from `db.fetch`'s output (for the cross-check).
function fetchedTree(rows, include) {
  const ids = rows.map((r) => r.id);
  if (!hasKeys(include)) return { ids };
  const node = (row, inc) => {
    const out = {};
    for (const alias of Object.keys(inc).sort()) {
      const sub = row[alias];
      const nested = nestedInclude(inc[alias]);
      const entry = (e) => (hasKeys(nested) ? { id: e.id, includes: node(e, nested) } : e.id);
      out[alias] = sub == null ? null : Array.isArray(sub) ? sub.map(entry) : entry(sub);
    }
    return out;
  };
  const includes = {};
  for (const row of [...rows].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))) {
    includes[row.id] = node(row, include);
  }
  return { ids, includes };
}

function sortById(views) {
  return [...views].sort((a, b) => (a.data.id < b.data.id ? -1 : a.data.id > b.data.id ? 1 : 0));
}

function selectsEverywhere(query) {
  if (query.select) return true;
  const inc = query.include;
  if (!hasKeys(inc)) return false;
  return Object.values(inc).some((spec) => {
    if (!spec || typeof spec !== 'object') return false;
    if (spec.subquery) return selectsEverywhere(spec.subquery);
    return !!spec.select || selectsEverywhere({ include: spec.include });
  });
}

// Runs one case; returns its `expected`.
export async function runCase(db, c) {
  const service = !c.session || !!c.session.service;
  const claims = c.session?.claims ?? SERVICE_CLAIMS;
  const s = db.withSessionVars(claims);
  let views;
  try {
    const prepared = prepareQuery(structuredClone(c.query), s.schema?.collections, s.systemVars, s.session, {
      applyPermission: service ? undefined : 'read',
    });
    views = await new EntityStoreQueryEngine(s.kv, s.entityStore).fetch(prepared);
  } catch (e) {
    const expected = errorOf(e);
    // db.fetch must fail the same way.
    let fetchErr = null;
    try {
      await s.fetch(structuredClone(c.query), { skipRules: service });
    } catch (e2) {
      fetchErr = errorOf(e2);
    }
    if (!fetchErr || fetchErr.error !== expected.error) {
      throw new Error(`${c.name}: raw path failed (${JSON.stringify(expected)}) but fetch gave ${JSON.stringify(fetchErr)}`);
    }
    return expected;
  }
  const expected = { ids: views.map((v) => v.data.id) };
  if (hasKeys(c.query.include)) {
    const includes = {};
    for (const v of sortById(views)) includes[v.data.id] = includeTree(v, c.query.include);
    expected.includes = includes;
  }
  // Cross-check against db.fetch, and record the HTTP body when a select
  // shapes it.
  let fetched;
  try {
    fetched = await s.fetch(structuredClone(c.query), { skipRules: service });
  } catch (e) {
    // Upstream can crash after evaluation (e.g. projecting a path through
    // a JSON null): the query fails as a whole.
    return errorOf(e);
  }
  if (selectsEverywhere(c.query)) {
    const body = serializeFetchResult(structuredClone(c.query), s.schema?.collections, fetched);
    expected.rows = JSON.parse(JSON.stringify(body));
  } else {
    const again = fetchedTree(fetched, c.query.include);
    if (JSON.stringify(again) !== JSON.stringify(expected)) {
      throw new Error(`${c.name}: raw path and db.fetch disagree:\n${JSON.stringify(expected)}\n${JSON.stringify(again)}`);
    }
  }
  return expected;
}
