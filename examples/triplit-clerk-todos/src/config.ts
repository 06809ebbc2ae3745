// Settings, from Vite's environment (`.env`, `.env.local`, or variables
// prefixed VITE_ in the shell; see .env.example).
const env = import.meta.env;

export const config = {
  /** The Triplit server: Ferry (`ferry dev` listens on 6543, like `triplit dev`). */
  serverUrl: env.VITE_TRIPLIT_SERVER_URL || 'http://127.0.0.1:6543',
  /**
   * Your Clerk app's publishable key. With it the app signs in with Clerk;
   * without it, with Ferry's local stand-in (`ferry issuer`) and a user picker.
   */
  clerkPublishableKey: env.VITE_CLERK_PUBLISHABLE_KEY || '',
  /** The local stand-in's URL (`ferry issuer` listens on 6544). */
  localIssuerUrl: env.VITE_LOCAL_ISSUER_URL || 'http://127.0.0.1:6544',
  /** How long the stand-in's tokens live, in seconds (Clerk's live 60 s). */
  localTokenTtl: Number(env.VITE_LOCAL_TOKEN_TTL || 60),
};
