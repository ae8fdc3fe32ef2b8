/**
 * Headless Chromium for the browser tests: Debian's package, launched the same way everywhere. A
 * machine without it skips those tests, except in CI, where .ci/run installs it and a missing
 * browser must fail.
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

const CHROMIUM = '/usr/bin/chromium';
const isCi = !['', '0', 'false'].includes((process.env.CI ?? '').trim().toLowerCase());

/** False when the browser tests should be skipped on this machine. */
export const canRunChromium = existsSync(CHROMIUM) || isCi;

/** Launches headless Chromium with nothing that reaches the network by itself. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}
