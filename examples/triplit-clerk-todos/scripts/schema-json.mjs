#!/usr/bin/env node
// Writes triplit/schema.ts as the schema JSON that `ferry dev --schema`
// (like `triplit schema push`) loads: {"roles": …, "collections": …}.
//
//   node scripts/schema-json.mjs            # print it
//   node scripts/schema-json.mjs out.json   # write it to a file
//
// The TypeScript is loaded with Vite's module runner, so no separate
// TypeScript toolchain is needed. Triplit 1.x schemas are plain data
// (types, defaults and filters are JSON objects), so the JSON is exactly
// what the client uses.
import { writeFileSync, mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const APP_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** The schema in triplit/schema.ts as {roles, collections}. */
export async function loadSchema() {
  const { runnerImport } = await import('vite');
  const { module } = await runnerImport(resolve(APP_DIR, 'triplit/schema.ts'), {
    root: APP_DIR,
    configFile: false,
    logLevel: 'error',
  });
  return { roles: module.roles, collections: module.schema };
}

/** The schema as JSON text, checked to survive the JSON round trip unchanged. */
export async function schemaJson() {
  const schema = await loadSchema();
  const text = JSON.stringify(schema, null, 2) + '\n';
  assertPlainData(schema, JSON.parse(text));
  return text;
}

/** Writes the JSON to `path` (creating its directory) and returns the path. */
export async function writeSchemaJson(path) {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, await schemaJson());
  return path;
}

// A schema value JSON cannot carry (a function, a Date, undefined inside an
// array, …) would silently differ on the server: refuse it.
function assertPlainData(original, roundTripped, at = 'schema') {
  const kind = (v) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);
  if (kind(original) === 'object' && original.constructor !== Object) {
    throw new Error(`${at} is a ${original.constructor?.name}, not plain data`);
  }
  if (kind(original) === 'object' || kind(original) === 'array') {
    for (const key of Object.keys(original)) {
      if (original[key] === undefined && kind(original) === 'object') continue;
      assertPlainData(original[key], roundTripped[key], `${at}.${key}`);
    }
    return;
  }
  if (original !== roundTripped) {
    throw new Error(`${at} (${kind(original)}) does not survive JSON`);
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const out = process.argv[2];
  if (out) {
    console.log(await writeSchemaJson(resolve(out)));
  } else {
    process.stdout.write(await schemaJson());
  }
}
