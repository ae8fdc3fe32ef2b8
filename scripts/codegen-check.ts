/**
 * Fails (exit 1) when examples/gql/ is not what `npm run codegen` would write now: regenerates into
 * a temporary folder with the same codegen.ts and compares file by file. Offline: codegen reads
 * schema.graphql, not a server.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const GENERATED = path.join(ROOT, 'examples', 'gql');
const CODEGEN_BIN = path.join(ROOT, 'node_modules', '.bin', 'graphql-codegen');

async function filesIn(dir: string): Promise<Map<string, string>> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const entries = await Promise.all(
    names.sort().map(async (name) => [name, await readFile(path.join(dir, name), 'utf8')] as const),
  );
  return new Map(entries);
}

/** The files that differ (or exist on one side only); empty when examples/gql/ is up to date. */
export async function staleCodegenFiles(): Promise<string[]> {
  const out = await mkdtemp(path.join(tmpdir(), 'cas-codegen-'));
  try {
    await promisify(execFile)(CODEGEN_BIN, ['--config', 'codegen.ts', '--silent'], {
      cwd: ROOT,
      env: { ...process.env, CAS_CODEGEN_OUT: `${out}/` },
    });
    const [fresh, committed] = await Promise.all([filesIn(out), filesIn(GENERATED)]);
    if (fresh.size === 0) throw new Error('codegen wrote nothing');
    const names = new Set([...fresh.keys(), ...committed.keys()]);
    return [...names].filter((name) => fresh.get(name) !== committed.get(name)).sort();
  } finally {
    await rm(out, { recursive: true, force: true });
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const stale = await staleCodegenFiles();
  if (stale.length > 0) {
    console.error(`examples/gql/ is out of date (${stale.join(', ')}): run npm run codegen and commit it`);
    process.exit(1);
  }
  console.log('examples/gql/ is up to date');
}
