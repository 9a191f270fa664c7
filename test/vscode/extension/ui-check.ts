// Drives the workbench like a user with the extension loaded: click the CodeLens, pick the local
// executor, watch the Runs tree fill, reload the window mid-study and see it re-attach and the
// study complete, then save a screenshot with the Runs view open (test-results/).
//   node --import tsx test/vscode/extension/ui-check.ts
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import type { Page } from 'playwright-core';
import { openSession } from '../harness/session';
import { makeWorkspace, removeWorkspace } from './workspace';

const ROOT = resolve(__dirname, '../../..');
const VIEW = '[id="workbench.view.extension.hyperoptRunner"]';
const ROWS = `${VIEW} .monaco-list-row`;

async function openFile(page: Page, name: string): Promise<void> {
  await page.keyboard.press('Control+P');
  const input = page.locator('.quick-input-widget input');
  await input.waitFor({ state: 'visible', timeout: 15_000 });
  await input.fill(name);
  await page.locator('.quick-input-widget .monaco-list-row').first().waitFor({ timeout: 15_000 });
  await page.keyboard.press('Enter');
  await page.locator(`.tab.active:has-text("${name}")`).waitFor({ timeout: 15_000 });
}

async function showRunsView(page: Page): Promise<void> {
  if ((await page.locator(`${VIEW}`).count()) > 0 && (await page.locator(VIEW).isVisible())) return;
  await page.locator('.activitybar [aria-label^="Hyperopt"]').first().click();
  await page.locator(VIEW).waitFor({ state: 'visible', timeout: 15_000 });
}

async function rowTexts(page: Page): Promise<string[]> {
  return page.locator(ROWS).allInnerTexts();
}

async function until<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function main(): Promise<void> {
  const started = Date.now();
  const workspace = makeWorkspace();
  const session = await openSession({ workspaceFolder: workspace, extensionPath: ROOT });
  const page = session.page;
  const checks: [string, () => Promise<void>][] = [
    [
      'the CodeLens over fmin runs the study on the picked executor',
      async () => {
        await openFile(page, 'slow_study.py');
        const lens = page.locator('.monaco-editor .codelens-decoration a', { hasText: 'Run with executor...' });
        await lens.first().waitFor({ timeout: 60_000 });
        await lens.first().click();
        const row = page.locator('.quick-input-widget .monaco-list-row', { hasText: 'local:2' });
        await row.first().waitFor({ timeout: 15_000 });
        await row.first().click();
        // The lens turns into the running study's controls.
        await page.locator('.monaco-editor .codelens-decoration a', { hasText: 'Cancel' }).first().waitFor({ timeout: 60_000 });
      },
    ],
    [
      'the Runs tree fills with the study and its trials',
      async () => {
        await showRunsView(page);
        await until('the study row', async () => (await rowTexts(page)).some((t) => t.includes('slow_study.py:12')));
        const rows = await until('three trial rows', async () => {
          const texts = await rowTexts(page);
          return texts.filter((t) => /^trial \d+/.test(t)).length >= 3 ? texts : undefined;
        });
        assert.ok(rows.some((t) => /loss [\d.e-]+/.test(t)), rows.join(' | '));
      },
    ],
    [
      'after a window reload mid-study the window re-attaches and the study completes',
      async () => {
        const status = page.locator('.part.statusbar .statusbar-item', { hasText: /\d+\/40/ });
        const before = await until('the status bar item', async () => ((await status.count()) > 0 ? status.first().innerText() : undefined));
        assert.match(before, /\d+\/40/);
        await page.reload({ waitUntil: 'domcontentloaded' });
        await session.workbench.waitUntilReady();
        // The status bar item comes only from the live study the service reports.
        const after = await until('the status bar after the reload', async () => ((await status.count()) > 0 ? status.first().innerText() : undefined), 60_000);
        assert.match(after, /\d+\/40/);
        console.log(`  status bar before the reload: ${before.trim()}; after: ${after.trim()}`);
        await showRunsView(page);
        await until('the study to complete', async () => (await rowTexts(page)).some((t) => t.includes('slow_study.py:12') && t.includes('40/40') && t.includes('max_evals')), 90_000);
        // The CodeLens over the call offers to run it again.
        await page.locator('.monaco-editor .codelens-decoration a', { hasText: 'Run with executor...' }).first().waitFor({ timeout: 15_000 });
      },
    ],
    [
      'Open Charts from the tree opens a trials panel for the study',
      async () => {
        await page.locator(ROWS, { hasText: 'slow_study.py:12' }).first().click({ button: 'right' });
        await page.locator('.context-view .action-label', { hasText: 'Open Charts' }).first().click();
        await page.locator('.tab', { hasText: 'Trials: slow_study.py:12' }).first().waitFor({ timeout: 30_000 });
        // What the panel draws is checked by the webview's own tests; here: it opens for the study.
        await session.workbench.screenshot('vscode-extension-trials-panel');
      },
    ],
  ];
  let failed = 0;
  try {
    await session.workbench.waitUntilReady();
    console.log(`workbench ready after ${((Date.now() - started) / 1000).toFixed(1)} s`);
    for (const [name, check] of checks) {
      const t0 = Date.now();
      try {
        await check();
        console.log(`ok - ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
      } catch (error) {
        failed++;
        console.log(`not ok - ${name}\n  ${error instanceof Error ? error.message : String(error)}`);
        await session.workbench.screenshot(`vscode-extension-ui-failed-${failed}`).catch(() => undefined);
      }
    }
    await showRunsView(page).catch(() => undefined);
    console.log(`screenshot: ${await session.workbench.screenshot('vscode-extension-runs-view')}`);
  } finally {
    await session.close();
    await removeWorkspace(workspace);
  }
  console.log(`${checks.length - failed} passed, ${failed} failed`);
  console.error(`ui check took ${((Date.now() - started) / 1000).toFixed(1)} s`);
  process.exitCode = failed > 0 ? 1 : 0;
}

if (resolve(process.argv[1] ?? '') === __filename) void main();
export { main as runUiCheck };
