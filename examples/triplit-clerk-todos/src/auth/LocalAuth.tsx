// Signing in without a Clerk account: Ferry's local stand-in for Clerk
// (`ferry issuer`) mints Clerk-shaped session tokens for any user id at
// GET /token?sub=…, signed with a key that Ferry is told to trust. The
// "sign-in" is a user picker; which user is remembered per tab
// (sessionStorage), so two tabs can be two users side by side.
//
// Only for development and tests: anyone who can reach the issuer can
// mint a token for anyone.
import { useCallback, useState } from 'react';
import { config } from '../config';
import { TodoApp, type Auth } from '../TodoApp';

export type LocalUser = { id: string; name: string; email: string };

export const LOCAL_USERS: LocalUser[] = [
  { id: 'user_alice', name: 'Alice', email: 'alice@example.com' },
  { id: 'user_bob', name: 'Bob', email: 'bob@example.com' },
];

const STORAGE_KEY = 'triplit-clerk-todos:local-user';

function rememberedUser(): LocalUser | null {
  const id = sessionStorage.getItem(STORAGE_KEY);
  return LOCAL_USERS.find((u) => u.id === id) ?? null;
}

/** A fresh token for `user` from the local issuer — what Clerk's getToken() is in Clerk mode. */
async function localToken(user: LocalUser): Promise<string> {
  const params = new URLSearchParams({
    sub: user.id,
    email: user.email,
    ttl: String(config.localTokenTtl),
    // Clerk puts the app's origin in `azp`; Ferry checks it against
    // CLERK_AUTHORIZED_PARTIES when that is set.
    azp: window.location.origin,
  });
  const res = await fetch(`${config.localIssuerUrl}/token?${params}`);
  if (!res.ok) throw new Error(`the local issuer answered ${res.status}: ${(await res.text()).trim()}`);
  return (await res.text()).trim();
}

export function LocalAuth() {
  const [user, setUser] = useState<LocalUser | null>(rememberedUser);

  const signIn = (u: LocalUser) => {
    sessionStorage.setItem(STORAGE_KEY, u.id);
    setUser(u);
  };
  const signOut = async () => {
    sessionStorage.removeItem(STORAGE_KEY);
    setUser(null);
  };
  // One function per user, like Clerk's getToken for the current session.
  const getToken = useCallback(async () => (user ? localToken(user) : null), [user]);

  const auth: Auth = {
    mode: 'local',
    user: user ? { id: user.id, name: user.name } : null,
    getToken,
    signOut,
    nameOf: (id) => LOCAL_USERS.find((u) => u.id === id)?.name,
  };

  return (
    <TodoApp
      auth={auth}
      signIn={
        <div className="sign-in" data-testid="sign-in">
          <p>
            Sign in as (local test users; tokens from <code>{config.localIssuerUrl}</code>, Ferry's stand-in for
            Clerk):
          </p>
          <div className="user-picker">
            {LOCAL_USERS.map((u) => (
              <button key={u.id} type="button" onClick={() => signIn(u)} data-testid={`sign-in-${u.name.toLowerCase()}`}>
                {u.name}
              </button>
            ))}
          </div>
          <p className="hint">
            Open a second tab (or window) and sign in as the other user to watch changes sync. Set{' '}
            <code>VITE_CLERK_PUBLISHABLE_KEY</code> in <code>.env</code> to sign in with Clerk instead.
          </p>
        </div>
      }
    />
  );
}
