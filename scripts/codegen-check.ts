/**
 * Fails (exit 1) when a generated client (examples/gql/, web/src/gql/) is not what `npm run codegen`
 * would write now: regenerates under a temporary folder with the same codegen.ts and compares file
 * by file. Offline: codegen reads schema.graphql, not a server.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const GENERATED = ['examples/gql', 'web/src/gql'];
const CODEGEN_BIN = path.join(ROOT, 'node_modules', '.bin', 'graphql-codegen');

async function filesIn(dir: string): Promise<Map<string, string>> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const entries = await Promise.all(
    names.sort().map(async (name) => [name, await readFile(path.join(dir, name), 'utf8')] as const),
  );
  return new Map(entries);
}

/** The files that differ (or exist on one side only); empty when every client is up to date. */
export async function staleCodegenFiles(): Promise<string[]> {
  const out = await mkdtemp(path.join(tmpdir(), 'cas-codegen-'));
  try {
    await promisify(execFile)(CODEGEN_BIN, ['--config', 'codegen.ts', '--silent'], {
      cwd: ROOT,
      env: { ...process.env, CAS_CODEGEN_OUT_ROOT: `${out}/` },
    });
    const stale: string[] = [];
    for (const folder of GENERATED) {
      const [fresh, committed] = await Promise.all([
        filesIn(path.join(out, folder)),
        filesIn(path.join(ROOT, folder)),
      ]);
      if (fresh.size === 0) throw new Error(`codegen wrote nothing to ${folder}`);
      const names = new Set([...fresh.keys(), ...committed.keys()]);
      for (const name of names) if (fresh.get(name) !== committed.get(name)) stale.push(`${folder}/${name}`);
    }
    return stale.sort();
  } finally {
    await rm(out, { recursive: true, force: true });
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const stale = await staleCodegenFiles();
  if (stale.length > 0) {
    console.error(
      `generated clients are out of date (${stale.join(', ')}): run npm run codegen and commit them`,
    );
    process.exit(1);
  }
  console.log(`${GENERATED.join(', ')}: up to date`);
}
