/**
 * Log formats (CAS_LOG_FORMAT): readable lines with `pretty`, one JSON object per line with `json`
 * and with `auto` when stdout is not a terminal (a pipe, as here and in containers).
 */
import { expect, it } from 'vitest';
import { runCommand } from './support/processes.js';

const logOneLine = (format: string) =>
  runCommand(process.execPath, [
    '--import',
    'tsx',
    '-e',
    `import('./src/logger.ts').then(({ createLogger }) => createLogger('info', '${format}').info({ taskId: 't-1' }, 'hello'))`,
  ]);

it('pretty prints readable lines; json and auto (piped) print JSON objects', async () => {
  const pretty = await logOneLine('pretty');
  expect(pretty.code).toBe(0);
  expect(pretty.stdout).toMatch(/INFO.*hello/);
  expect(pretty.stdout).toMatch(/taskId: "t-1"/);
  expect(() => JSON.parse(pretty.stdout.trim())).toThrow();
  for (const format of ['json', 'auto']) {
    const { code, stdout } = await logOneLine(format);
    expect(code).toBe(0);
    expect(JSON.parse(stdout.trim())).toMatchObject({ level: 30, msg: 'hello', taskId: 't-1' });
  }
});
