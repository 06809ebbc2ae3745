// Signing in with Clerk. This module (and @clerk/clerk-react) is loaded
// only when VITE_CLERK_PUBLISHABLE_KEY is set (see src/main.tsx), so the
// offline mode never touches Clerk's network.
//
// Ferry must trust the same Clerk instance: run it with
// CLERK_PUBLISHABLE_KEY set to the same key (npm start does), or with
// Clerk's PEM public key in TRIPLIT_EXTERNAL_JWT_SECRET.
import { ClerkProvider, SignInButton, SignUpButton, UserButton, useAuth, useUser } from '@clerk/clerk-react';
import { TodoApp, type Auth } from '../TodoApp';

export default function ClerkAuth({ publishableKey }: { publishableKey: string }) {
  return (
    <ClerkProvider publishableKey={publishableKey} afterSignOutUrl="/">
      <WithClerk />
    </ClerkProvider>
  );
}

function WithClerk() {
  // Clerk's getToken() returns the current session token (Clerk refreshes
  // it before it expires) or null when signed out.
  const { isLoaded, userId, getToken, signOut } = useAuth();
  const { user } = useUser();
  const name = user?.fullName || user?.primaryEmailAddress?.emailAddress || user?.username || userId || '';

  const auth: Auth = {
    mode: 'clerk',
    user: !isLoaded ? undefined : userId ? { id: userId, name } : null,
    getToken,
    signOut: () => signOut(),
    nameOf: (id) => (id === userId ? name : undefined),
    accountMenu: <UserButton />,
  };

  return (
    <TodoApp
      auth={auth}
      signIn={
        <div className="sign-in" data-testid="sign-in">
          <p>Sign in with Clerk to see the shared list and your own todos.</p>
          <div className="user-picker">
            <SignInButton mode="modal" />
            <SignUpButton mode="modal" />
          </div>
        </div>
      }
    />
  );
}
