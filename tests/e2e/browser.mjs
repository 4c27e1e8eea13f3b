// Shared set-up for end-to-end tests: Debian's Chromium driven by playwright-core, pages of the
// served console, and small helpers that wait for a condition instead of sleeping.
import { chromium } from 'playwright-core';

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-dev-shm-usage',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

export function launchChromium() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_ARGS,
  });
}

/** Opens the console in a fresh browser context (its own IndexedDB) and waits for the node. */
export async function openNode(browser, url, { name } = {}) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on('console', (msg) => {
    if (msg.type() === 'error' || msg.type() === 'warning') console.log(`[${name} console] ${msg.text()}`);
  });
  page.on('pageerror', (err) => console.log(`[${name} pageerror] ${err.message}`));
  await page.goto(url);
  await waitForNode(page);
  return { context, page };
}

export async function waitForNode(page) {
  await page.waitForFunction(() => window.tabnode || window.tabnodeError, null, { timeout: 60_000 });
  const error = await page.evaluate(() => window.tabnodeError && `${window.tabnodeError.name}: ${window.tabnodeError.message}`);
  if (error) throw new Error(`the node did not start: ${error}`);
}

/** Polls `check` until it returns a truthy value; fails with `what` and the last value after `ms`. */
export async function eventually(what, check, { ms = 60_000, every = 100 } = {}) {
  const deadline = Date.now() + ms;
  let last;
  while (Date.now() < deadline) {
    last = await check();
    if (last && last.ok !== false) return last;
    await new Promise((r) => setTimeout(r, every));
  }
  throw new Error(`timed out waiting for ${what}; last seen: ${JSON.stringify(last)?.slice(0, 500)}`);
}

export function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b);
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}
