/**
 * The dashboard in headless Chromium against the real server, with every outside request blocked:
 * it renders offline, runs a task from the form and follows it live to SUCCEEDED, cancels one,
 * survives its WebSocket being dropped mid-task with the whole timeline, and has no serious
 * accessibility violations (axe-core). Screenshots go to test-output/dashboard/.
 */
import { mkdir, readFile } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { createRequire } from 'node:module';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureDashboardBuilt } from '../../src/dashboard/build.js';
import { canRunChromium, launchChromium } from '../support/chromium.js';
import { data, startTestServer, type AnyData, type TestServer } from './harness.js';

const SCREENSHOTS = 'test-output/dashboard';
/** Ceiling for the page to show what it waits for: generous, for a loaded machine. */
const UI_CEILING_MS = 60_000;
const AXE_SOURCE = readFile(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

describe.skipIf(!canRunChromium)('the dashboard in a browser, offline', () => {
  let server: TestServer;
  let browser: Browser;
  /** Every socket accepted by the server: the test drops them to cut the page's WebSocket. */
  const sockets = new Set<Socket>();
  const outside: string[] = [];

  beforeAll(async () => {
    await ensureDashboardBuilt();
    [server, browser] = await Promise.all([startTestServer('pglite', { dashboard: true }), launchChromium()]);
    server.app.server.on('connection', (socket: Socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    await mkdir(SCREENSHOTS, { recursive: true });
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  /** `bypassCSP` only to inject axe-core, which the page's policy (rightly) refuses. */
  async function openPage(hash: string, options: { bypassCSP?: boolean } = {}): Promise<Page> {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 }, ...options });
    await page.route('**/*', (route) => {
      const url = route.request().url();
      if (url.startsWith(server.origin) || url.startsWith(server.origin.replace(/^http/, 'ws'))) {
        return route.continue();
      }
      outside.push(url);
      return route.abort();
    });
    await page.goto(`${server.origin}/${hash}`);
    await page.locator('[data-connection="connected"]').waitFor({ timeout: UI_CEILING_MS });
    return page;
  }

  async function startFromForm(page: Page, input: { ms: number; steps: number }): Promise<string> {
    await page.locator('select[name="agent"]').selectOption('analyst');
    await page.locator('select[name="action"]').selectOption('wait');
    await page.locator('input[name="ms"]').fill(String(input.ms));
    await page.locator('input[name="steps"]').fill(String(input.steps));
    await page.getByRole('button', { name: 'Run' }).click();
    await page.waitForURL(/#\/tasks\/[0-9a-f-]{36}$/, { timeout: UI_CEILING_MS });
    return decodeURIComponent(page.url().split('/').at(-1)!);
  }

  const statusText = (page: Page) => page.getByTestId('task-status').innerText();

  it(
    'renders the agents from the server alone, with nothing fetched from elsewhere',
    { timeout: 120_000 },
    async () => {
      const started = Date.now();
      const page = await openPage('#/agents');
      await page.locator('[data-agent="marketer"]').waitFor({ timeout: UI_CEILING_MS });
      const interactiveMs = Date.now() - started;
      // From the navigation's start to the agents on screen, by the page's own clock.
      const sinceNavigationMs = Math.round(await page.evaluate(() => performance.now()));
      const scripts = await page.evaluate(() =>
        performance
          .getEntriesByType('resource')
          .filter((entry) => entry.name.endsWith('.js'))
          .map((entry) => (entry as PerformanceResourceTiming).transferSize),
      );
      console.info(
        `dashboard first load: ${scripts.reduce((sum, size) => sum + size, 0)} bytes of JavaScript transferred ` +
          `(gzip), agents shown ${sinceNavigationMs} ms after navigation (${interactiveMs} ms with opening the tab)`,
      );
      expect(await page.locator('tbody tr').count()).toBeGreaterThanOrEqual(8);
      await page.screenshot({ path: `${SCREENSHOTS}/agents-1280.png`, fullPage: true });
      await page.setViewportSize({ width: 390, height: 844 });
      await page.screenshot({ path: `${SCREENSHOTS}/agents-390.png`, fullPage: true });
      expect(outside).toEqual([]);
      await page.close();
    },
  );

  it(
    'runs a task from the form: its progress bar moves to 100% and it ends SUCCEEDED without a reload',
    { timeout: 120_000 },
    async () => {
      const page = await openPage('#/run/analyst');
      // Every progress value the page shows, in order.
      await page.exposeFunction('recordProgress', (value: string) => seen.push(Number(value)));
      const seen: number[] = [];
      await page.evaluate(() => {
        new MutationObserver((changes) => {
          for (const change of changes) {
            const target = change.target as Element;
            if (target.getAttribute('aria-label') === 'Task progress')
              (window as unknown as { recordProgress(value: string): void }).recordProgress(
                target.getAttribute('aria-valuenow') ?? '',
              );
          }
        }).observe(document.body, { subtree: true, attributes: true, attributeFilter: ['aria-valuenow'] });
      });
      const id = await startFromForm(page, { ms: 2000, steps: 5 });
      await page.getByTestId('task-status').getByText('SUCCEEDED').waitFor({ timeout: UI_CEILING_MS });
      expect(
        await page.getByRole('progressbar', { name: 'Task progress' }).getAttribute('aria-valuenow'),
      ).toBe('100');
      expect(seen.some((value) => value > 0 && value < 100)).toBe(true);
      expect(seen).toEqual([...seen].sort((a, b) => a - b));
      const { task } = await data(server.url, `{ task(id: "${id}") { status result } }`);
      expect(task).toEqual({ status: 'SUCCEEDED', result: { waitedMs: 2000, steps: 5 } });
      await page.screenshot({ path: `${SCREENSHOTS}/task-succeeded.png`, fullPage: true });
      expect(outside).toEqual([]);
      await page.close();
    },
  );

  it('cancels a running task from its page', { timeout: 120_000 }, async () => {
    const page = await openPage('#/run');
    await startFromForm(page, { ms: 600_000, steps: 600 });
    await page.getByTestId('task-status').getByText('RUNNING').waitFor({ timeout: UI_CEILING_MS });
    await page.getByRole('button', { name: 'Cancel' }).click();
    await page.getByTestId('task-status').getByText('CANCELLED').waitFor({ timeout: UI_CEILING_MS });
    expect(await statusText(page)).toBe('CANCELLED');
    await page.close();
  });

  it(
    'shows "reconnecting" when its connection drops mid-task, then the full timeline, nothing twice',
    { timeout: 180_000 },
    async () => {
      const page = await openPage('#/run');
      const id = await startFromForm(page, { ms: 6000, steps: 6 });
      await page
        .locator('[data-testid="timeline"] li[data-type="task_progress"]')
        .first()
        .waitFor({ timeout: UI_CEILING_MS });
      await page.screenshot({ path: `${SCREENSHOTS}/task-mid-progress.png`, fullPage: true });
      for (const socket of sockets) socket.destroy();
      await page.locator('[data-connection="reconnecting"]').waitFor({ timeout: UI_CEILING_MS });
      await page.locator('[data-connection="connected"]').waitFor({ timeout: UI_CEILING_MS });
      await page.getByTestId('task-status').getByText('SUCCEEDED').waitFor({ timeout: UI_CEILING_MS });
      await page
        .locator('[data-testid="timeline"] li[data-type="task_completed"]')
        .waitFor({ timeout: UI_CEILING_MS });
      const shown = await page
        .locator('[data-testid="timeline"] li')
        .evaluateAll((items) => items.map((item) => item.getAttribute('data-type')));
      const { events } = await data(
        server.url,
        `{ events(taskId: "${id}", first: 500) { edges { node { type } } } }`,
      );
      expect(shown).toEqual(events.edges.map((edge: AnyData) => edge.node.type));
      await page.close();
    },
  );

  it(
    'has no serious or critical accessibility violations on any page (axe-core)',
    { timeout: 180_000 },
    async () => {
      const [{ executeTask }] = await Promise.all([
        data(
          server.url,
          'mutation { executeTask(input: { agentId: "qa", action: "ping", wait: true }) { id } }',
        ),
      ]);
      const found: string[] = [];
      for (const hash of ['#/agents', '#/tasks', `#/tasks/${executeTask.id}`, '#/run', '#/workflows']) {
        const page = await openPage(hash, { bypassCSP: true });
        await page.locator('h1').waitFor({ timeout: UI_CEILING_MS });
        await page.locator('table, dl, form').first().waitFor({ timeout: UI_CEILING_MS });
        await page.addScriptTag({ content: await AXE_SOURCE });
        const violations = await page.evaluate(async () => {
          const axe = (
            window as unknown as {
              axe: { run(): Promise<{ violations: { id: string; impact: string; nodes: unknown[] }[] }> };
            }
          ).axe;
          const result = await axe.run();
          return result.violations.map((violation) => ({
            id: violation.id,
            impact: violation.impact,
            nodes: violation.nodes.length,
          }));
        });
        for (const violation of violations) {
          if (violation.impact === 'serious' || violation.impact === 'critical')
            found.push(`${hash}: ${violation.id} (${violation.nodes})`);
        }
        await page.screenshot({
          path: `${SCREENSHOTS}/${hash.replace(/[#/]+/g, '-').replace(/^-/, '') || 'home'}.png`,
          fullPage: true,
        });
        await page.close();
      }
      expect(found).toEqual([]);
      expect(outside).toEqual([]);
    },
  );
});

describe('the dashboard files', () => {
  let server: TestServer;
  beforeAll(async () => {
    await ensureDashboardBuilt();
    server = await startTestServer('pglite', { dashboard: true });
  }, 180_000);
  afterAll(() => server?.close());

  it('serves the page uncached, the hashed assets cached and compressed, and nothing else', async () => {
    const page = await fetch(`${server.origin}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('cache-control')).toBe('no-cache');
    expect(page.headers.get('content-security-policy')).toContain("default-src 'self'");
    const script = /src="(\/assets\/[^"]+\.js)"/.exec(await page.text())![1]!;
    const asset = await fetch(`${server.origin}${script}`, { headers: { 'accept-encoding': 'gzip' } });
    expect(asset.status).toBe(200);
    expect(asset.headers.get('content-encoding')).toBe('gzip');
    expect(asset.headers.get('cache-control')).toContain('immutable');
    for (const path of [
      '/assets/../../package.json',
      '/assets/%2e%2e/package.json',
      '/web/src/main.tsx',
      '/index.html',
    ]) {
      expect((await fetch(`${server.origin}${path}`)).status, path).toBe(404);
    }
    expect((await fetch(`${server.origin}/`, { method: 'POST' })).status).not.toBe(200);
  });
});
