// One `ferry serve` on a fresh temp database for the single-scenario
// scripts in bench/: HS256 tokens signed with its JWT_SECRET, JSON POSTs,
// and a stop that removes the database.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const secret = 'ferry-bench-secret';
const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');

/** An HS256 JWT with `claims`, signed with the server's secret. */
export function sign(claims) {
  const h = b64({ alg: 'HS256', typ: 'JWT' });
  const p = b64(claims);
  const s = crypto.createHmac('sha256', secret).update(`${h}.${p}`).digest('base64url');
  return `${h}.${p}.${s}`;
}

export const serviceToken = sign({ 'x-triplit-token-type': 'secret', 'x-triplit-project-id': 'local-project-id' });

/** Starts `bin serve` on 127.0.0.1; resolves once /healthcheck answers. */
export async function start(bin) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-bench-'));
  const port = 20000 + Math.floor(Math.random() * 10000);
  const child = spawn(bin, ['serve', '--host', '127.0.0.1', '--port', String(port)], {
    env: { ...process.env, JWT_SECRET: secret, LOCAL_DATABASE_URL: path.join(dir, 'f.db') },
    stdio: 'ignore',
  });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 200; i++) {
    try {
      if ((await fetch(url + '/healthcheck')).ok) break;
    } catch {}
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    /** POSTs `body` as JSON with `token`; the parsed answer (throws unless 200). */
    async post(route, body, token = serviceToken) {
      const r = await fetch(url + route, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      if (r.status !== 200) throw new Error(`${route} ${r.status} ${await r.text()}`);
      return r.json();
    },
    stop() {
      child.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
      child.kill('SIGTERM');
    },
  };
}

/** The median of `values`. */
export const median = (values) => [...values].sort((x, y) => x - y)[Math.floor(values.length / 2)];
