/**
 * `npm install` (postinstall): builds the dashboard (web/ → web/dist/). Never fails the install:
 * `npm start` builds it when missing or stale, and serves the API either way.
 */
import { ensureDashboardBuilt } from '../src/dashboard/build.js';

try {
  const outcome = await ensureDashboardBuilt();
  console.log(`cas-runtime-api: dashboard ${outcome === 'built' ? 'built' : 'up to date'} (web/dist)`);
} catch (error) {
  console.warn(
    `cas-runtime-api: the dashboard was not built (${error instanceof Error ? error.message : String(error)}); ` +
      'npm start tries again',
  );
}
