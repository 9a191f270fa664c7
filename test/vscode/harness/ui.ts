import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { REPO_ROOT } from './tools';

/** Where screenshots go (git-ignored). */
export const RESULTS_DIR = join(REPO_ROOT, 'test-results');

/**
 * Bounds on the waits of a UI step. They only bound a hang: every wait ends as soon as the state it
 * waits for is there, and on a 2-core machine at load 10-16 a workbench step can take tens of seconds.
 */
export const STEP_MS = 120_000;
/** How long one attempt at a flaky UI gesture (a key press the workbench may drop while busy) gets. */
export const ATTEMPT_MS = 20_000;

/** Repeats `attempt` (each bounded by its own waits), undoing after each failure, until it succeeds or `STEP_MS` has passed. */
export async function retrying(what: string, attempt: () => Promise<void>, undo: () => Promise<void>): Promise<void> {
  const deadline = Date.now() + STEP_MS;
  for (let n = 1; ; n++) {
    try {
      await attempt();
      if (n > 1) console.log(`  ${what}: attempt ${n} succeeded`);
      return;
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`${what} failed for ${STEP_MS / 1000} s: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`, { cause: error });
      await undo().catch(() => undefined);
    }
  }
}

const QUICK_INPUT = '.quick-input-widget';
const QUICK_INPUT_ROW = `${QUICK_INPUT} .monaco-list-row`;
const CENTER = '.notifications-center';
const CENTER_MESSAGE = `${CENTER} .notification-list-item-message`;
const BELL = '[id="status.notifications"]';

/**
 * Drives the VS Code workbench page with Playwright, as a user would: the command palette,
 * notifications, any DOM the checks need, screenshots. `page` is there for everything else.
 */
export class Workbench {
  constructor(readonly page: Page) {}

  /** Waits until the workbench has rendered its parts (about 10 s on 2 cores). */
  async waitUntilReady(timeoutMs = 90_000): Promise<void> {
    await this.page.locator('.monaco-workbench .part.statusbar').waitFor({ state: 'visible', timeout: timeoutMs });
    await this.page.locator('.monaco-workbench .part.activitybar, .monaco-workbench .part.sidebar').first().waitFor({ timeout: timeoutMs });
  }

  /**
   * Waits until the workbench has restored: the lifecycle's Restored phase and every workbench
   * contribution, as the smoke-test driver (enabled by the harness) reports it. Editors, views and
   * keybindings are not usable before.
   */
  async whenRestored(): Promise<void> {
    const page = this.page;
    await page.waitForFunction(() => typeof (globalThis as unknown as { driver?: unknown }).driver === 'object', undefined, { timeout: STEP_MS, polling: 250 });
    await page.evaluate(
      (ms) =>
        Promise.race([
          (globalThis as unknown as { driver: { whenWorkbenchRestored(): Promise<void> } }).driver.whenWorkbenchRestored(),
          new Promise((_, reject) => setTimeout(() => reject(new Error(`the workbench did not restore within ${ms / 1000} s`)), ms)),
        ]),
      STEP_MS,
    );
  }

  /** Opens a file of the workspace from Quick Open; returns once its tab is the active one. */
  async openFile(name: string): Promise<void> {
    const page = this.page;
    const tab = page.locator(`.tab.active:has-text("${name}")`);
    await retrying(
      `opening ${name} from Quick Open`,
      async () => {
        if ((await tab.count()) > 0) return;
        // Focus the workbench first: a key press before the page has focus goes nowhere.
        await page.locator('.monaco-workbench .part.editor').click({ position: { x: 20, y: 200 } });
        await page.keyboard.press('Control+P');
        const input = page.locator(`${QUICK_INPUT} input`);
        await input.waitFor({ state: 'visible', timeout: ATTEMPT_MS });
        await input.fill(name);
        // The file search may answer late under load; the row must name the file.
        await page.locator(`${QUICK_INPUT} .monaco-list-row`, { hasText: name }).first().waitFor({ timeout: ATTEMPT_MS * 2 });
        await page.keyboard.press('Enter');
        await tab.waitFor({ timeout: ATTEMPT_MS });
      },
      () => page.keyboard.press('Escape'),
    );
  }

  /**
   * Picks an entry of the context menu that is open. A click the menu drops (its list is laid out
   * again while the view under it updates live) is followed by the keyboard: the entry under the
   * pointer, then Enter, as a user would do.
   */
  async pickContextMenu(label: string): Promise<void> {
    const menu = this.page.locator('.context-view');
    const item = menu.locator('.action-label', { hasText: label }).first();
    await item.click({ timeout: ATTEMPT_MS });
    if (!(await menu.isVisible())) return;
    await this.page.waitForTimeout(300);
    if (!(await menu.isVisible())) return;
    await item.hover({ timeout: ATTEMPT_MS });
    await this.page.keyboard.press('Enter');
    await menu.waitFor({ state: 'hidden', timeout: ATTEMPT_MS });
  }

