/**
 * The dashboard's build: web/ to web/dist/, served by `npm start` at / (src/server/dashboard.ts).
 * Built by `npm install` (postinstall) and again by `npm start` when the sources changed
 * (scripts/build-dashboard.ts). Everything is bundled: the page fetches nothing from elsewhere.
 */
import react from '@vitejs/plugin-react';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/',
  plugins: [react()],
  logLevel: 'warn',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // Hashed file names: served as immutable; index.html is not cached.
    assetsDir: 'assets',
    sourcemap: false,
  },
});
