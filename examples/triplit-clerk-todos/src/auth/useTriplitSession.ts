import { useEffect, useRef, useState } from 'react';
import type { Client } from '../triplit';

/**
 * What an auth provider gives the app: a function returning the current
 * session token, or null when nobody is signed in. Clerk's `useAuth()`
 * returns one; so does the local stand-in (src/auth/LocalAuth.tsx).
 */
export type GetToken = () => Promise<string | null>;

export type SessionState = {
  /** signed-out: no user; starting: fetching the first token; active: the session is started. */
  status: 'signed-out' | 'starting' | 'active';
  /** Something the user (or developer) should know: a refused token, an unreachable issuer. */
  error?: string;
  /** When the current token expires (ms since the epoch). */
  expiresAt?: number;
  /** Tokens handed to the client in this session (the first one, then every refresh). */
  tokens: number;
};

/** The `exp` of a JWT in ms, if it has one. */
export function tokenExpiry(token: string | undefined | null): number | undefined {
  try {
    const payload = JSON.parse(atob(token!.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')));
    return typeof payload.exp === 'number' ? payload.exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

// Session changes of one client run one after another, never interleaved.
const queues = new WeakMap<Client, Promise<unknown>>();
function serially<T>(client: Client, task: () => Promise<T>): Promise<T> {
  const run = (queues.get(client) ?? Promise.resolve()).then(task, task);
  queues.set(client, run.catch(() => {}));
  return run;
}

/** End a user's session and forget their data on this device. */
function endAndForget(client: Client) {
  return serially(client, async () => {
    await client.endSession();
    await client.clear();
  });
}

/**
 * Keeps `client`'s Triplit session in step with the auth provider — the
 * pattern of Clerk's Triplit guide:
 *
 *   const token = await getToken();
 *   if (!token) await client.endSession();
 *   else if (token !== client.token)
 *     await client.startSession(token, true, { refreshHandler: getToken });
 *
 * The client calls `refreshHandler` shortly before each token expires and
 * hands the new token to the open connection, so one session outlives any
 * number of (60 s) tokens. Beyond the guide, for a session that must
 * survive real life:
 *
 * - sign-out (or a different user signing in) ends the previous user's
 *   session and clears their local data (`client` changes to null or to
 *   another user's client);
 * - the browser going offline disconnects at once, and coming back online
 *   reconnects at once (with a fresh token, since the old one may have
 *   expired meanwhile) — writes made offline wait in the client's outbox
 *   and are sent on reconnect;
 * - a session the server closed because its token expired (a laptop that
 *   slept past the token's lifetime) is started again with a fresh token;
 * - a token the server refuses outright is reported in `error`: the
 *   server does not trust the issuer (check CLERK_PUBLISHABLE_KEY or
 *   TRIPLIT_EXTERNAL_JWT_SECRET).
 */
export function useTriplitSession(client: Client | null, getToken: GetToken): SessionState {
  // The state belongs to one client; another client (another user) starts afresh.
  const [state, setState] = useState<SessionState & { client: Client | null }>({
    client,
    status: client ? 'starting' : 'signed-out',
    tokens: 0,
  });

  const previous = useRef<Client | null>(null);
  useEffect(() => {
    const before = previous.current;
    previous.current = client;
    if (before && before !== client) void endAndForget(before);
  }, [client]);

  useEffect(() => {
    const update = (change: (s: SessionState) => Partial<SessionState>) =>
      setState((s) => {
        const current = s.client === client ? s : { client, status: client ? 'starting' : 'signed-out', tokens: 0 };
        return { ...current, ...change(current as SessionState) } as SessionState & { client: Client | null };
      });
    if (!client) {
      update(() => ({}));
      return;
    }
    let active = true;
    let retry: ReturnType<typeof setTimeout> | undefined;
    const handedOver = (token: string) => {
      if (active) update((s) => ({ tokens: s.tokens + 1, expiresAt: tokenExpiry(token) }));
    };

    // Called by the client before the token expires. A failure (offline,
    // issuer unreachable) is "no token yet": the client keeps the session
    // and asks again a second later.
    const refreshHandler = async () => {
      try {
        const token = await getToken();
        if (token) handedOver(token);
        return token;
      } catch {
        return null;
      }
    };

    const sync = () =>
      serially(client, async () => {
        if (!active) return;
        clearTimeout(retry);
        let token: string | null;
        try {
          token = await getToken();
        } catch (e) {
          if (!active) return;
          update(() => ({ error: `Could not get a session token (${(e as Error).message}); retrying…` }));
          // Offline: the 'online' event retries. Online: try again shortly.
          if (navigator.onLine) retry = setTimeout(sync, 2000);
          return;
        }
        if (!active) return;
        if (!token) {
          await client.endSession();
          update(() => ({ status: 'signed-out' }));
          return;
        }
        if (token !== client.token) {
          handedOver(token);
          await client.startSession(token, true, { refreshHandler });
        } else if (client.connectionStatus !== 'OPEN' && client.connectionStatus !== 'CONNECTING') {
          client.connect();
        }
        update(() => ({ status: 'active', error: undefined }));
      });

    void sync();

    const offSessionError = client.onSessionError((type) => {
      if (!active) return;
      const expiry = tokenExpiry(client.token);
      if (type === 'TOKEN_EXPIRED' || (type === 'UNAUTHORIZED' && expiry !== undefined && expiry <= Date.now())) {
        void sync();
      } else if (type === 'UNAUTHORIZED') {
        update(() => ({
          error:
            'The server refused the session token. Does Ferry trust your issuer? (CLERK_PUBLISHABLE_KEY or TRIPLIT_EXTERNAL_JWT_SECRET)',
        }));
      } else {
        update(() => ({ error: `The server ended the session: ${type}` }));
      }
    });
    const onOffline = () => client.disconnect();
    const onOnline = () => void sync();
    window.addEventListener('offline', onOffline);
    window.addEventListener('online', onOnline);

    return () => {
      active = false;
      clearTimeout(retry);
      offSessionError();
      window.removeEventListener('offline', onOffline);
      window.removeEventListener('online', onOnline);
    };
  }, [client, getToken]);

  if (state.client !== client) return { status: client ? 'starting' : 'signed-out', tokens: 0 };
  const { client: _, ...session } = state;
  return session;
}
