import { TriplitClient } from '@triplit/client';
import { schema, roles } from '../triplit/schema';
import { config } from './config';

export type Client = TriplitClient<typeof schema>;

const clients = new Map<string, Client>();

/**
 * The Triplit client for one signed-in user. Each user gets their own
 * IndexedDB database, so two users in two tabs of one browser (or one
 * after the other on a shared computer) never share a cache.
 *
 * The client starts without a token: the session is started (and kept
 * fresh, and ended) by useTriplitSession with the auth provider's tokens.
 */
export function clientFor(userId: string): Client {
  let client = clients.get(userId);
  if (!client) {
    client = new TriplitClient({
      schema,
      roles,
      serverUrl: config.serverUrl,
      storage: { type: 'indexeddb', name: `triplit-todos:${userId}` },
      // Connect when the session starts (useTriplitSession), not before.
      autoConnect: false,
      logLevel: 'warn',
    });
    clients.set(userId, client);
  }
  return client;
}
