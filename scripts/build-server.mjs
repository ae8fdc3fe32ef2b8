/**
 * Compiles src/ to dist/ (one JavaScript module per TypeScript file, same folders), which `npm start`
 * and `npm run worker` run with plain Node. Run by postinstall and before each start; it does nothing
 * when dist/ is newer than every file in src/, so a start after an edit runs the edit.
 *
 * Why not run src/ under tsx as tests do: tsx keeps function names by wrapping every function
 * expression in a defineProperty call, which gives each closure made at run time a property store
 * (about 4.6 KiB per idle subscription) and costs CPU on every request; its import hooks run in a
 * thread of their own; and it compiles the modules at every start. Compiled, the embedded server is
 * ready sooner and smaller (docs/operations.md). Plain JavaScript here: this runs before anything
 * else, with nothing but Node and esbuild.
 */
import { existsSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const SOURCE = path.join(ROOT, 'src');
const OUTPUT = path.join(ROOT, 'dist');
/** Written last: its time says when dist/ was complete. */
const STAMP = path.join(OUTPUT, '.built');

function sourceFiles(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(file);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [file] : [];
  });
}

const mtime = (file) => statSync(file, { throwIfNoEntry: false })?.mtimeMs;

const files = sourceFiles(SOURCE);
const built = mtime(STAMP);
// A deleted source file changes its folder's time, so folders count too.
const folders = [SOURCE, ...files.map((file) => path.dirname(file))];
const newest = Math.max(...[...files, ...folders].map((file) => mtime(file) ?? Infinity));

if (built === undefined || newest > built) {
  // Built aside and swapped in, so a server already running from dist/, or a second start building
  // at the same moment, never reads a half-written folder.
  const aside = path.join(ROOT, 'node_modules', '.cache', `cas-dist-${process.pid}`);
  const staging = `${aside}.new`;
  const retired = `${aside}.old`;
  rmSync(staging, { recursive: true, force: true });
  const { build } = await import('esbuild');
  await build({
    entryPoints: files,
    outdir: staging,
    outbase: SOURCE,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    logLevel: 'warning',
  });
  writeFileSync(path.join(staging, '.built'), `${new Date().toISOString()}\n`);
  if (existsSync(OUTPUT)) renameSync(OUTPUT, retired);
  try {
    renameSync(staging, OUTPUT);
  } catch (error) {
    // Another start swapped in its build first: as fresh as this one.
    if (!['ENOTEMPTY', 'EEXIST'].includes(error.code)) throw error;
  }
  rmSync(staging, { recursive: true, force: true });
  rmSync(retired, { recursive: true, force: true });
}
