/// <reference types="vite/client" />

interface ImportMetaEnv {
  readonly VITE_TRIPLIT_SERVER_URL?: string;
  readonly VITE_CLERK_PUBLISHABLE_KEY?: string;
  readonly VITE_LOCAL_ISSUER_URL?: string;
  readonly VITE_LOCAL_TOKEN_TTL?: string;
}

interface ImportMeta {
  readonly env: ImportMetaEnv;
}
