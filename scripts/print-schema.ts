/**
 * Prints the Pothos schema to schema.graphql (sorted, so the file is stable), or with `--check`
 * exits 1 when schema.graphql differs from what the code builds.
 *
 *   npm run schema:print   # writes schema.graphql
 *   npm run schema:check   # fails when schema.graphql is stale
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { lexicographicSortSchema, printSchema } from 'graphql';
import { schema } from '../src/graphql/schema.js';

export const SCHEMA_FILE = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'schema.graphql');

/** The SDL schema.graphql should hold. */
export function printedSchema(): string {
  return `${printSchema(lexicographicSortSchema(schema))}\n`;
}

/** Null when schema.graphql is up to date, else a message saying why not. */
export async function checkSchemaFile(file = SCHEMA_FILE): Promise<string | null> {
  const current = await readFile(file, 'utf8').catch(() => null);
  if (current === null) return `${path.basename(file)} is missing: run npm run schema:print`;
  return current === printedSchema()
    ? null
    : `${path.basename(file)} is out of date with src/graphql: run npm run schema:print and commit it`;
}

async function main(argv: string[]) {
  if (argv.includes('--check')) {
    const problem = await checkSchemaFile();
    if (problem) {
      console.error(problem);
      process.exit(1);
    }
    console.log('schema.graphql is up to date');
    return;
  }
  await writeFile(SCHEMA_FILE, printedSchema());
  console.log(`wrote ${path.relative(process.cwd(), SCHEMA_FILE)}`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await main(process.argv.slice(2));
}
