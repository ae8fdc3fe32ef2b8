/**
 * `.env` in the working directory is read by `npm start` (and `npm run worker`, which shares
 * process-lifecycle.ts); the environment wins over it; unknown CAS_* settings are warned about once.
 */
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, expect, it } from 'vitest';
import { killSpawned, ROOT, spawnService } from '../support/spawned.js';

/** tsx's loader by absolute URL, so the process can run in a folder of its own. */
const TSX_LOADER = pathToFileURL(createRequire(path.join(ROOT, 'package.json')).resolve('tsx')).href;

let folder: string | undefined;
afterEach(async () => {
  await killSpawned();
  if (folder) await rm(folder, { recursive: true, force: true });
});

it(
  'npm start reads .env, the environment wins over it, and CAS_* typos are warned about',
  { timeout: 300_000 },
  async () => {
    folder = await mkdtemp(path.join(tmpdir(), 'cas-env-file-'));
    await writeFile(
      path.join(folder, '.env'),
      [
        'HOST=127.0.0.1',
        'PORT=0',
        'CAS_DATA_DIR=data-from-env-file',
        'LOG_LEVEL=silent',
        'CAS_WOKERS=2',
        '',
      ].join('\n'),
    );
    const server = spawnService(
      process.execPath,
      ['--import', TSX_LOADER, path.join(ROOT, 'src/server/main.ts')],
      {
        cwd: folder,
        env: { LOG_LEVEL: 'info' },
      },
    );
    // LOG_LEVEL=info from the environment, not silent from the file: the lines are there.
    const [readyLine] = await server.waitForOutput(
      /^.*CAS Runtime API ready at http:\/\/127\.0\.0\.1:\d+.*$/m,
      170_000,
    );
    expect(server.stdout()).toContain(`settings from ${path.join(folder, '.env')}`);
    const warnings = server.stdout().match(/CAS_WOKERS is not a setting of this service[^"]*/g);
    expect(warnings).toEqual([
      'CAS_WOKERS is not a setting of this service and is ignored; did you mean CAS_WORKERS?',
    ]);
    expect(JSON.parse(readyLine!)).toMatchObject({ workers: 1 });

    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
    // CAS_DATA_DIR came from the file, relative to the working directory.
    await expect(stat(path.join(folder, 'data-from-env-file', 'PG_VERSION'))).resolves.toBeTruthy();
  },
);
