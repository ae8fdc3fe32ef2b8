/**
 * Settings stay findable: every variable src/config.ts reads is in .env.example and in the tables
 * of docs/configuration.md, and nothing else is; an unknown CAS_* variable gets a warning with the
 * closest known name.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { KNOWN_VARIABLES, unknownVariableWarnings } from '../src/config.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const NAME = /^[A-Z][A-Z0-9_]*$/;

/** `NAME=value` lines of .env.example, each of which must follow a comment saying what it does. */
async function envExampleVariables(): Promise<string[]> {
  const lines = (await readFile(path.join(ROOT, '.env.example'), 'utf8')).split('\n');
  return lines.flatMap((line, index) => {
    const name = line.split('=')[0]!;
    if (!line.includes('=') || line.startsWith('#') || !NAME.test(name)) return [];
    expect(lines[index - 1], `${name} in .env.example needs a comment above it`).toMatch(/^# /);
    return [name];
  });
}

/** The backquoted names in the first column of the tables under "## Variables". */
async function documentedVariables(): Promise<string[]> {
  const doc = await readFile(path.join(ROOT, 'docs', 'configuration.md'), 'utf8');
  const section = doc.split(/^## /m).find((part) => part.startsWith('Variables\n'));
  expect(section, 'docs/configuration.md has a "## Variables" section').toBeDefined();
  return section!
    .split('\n')
    .filter((line) => line.startsWith('| `'))
    .flatMap((line) => [...line.split('|')[1]!.matchAll(/`([^`]+)`/g)].map((match) => match[1]!))
    .filter((name) => NAME.test(name));
}

describe('configuration documentation', () => {
  it('.env.example, docs/configuration.md and src/config.ts name the same variables', async () => {
    const example = await envExampleVariables();
    const documented = await documentedVariables();
    expect(new Set(example).size, 'a variable appears twice in .env.example').toBe(example.length);
    expect(new Set(documented).size, 'a variable appears twice in docs/configuration.md').toBe(
      documented.length,
    );
    expect([...example].sort()).toEqual([...KNOWN_VARIABLES].sort());
    expect([...documented].sort()).toEqual([...KNOWN_VARIABLES].sort());
  });
});

describe('unknown CAS_* variables', () => {
  it('are warned about with the closest known name', () => {
    expect(
      unknownVariableWarnings({
        CAS_WOKERS: '2',
        CAS_SHUTDOWN_TIMEOUT: '5000',
        CAS_SOMETHING_ELSE_ENTIRELY: 'x',
        CAS_WORKERS: '1',
        CAS_TEST_DATABASE_URL: 'postgres://x',
        HOME: '/root',
      }),
    ).toEqual([
      'CAS_SHUTDOWN_TIMEOUT is not a setting of this service and is ignored; did you mean CAS_SHUTDOWN_TIMEOUT_MS?',
      'CAS_SOMETHING_ELSE_ENTIRELY is not a setting of this service and is ignored; see .env.example',
      'CAS_WOKERS is not a setting of this service and is ignored; did you mean CAS_WORKERS?',
    ]);
  });
});
