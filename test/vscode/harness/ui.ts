import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { REPO_ROOT } from './tools';

/** Where screenshots go (git-ignored). */
export const RESULTS_DIR = join(REPO_ROOT, 'test-results');

const QUICK_INPUT = '.quick-input-widget';
const QUICK_INPUT_ROW = `${QUICK_INPUT} .monaco-list-row`;
const TOAST_MESSAGE = '.notifications-toasts .notification-list-item-message';

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

  async openCommandPalette(): Promise<void> {
    await this.page.locator('.monaco-workbench').click({ position: { x: 5, y: 5 }, trial: true }).catch(() => undefined);
    await this.page.keyboard.press('F1');
    await this.page.locator(`${QUICK_INPUT} input`).waitFor({ state: 'visible', timeout: 15_000 });
  }

  /**
   * Runs a command from the palette by its title as the palette shows it (`Category: Title`).
   * Fails when no entry with exactly that label shows up.
   */
  async runCommand(title: string, timeoutMs = 15_000): Promise<void> {
    await this.openCommandPalette();
    const input = this.page.locator(`${QUICK_INPUT} input`);
    await input.fill(`>${title}`);
    const row = this.page.locator(QUICK_INPUT_ROW).filter({ has: this.page.locator('.label-name', { hasText: title }) });
    await row.first().waitFor({ state: 'visible', timeout: timeoutMs });
    await row.first().click();
    await this.page.locator(QUICK_INPUT).waitFor({ state: 'hidden', timeout: timeoutMs });
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

  /** Texts of the notification toasts on screen. */
  async notifications(): Promise<string[]> {
    return this.texts(TOAST_MESSAGE);
  }

  async waitForNotification(match: string | RegExp, timeoutMs = 15_000): Promise<string> {
    const toast = this.page.locator(TOAST_MESSAGE, { hasText: match }).first();
    await toast.waitFor({ state: 'visible', timeout: timeoutMs });
    return toast.innerText();
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
