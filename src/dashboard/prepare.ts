import type { Logger } from '../logger.js';
import { ensureDashboardBuilt } from './build.js';
import { loadDashboard, type Dashboard } from './serve.js';

/**
 * `npm start`: the dashboard, rebuilt first when its sources changed since the last build. A failed
 * build is one warning; the last good build (if any) is served, and the API either way.
 */
export async function prepareDashboard(logger: Logger): Promise<Dashboard | null> {
  try {
    if ((await ensureDashboardBuilt()) === 'built') logger.info('dashboard rebuilt (its sources changed)');
  } catch (error) {
    logger.warn(
      { err: error },
      `the dashboard could not be built (${error instanceof Error ? error.message.split('\n')[0] : String(error)})`,
    );
  }
  const dashboard = await loadDashboard();
  if (!dashboard) logger.warn('no dashboard build in web/dist: / says so; run npm install to build it');
  return dashboard;
}
