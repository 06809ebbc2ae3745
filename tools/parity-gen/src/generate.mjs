// Builds Ferry's query-parity fixtures: the schema, the seeded dataset as
// upstream stores it, and every corpus case with the result the real
// @triplit/db 1.1.10 gives. Run with `npm --prefix tools/parity-gen run
// generate`; the output is deterministic.

process.env.TZ = 'UTC';

import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { schema } from './schema.mjs';
import { buildDataset } from './dataset.mjs';
import { buildCorpus } from './corpus.mjs';
import { openDb, runCase, storedEntities } from './upstream.mjs';
import { coverage } from './coverage.mjs';
import { PATHS } from './paths.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const OUT = join(here, '../../../crates/triplit/tests/fixtures/parity');
const CHUNK = 400;

// JSON with one case per line, so diffs of regenerated fixtures stay readable.
function writeCases(file, cases) {
  const lines = cases.map((c) => JSON.stringify(c));
  writeFileSync(join(OUT, file), `{"cases":[\n${lines.join(',\n')}\n]}\n`);
}

function writeDataset(file, data) {
  const parts = Object.keys(data)
    .sort()
    .map((c) => `${JSON.stringify(c)}:[\n${data[c].map((e) => JSON.stringify(e)).join(',\n')}\n]`);
  writeFileSync(join(OUT, file), `{"collections":{\n${parts.join(',\n')}\n}}\n`);
}

const input = buildDataset();
const db = await openDb(schema, input);
const stored = await storedEntities(db, Object.keys(input));
const corpus = buildCorpus(input);

mkdirSync(OUT, { recursive: true });
for (const f of readdirSync(OUT)) if (/^cases-.*\.json$/.test(f)) rmSync(join(OUT, f));
writeFileSync(join(OUT, 'schema.json'), `${JSON.stringify(schema, null, 2)}\n`);
writeDataset('dataset.json', stored);

const names = new Set();
const summary = {};
let total = 0;
let errors = 0;
let crashes = 0;
let idx = 0;
const everything = [];
for (const [category, cases] of Object.entries(corpus)) {
  const done = [];
  for (const c of cases) {
    if (names.has(c.name)) throw new Error(`duplicate case name ${c.name}`);
    names.add(c.name);
    const expected = await runCase(db, c);
    if (expected.error) errors++;
    if (expected.crash) crashes++;
    done.push({ name: c.name, query: c.query, ...(c.session ? { session: c.session } : {}), expected });
    everything.push(done[done.length - 1]);
  }
  idx++;
  for (let i = 0; i * CHUNK < done.length; i++) {
    const part = done.length > CHUNK ? `-${i + 1}` : '';
    writeCases(`cases-${String(idx).padStart(2, '0')}-${category}${part}.json`, done.slice(i * CHUNK, (i + 1) * CHUNK));
  }
  summary[category] = {
    cases: done.length,
    errors: done.filter((c) => c.expected.error).length,
    withSession: done.filter((c) => c.session).length,
  };
  total += done.length;
}
const report = {
  generator: 'tools/parity-gen (npm --prefix tools/parity-gen run generate)',
  upstream: '@triplit/db 1.1.10',
  total,
  errors,
  crashes,
  entities: Object.fromEntries(Object.entries(stored).map(([c, es]) => [c, es.length])),
  categories: summary,
  ...coverage(everything, PATHS),
};
writeFileSync(join(OUT, 'summary.json'), `${JSON.stringify(report, null, 2)}\n`);
console.log(JSON.stringify(report, null, 2));
