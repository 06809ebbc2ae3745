import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// The dev server and the preview bind 127.0.0.1 only (like `ferry dev`).
export default defineConfig({
  plugins: [react()],
  // @triplit/client (with its query engine) is one ~450 kB chunk.
  build: { chunkSizeWarningLimit: 800 },
  server: { host: '127.0.0.1', port: 5173, strictPort: true },
  preview: { host: '127.0.0.1', port: 4173, strictPort: true },
});
