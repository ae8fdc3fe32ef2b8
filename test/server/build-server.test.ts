/**
 * scripts/build-server.mjs, which `npm start` runs first: it compiles src/ to dist/ when dist/ is
 * missing or older than a source file or folder, and otherwise leaves dist/ alone. Run on a copy
 * (a scratch folder with the script, a small src/ and the repository's node_modules), so the
 * repository's own dist/ is never touched while other tests run from it.
 */
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm, stat, symlink, unlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../support/spawned.js';

const run = promisify(execFile);

describe('the server build', () => {
  let copy: string;
  const build = () => run(process.execPath, [path.join(copy, 'scripts', 'build-server.mjs')], { cwd: copy });
  const stamp = () => readFile(path.join(copy, 'dist', '.built'), 'utf8');
  /** Moves a file's times into the future, as an edit after the last build does. */
  const touch = async (file: string) => {
    const later = new Date(Date.now() + 60_000);
    await utimes(path.join(copy, file), later, later);
  };

  beforeAll(async () => {
    copy = await mkdtemp(path.join(tmpdir(), 'cas-build-'));
    await mkdir(path.join(copy, 'src', 'domain'), { recursive: true });
    await cp(path.join(ROOT, 'scripts', 'build-server.mjs'), path.join(copy, 'scripts', 'build-server.mjs'));
    await symlink(path.join(ROOT, 'node_modules'), path.join(copy, 'node_modules'));
    await writeFile(
      path.join(copy, 'src', 'main.ts'),
      "import { two } from './domain/two.js';\nconsole.log(two satisfies number);\n",
    );
    await writeFile(path.join(copy, 'src', 'domain', 'two.ts'), 'export const two: number = 2;\n');
  });
  afterAll(async () => {
    if (copy) await rm(copy, { recursive: true, force: true });
  });

  it('compiles src/ to runnable JavaScript in dist/, then leaves it alone until a source is newer', async () => {
    await build();
    const { stdout } = await run(process.execPath, [path.join(copy, 'dist', 'main.js')]);
    expect(stdout).toBe('2\n');
    const first = await stamp();

    await build();
    expect(await stamp()).toBe(first);

    await touch('src/domain/two.ts');
    await build();
    expect(await stamp()).not.toBe(first);
  });

  it('a deleted source loses its output at the next build', async () => {
    await unlink(path.join(copy, 'src', 'domain', 'two.ts'));
    await writeFile(path.join(copy, 'src', 'main.ts'), 'console.log(1);\n');
    await touch('src/domain');
    await build();
    await expect(stat(path.join(copy, 'dist', 'domain', 'two.js'))).rejects.toThrow(/ENOENT/);
    expect((await run(process.execPath, [path.join(copy, 'dist', 'main.js')])).stdout).toBe('1\n');
  });
});
