import { fileURLToPath } from 'node:url';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

// The demo is served by the BFF itself (same origin as /login, /session, /api, ...),
// so it is simply built into demo/dist and the BFF serves that folder at `/`.
// DEMO_BASE changes the public path if the BFF serves it somewhere else.
export default defineConfig({
  root: here('.'),
  base: process.env.DEMO_BASE ?? '/',
  plugins: [react()],
  resolve: {
    // The demo uses the SDK from this checkout's source, not from a registry.
    alias: [
      { find: /^@bffgate\/client\/react$/, replacement: here('../src/react.tsx') },
      { find: /^@bffgate\/client$/, replacement: here('../src/index.ts') },
    ],
  },
  build: {
    outDir: here('dist'),
    emptyOutDir: true,
    target: 'es2022',
  },
});
