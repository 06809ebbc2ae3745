// Runs the reference server, @triplit/server 1.1.8, in its own process with
// the same CLI and environment contract the harness uses for the ferry binary:
//
//   node reference-runner.mjs serve --host 127.0.0.1 --port <port>
//   env: JWT_SECRET (required), LOCAL_DATABASE_URL (sqlite file; memory when
//        unset), EXTERNAL_JWT_SECRET, MAX_BODY_SIZE (MB)
//
// It is test tooling for proving expectations, not product code.
import http from 'node:http';

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}
const host = arg('host', '127.0.0.1');
const port = Number(arg('port', '0'));
if (!process.env.JWT_SECRET) {
  console.error('JWT_SECRET is required');
  process.exit(2);
}

// createServer's startServer(port) listens on every interface (triplit.md
// Appendix C.4). Pin the listening address to the requested host.
const listen = http.Server.prototype.listen;
http.Server.prototype.listen = function (...args) {
  if (typeof args[0] === 'number') {
    if (args[1] === undefined) args[1] = host;
    else if (typeof args[1] === 'function') args.splice(1, 0, host);
  }
  return listen.apply(this, args);
};

const { createServer, createTriplitStorageProvider } = await import('@triplit/server');
const storage = await createTriplitStorageProvider(
  process.env.LOCAL_DATABASE_URL ? 'sqlite' : 'memory'
);
const quiet = { log() {}, startSpan() {}, endSpan() {} };
const startServer = await createServer({
  storage,
  jwtSecret: process.env.JWT_SECRET,
  externalJwtSecret: process.env.EXTERNAL_JWT_SECRET || undefined,
  maxPayloadMb: process.env.MAX_BODY_SIZE || undefined,
  projectId: process.env.PROJECT_ID || 'local-project-id',
  logHandler: quiet,
});
const server = startServer(port, () => console.log(`listening on ${host}:${port}`));
process.on('SIGTERM', () => {
  server.close();
  process.exit(0);
});
