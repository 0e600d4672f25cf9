import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { repoRoot } from './processes.js';

/** Debian's Chromium (apt-get install -y chromium); playwright-core never downloads a browser. */
export const CHROMIUM = process.env.KURA_CHROMIUM ?? '/usr/bin/chromium';

/** Screenshots of every page the browser tests visit: test output, never committed. */
export const SHOTS_DIR = process.env.KURA_SHOTS_DIR ?? join(repoRoot, 'test-output', 'console-shots');

export async function launchChromium(): Promise<Browser> {
  await mkdir(SHOTS_DIR, { recursive: true });
  // --no-sandbox: CI runs the tests as root, where Chromium's sandbox refuses to start.
  return chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
}

/** A full-page screenshot named after the step, e.g. 03-user-contract-error.png. */
export async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(SHOTS_DIR, `${name}.png`), fullPage: true });
}
