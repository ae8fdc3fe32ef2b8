import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { checkDefinition, isDefinedAgent, type CheckedAgent } from './definition.js';

/** An agent as loaded from a file: what to register, and where it came from (for messages). */
export interface LoadedAgent extends CheckedAgent {
  file: string;
}

/**
 * A file in the agents folder that cannot be used, or a folder that is not there. Its message is
 * the one or two lines start-up prints (src/server/startup-errors.ts), naming the file.
 */
export class AgentLoadError extends Error {
  override readonly name = 'AgentLoadError';
}

/** Agent files: `*.ts` and `*.js`, not declarations (`.d.ts`) nor tests (`*.test.*`, `*.spec.*`). */
export function isAgentFile(name: string): boolean {
  return (
    /\.(ts|js)$/.test(name) &&
    !name.endsWith('.d.ts') &&
    !/\.(test|spec)\./.test(name) &&
    !name.startsWith('.')
  );
}

/** How a path appears in messages: relative to the working directory when it lies inside it. */
function shown(file: string, cwd: string): string {
  const relative = path.relative(cwd, file);
  return relative && !relative.startsWith('..') && !path.isAbsolute(relative) ? relative : file;
}

/**
 * The part of an error's message a person needs: its first line, and the next one when the first
 * only introduces it (esbuild's "Transform failed with 1 error:" before the syntax error itself).
 */
function headline(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const [first = '', second] = message
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean);
  return first.endsWith(':') && second ? `${first} ${second}` : first;
}

export interface LoadAgentsOptions {
  /** The folder (CAS_AGENTS_DIR), relative to `cwd` unless absolute. */
  dir: string;
  /** Set explicitly: a missing folder is an error. The default folder may be absent (no agents). */
  explicit: boolean;
  cwd?: string;
}

/** One file's default export, with its path and how messages show it. */
export interface ImportedDefault {
  file: string;
  name: string;
  value: unknown;
}

/**
 * The compiled service (`npm start` runs dist/, plain JavaScript) imports agent files written in
 * TypeScript through tsx, registered with the first such file. From src/ (tests, `tsx`), tsx is
 * already there.
 */
const runningCompiled = !import.meta.url.endsWith('.ts');
let typeScriptImports: Promise<void> | undefined;
function ensureTypeScriptImports(): Promise<void> {
  if (!runningCompiled) return Promise.resolve();
  return (typeScriptImports ??= import('tsx/esm/api').then(({ register }) => void register()));
}

/**
 * Imports every definition file directly in a folder (sorted by name) and returns their default
 * exports: the part agent and workflow loading share. `setting` names the folder's environment
 * setting in messages; `sdkHint` says how a file should end.
 */
export async function importDefaultExports(
  options: LoadAgentsOptions & { setting: string; kind: string; sdkHint: string },
): Promise<ImportedDefault[]> {
  const cwd = options.cwd ?? process.cwd();
  const dir = path.resolve(cwd, options.dir);
  const info = await stat(dir).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return null;
    throw error;
  });
  if (!info) {
    if (!options.explicit) return [];
    throw new AgentLoadError(
      `${options.setting} is "${options.dir}", which does not exist (${dir})\ncreate it, or fix or unset ${options.setting}`,
    );
  }
  if (!info.isDirectory()) {
    throw new AgentLoadError(`${options.setting} is "${options.dir}", which is not a folder (${dir})`);
  }
  const entries = await readdir(dir, { withFileTypes: true });
  const files = entries
    .filter((entry) => entry.isFile() && isAgentFile(entry.name))
    .map((entry) => path.join(dir, entry.name))
    .sort();
  const imported: ImportedDefault[] = [];
  for (const file of files) {
    const name = shown(file, cwd);
    let module: Record<string, unknown>;
    try {
      if (file.endsWith('.ts')) await ensureTypeScriptImports();
      module = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
    } catch (error) {
      throw new AgentLoadError(`${options.kind} file ${name} failed to load: ${headline(error)}`, {
        cause: error,
      });
    }
    if (!('default' in module) || module.default === undefined) {
      throw new AgentLoadError(`${options.kind} file ${name} has no default export\n${options.sdkHint}`);
    }
    imported.push({ file, name, value: module.default });
  }
  return imported;
}

/**
 * Imports every agent file directly in the folder (sorted by name) and checks it: each must
 * default-export a valid defineAgent(...) result, and no two may share an id. Throws an
 * AgentLoadError at the first problem found. The process's loader must handle `.ts` files
 * (`node --import tsx`, as `npm start` and `npm run worker` run).
 */
export async function loadAgents(options: LoadAgentsOptions): Promise<LoadedAgent[]> {
  const cwd = options.cwd ?? process.cwd();
  const imported = await importDefaultExports({
    ...options,
    setting: 'CAS_AGENTS_DIR',
    kind: 'agent',
    sdkHint:
      "end it with: export default defineAgent({ ... }) (import { defineAgent } from 'cas-runtime-api/sdk')",
  });
  const loaded: LoadedAgent[] = [];
  for (const { file, name, value } of imported) {
    if (!isDefinedAgent(value)) {
      throw new AgentLoadError(
        `agent file ${name}: its default export is not a defineAgent(...) result\nexport default defineAgent({ id, name, role, actions }) (import { defineAgent } from 'cas-runtime-api/sdk')`,
      );
    }
    const checked = checkDefinition(value);
    if (!checked.ok) {
      throw new AgentLoadError(
        `agent file ${name} has an invalid definition: ${checked.problems.join('; ')}`,
      );
    }
    const same = loaded.find((agent) => agent.registration.id === checked.agent.registration.id);
    if (same) {
      throw new AgentLoadError(
        `agent files ${shown(same.file, cwd)} and ${name} both define the agent "${checked.agent.registration.id}"\ngive each agent its own id`,
      );
    }
    loaded.push({ ...checked.agent, file });
  }
  return loaded;
}
