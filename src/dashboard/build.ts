/**
 * The dashboard's build (web/ → web/dist/ with Vite), run by `npm install` and, when the sources
 * changed since, by `npm start`. The build records a fingerprint of what it was built from (the
 * files under web/ and package-lock.json) in web/dist/BUILD; a different fingerprint means stale.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const WEB_DIR = fileURLToPath(new URL('../../web/', import.meta.url));
export const DIST_DIR = path.join(WEB_DIR, 'dist');
const STAMP_FILE = path.join(DIST_DIR, 'BUILD');
const LOCKFILE = fileURLToPath(new URL('../../package-lock.json', import.meta.url));

async function sourceFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const files = await Promise.all(
    entries
      .filter((entry) => !['dist', 'node_modules'].includes(entry.name))
      .map((entry) => {
        const full = path.join(dir, entry.name);
        return entry.isDirectory() ? sourceFiles(full) : Promise.resolve([full]);
      }),
  );
  return files.flat().sort();
}

/** A hash of the sources and the lockfile: equal fingerprints build the same page. */
export async function sourceFingerprint(): Promise<string> {
  const hash = createHash('sha256');
  for (const file of [...(await sourceFiles(WEB_DIR)), LOCKFILE]) {
    hash
      .update(path.relative(WEB_DIR, file))
      .update('\0')
      .update(await readFile(file))
      .update('\0');
  }
  return hash.digest('hex');
}

/** True when web/dist was built from the sources as they are now. */
export async function isBuildCurrent(): Promise<boolean> {
  const [built, now] = await Promise.all([
    readFile(STAMP_FILE, 'utf8').catch(() => null),
    sourceFingerprint(),
  ]);
  return built?.trim() === now;
}

/** Builds web/dist with Vite (loaded only here: starting the server does not need it otherwise). */
export async function buildDashboard(): Promise<void> {
  const fingerprint = await sourceFingerprint();
  const { build } = await import('vite');
  await build({ configFile: path.join(WEB_DIR, 'vite.config.ts'), logLevel: 'warn' });
  await writeFile(STAMP_FILE, `${fingerprint}\n`);
}

/** Builds when stale; says what it did. Throws when the build fails. */
export async function ensureDashboardBuilt(): Promise<'current' | 'built'> {
  if (await isBuildCurrent()) return 'current';
  await buildDashboard();
  return 'built';
}
