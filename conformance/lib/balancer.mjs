// A small TCP load balancer for the multi-node tests: clients use ONE URL,
// as behind an ordinary load balancer, and each new connection goes to the
// next backend in round-robin order. A backend whose connect fails (a killed
// node: connection refused) is skipped and the next one is tried, so a
// client that reconnects lands on a live node. Bytes are piped unchanged in
// both directions (HTTP and WebSocket alike); when either side closes or
// fails, the other is closed too, so a killed node's clients see their
// socket drop just as they would behind a real balancer.
//
//   const lb = await startBalancer([nodeA, nodeB, nodeC]);  // { port } each
//   lb.url                      http://127.0.0.1:<port>
//   lb.connections              [{ backend, open }] in accept order
//   lb.openOn(port)             open connections currently proxied to a backend
//   lb.refuse(true|false)       drop every new connection at once (no backend
//                               reachable, e.g. while a dead node is failed over)
//   await lb.close()
import net from 'node:net';

const CONNECT_TIMEOUT_MS = 2000;

function connectTo(port) {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`connect to ${port} timed out`));
    }, CONNECT_TIMEOUT_MS);
    sock.once('connect', () => {
      clearTimeout(timer);
      resolve(sock);
    });
    sock.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

/** Start a balancer on a free port of 127.0.0.1 over `backends` (objects with a `port`). */
export async function startBalancer(backends) {
  const ports = backends.map((b) => b.port);
  let next = 0;
  let refusing = false;
  const connections = [];
  const sockets = new Set();

  const server = net.createServer(async (client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => {});
    if (refusing) {
      client.destroy();
      return;
    }
    client.pause();
    let upstream;
    let chosen;
    for (let tried = 0; tried < ports.length && !upstream; tried++) {
      chosen = ports[next];
      next = (next + 1) % ports.length;
      upstream = await connectTo(chosen).catch(() => undefined);
    }
    if (!upstream) {
      client.destroy();
      return;
    }
    if (client.destroyed) {
      upstream.destroy();
      return;
    }
    sockets.add(upstream);
    const record = { backend: chosen, open: true };
    connections.push(record);
    const end = () => {
      record.open = false;
      client.destroy();
      upstream.destroy();
    };
    upstream.on('close', () => {
      sockets.delete(upstream);
      end();
    });
    upstream.on('error', end);
    client.on('close', end);
    client.pipe(upstream);
    upstream.pipe(client);
    client.resume();
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address();
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    connections,
    refuse: (on) => {
      refusing = on;
    },
    openOn: (backendPort) => connections.filter((c) => c.open && c.backend === backendPort).length,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
