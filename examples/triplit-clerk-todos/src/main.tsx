import { StrictMode, Suspense, lazy } from 'react';
import { createRoot } from 'react-dom/client';
import { config } from './config';
import { LocalAuth } from './auth/LocalAuth';
import './styles.css';

// With a Clerk key, sign in with Clerk; the Clerk SDK is a separate chunk,
// fetched only in this case. Without one, use Ferry's local stand-in.
const ClerkAuth = lazy(() => import('./auth/ClerkAuth'));

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    {config.clerkPublishableKey ? (
      <Suspense fallback={<p className="muted">Loading Clerk…</p>}>
        <ClerkAuth publishableKey={config.clerkPublishableKey} />
      </Suspense>
    ) : (
      <LocalAuth />
    )}
  </StrictMode>
);