  async openCommandPalette(): Promise<void> {
    await this.page.locator('.monaco-workbench').click({ position: { x: 5, y: 5 }, trial: true }).catch(() => undefined);
    await this.page.keyboard.press('F1');
    await this.page.locator(`${QUICK_INPUT} input`).waitFor({ state: 'visible', timeout: 15_000 });
  }

  /**
   * Runs a command from the palette by its title as the palette shows it (`Category: Title`).
   * An extension's commands reach the palette some seconds after the window opens, so this
   * retries until an entry with exactly that label is offered.
   */
  async runCommand(title: string, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      await this.openCommandPalette();
      await this.page.locator(`${QUICK_INPUT} input`).fill(`>${title}`);
      const row = this.page.locator(QUICK_INPUT_ROW).filter({
        has: this.page.locator('.label-name').getByText(title, { exact: true }),
      });
      try {
        await row.first().waitFor({ state: 'visible', timeout: 2_000 });
        await row.first().click();
        await this.page.locator(QUICK_INPUT).waitFor({ state: 'hidden', timeout: 5_000 });
        return;
      } catch (error) {
        await this.page.keyboard.press('Escape');
        if (Date.now() > deadline) throw new Error(`the command palette offers no '${title}'`, { cause: error });
        await this.page.waitForTimeout(500);
      }
    }
  }

  /** The labels the palette offers for a query (the palette is closed again afterwards). */
  async paletteEntries(query: string): Promise<string[]> {
    await this.openCommandPalette();
    await this.page.locator(`${QUICK_INPUT} input`).fill(`>${query}`);
    await this.page.waitForTimeout(300);
    const labels = await this.texts(`${QUICK_INPUT_ROW} .label-name`);
    await this.page.keyboard.press('Escape');
    return labels;
  }

  /**
   * Messages of all current notifications, newest first. The test driver that the harness
   * enables turns toasts off, so they are read from the notification center, which is opened
   * for the purpose and closed again.
   */
  async notifications(): Promise<string[]> {
    // count() does not wait: the center's element exists only once it has been opened.
    const wasOpen = (await this.page.locator(`${CENTER}.visible`).count()) > 0;
    if (!wasOpen) {
      await this.page.locator(BELL).click();
      await this.page.locator(`${CENTER}.visible`).waitFor({ timeout: 5_000 });
    }
    const messages = await this.texts(CENTER_MESSAGE);
    if (!wasOpen) await this.page.locator(BELL).click();
    return messages;
  }

  /** Opens the notification center (for a screenshot that shows the notifications). */
  async openNotificationCenter(): Promise<void> {
    if ((await this.page.locator(`${CENTER}.visible`).count()) === 0) await this.page.locator(BELL).click();
    await this.page.locator(`${CENTER}.visible`).waitFor({ timeout: 5_000 });
  }

  /** Waits until a notification whose message contains `match` exists; returns its message. */
  async waitForNotification(match: string | RegExp, timeoutMs = 15_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    const hit = (m: string): boolean => (typeof match === 'string' ? m.includes(match) : match.test(m));
    for (;;) {
      const found = (await this.notifications()).find(hit);
      if (found !== undefined) return found;
      if (Date.now() > deadline) throw new Error(`no notification matching ${String(match)} within ${timeoutMs} ms`);
      await this.page.waitForTimeout(250);
    }
  }

  /** innerText of the first element matching a CSS selector, or undefined when there is none. */
  async text(selector: string): Promise<string | undefined> {
    const element = this.page.locator(selector).first();
    return (await element.count()) > 0 ? element.innerText() : undefined;
  }

  async texts(selector: string): Promise<string[]> {
    return this.page.locator(selector).allInnerTexts();
  }

  /** Saves a PNG of the page into test-results/ and returns its path. */
  async screenshot(name: string): Promise<string> {
    mkdirSync(RESULTS_DIR, { recursive: true });
    const file = join(RESULTS_DIR, `${name.replace(/[^\w.-]+/g, '-')}.png`);
    await this.page.screenshot({ path: file });
    return file;
  }
}

/**
 * Runs named checks in order, printing `ok - name (time)` or `not ok - name` with the error;
 * `onFailure` gets the running failure count (for a screenshot). Returns how many failed.
 */
export async function runChecks(checks: ReadonlyArray<[string, () => Promise<void>]>, onFailure?: (failed: number) => Promise<unknown>): Promise<number> {
  let failed = 0;
  for (const [name, check] of checks) {
    const t0 = Date.now();
    try {
      await check();
      console.log(`ok - ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    } catch (error) {
      failed++;
      console.log(`not ok - ${name}\n  ${error instanceof Error ? error.message : String(error)}`);
      await onFailure?.(failed).catch(() => undefined);
    }
  }
  return failed;
}
