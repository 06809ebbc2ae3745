// Counts what the corpus exercises, for summary.json and docs/parity.md.

function walkFilters(filters, visit, depth = 0) {
  if (!Array.isArray(filters)) return;
  for (const f of filters) {
    if (Array.isArray(f)) visit({ kind: 'statement', f, depth });
    else if (typeof f === 'boolean') visit({ kind: 'boolean', f, depth });
    else if (f && f.mod) {
      visit({ kind: `group-${f.mod}`, f, depth });
      walkFilters(f.filters, visit, depth + 1);
    } else if (f && f.exists) {
      visit({ kind: f.exists._extends ? 'exists-relation' : 'exists-subquery', f, depth });
      walkFilters(f.exists.where, visit, depth + 1);
    }
  }
}

function walkIncludes(include, visit, depth = 0) {
  for (const spec of Object.values(include ?? {})) {
    if (spec === null || spec === true) visit('include-shorthand', depth);
    else if (spec.subquery) {
      visit(`include-subquery-${spec.cardinality}`, depth);
      walkIncludes(spec.subquery.include, visit, depth + 1);
    } else {
      visit('include-extends', depth);
      for (const k of ['where', 'order', 'limit', 'select', 'include']) if (k in spec) visit(`include-extends-${k}`, depth);
      walkIncludes(spec.include, visit, depth + 1);
    }
  }
}

export function coverage(cases, schemaPaths) {
  const features = {};
  const operators = {};
  const kinds = {};
  const bump = (o, k) => (o[k] = (o[k] ?? 0) + 1);
  for (const c of cases) {
    const qy = c.query;
    const seen = new Set();
    const mark = (k) => seen.add(k);
    if (c.session) mark(c.session.service ? 'session-service-claims' : 'session');
    else mark('service');
    if (qy.order) mark('order');
    if (Array.isArray(qy.order) && qy.order.length > 1) mark('order-multi');
    const own = schemaPaths[qy.collectionName] ?? {};
    if (Array.isArray(qy.order) && qy.order.some((o) => Array.isArray(o) && typeof o[0] === 'string' && o[0].includes('.') && !own[o[0]])) mark('order-relational');
    if ('limit' in qy) mark(qy.limit === 0 ? 'limit-0' : 'limit');
    if (qy.after) mark(qy.after[1] === true ? 'after-inclusive' : 'after-exclusive');
    if (qy.select) mark('select');
    if (qy.vars) mark('vars');
    if (JSON.stringify(qy).includes('"$')) mark('variables');
    walkFilters(qy.where, ({ kind, f }) => {
      mark(kind);
      if (kind === 'statement') {
        const [path, op] = f;
        const known = own[path];
        if (!known && typeof path === 'string' && path.includes('.')) mark('relation-path');
        operators[op] = (operators[op] ?? 0) + 1;
        if (known) bump(kinds, known);
      }
    });
    walkIncludes(qy.include, (k, depth) => {
      mark(k);
      if (depth > 0) mark('include-nested');
    });
    if (c.expected.error) mark(c.expected.crash ? 'upstream-crash' : 'error');
    for (const k of seen) bump(features, k);
  }
  const sorted = (o) => Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return { features: sorted(features), operators: sorted(operators), statementsByKind: sorted(kinds) };
}
