// Node 20 has no global WebSocket (only behind --experimental-websocket), and
// @triplit/client looks for `globalThis.WebSocket`, both when its transport
// module loads (it wraps the constructor in a Proxy that fires
// `connectionchange` events) and on every connect. Give it undici's, the
// implementation upstream's own tests and the captures use.
//
// This module must be evaluated before @triplit/client: lib/sync.mjs imports
// it first, so a test file only has to import lib/sync.mjs before anything
// that loads @triplit/client (lib/http.mjs does).
import { WebSocket as UndiciWebSocket } from 'undici';

if (typeof globalThis.WebSocket === 'undefined') {
  globalThis.WebSocket = UndiciWebSocket;
}

export { UndiciWebSocket };
