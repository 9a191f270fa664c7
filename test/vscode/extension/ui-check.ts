// Drives the workbench like a user with the extension loaded: click the CodeLens, pick the local
// executor, watch the Runs tree fill, open the study's charts with a click on its row, reload the
// window mid-study and see it re-attach (the panel still open, the study's row still expanded)
// and the study complete, run a script with a syntax error; screenshots of each go to
// test-results/.
//   node --import tsx test/vscode/extension/ui-check.ts
import assert from 'node:assert/strict';
import { statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Page } from 'playwright-core';
import { openSession } from '../harness/session';
import { ATTEMPT_MS, retrying, runChecks, STEP_MS } from '../harness/ui';
import { makeWorkspace, removeWorkspace } from './workspace';

const ROOT = resolve(__dirname, '../../..');
const VIEW = '[id="workbench.view.extension.hyperoptRunner"]';
const ROWS = `${VIEW} .monaco-list-row`;
const QUICK_INPUT = '.quick-input-widget';

async function showRunsView(page: Page): Promise<void> {
  if ((await page.locator(VIEW).count()) > 0 && (await page.locator(VIEW).isVisible())) return;
  await page.locator('.activitybar [aria-label^="Hyperopt"]').first().click({ timeout: STEP_MS });
  await page.locator(VIEW).waitFor({ state: 'visible', timeout: STEP_MS });
}

async function rowTexts(page: Page): Promise<string[]> {
  return page.locator(ROWS).allInnerTexts();
}

async function until<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = STEP_MS): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    const value = await probe().catch((error: unknown) => {
      lastError = error;
      return undefined;
    });
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}${lastError ? ` (last error: ${String(lastError).split('\n')[0]})` : ''}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** `done/total` of the study's status bar item, or undefined while there is none. */
async function statusCounts(page: Page): Promise<{ text: string; done: number; total: number } | undefined> {
  const item = page.locator('.part.statusbar .statusbar-item', { hasText: /\d+\/40/ });
  if ((await item.count()) === 0) return undefined;
  const text = (await item.first().innerText()).trim();
  const match = /(\d+)\/(\d+)/.exec(text);
  return match ? { text, done: Number(match[1]), total: Number(match[2]) } : undefined;
}

async function main(): Promise<void> {
  const started = Date.now();
  // Untracked: a tracked run of this check does not yet re-attach reliably after the reload.
  const workspace = makeWorkspace({ 'hyperoptRunner.tracking': false });
  const session = await openSession({ workspaceFolder: workspace, extensionPath: ROOT });
  const page = session.page;
  const lens = (title: string) => page.locator('.monaco-editor .codelens-decoration a', { hasText: title }).first();
  const studyRow = (): Promise<string | undefined> => rowTexts(page).then((texts) => texts.find((t) => t.includes('slow_study.py:28')));
  const checks: [string, () => Promise<void>][] = [
    [
      'the CodeLens over fmin runs the study on the picked executor',
      async () => {
        await session.workbench.openFile('slow_study.py');
        await lens('Run with executor...').waitFor({ timeout: STEP_MS });
        const row = page.locator(`${QUICK_INPUT} .monaco-list-row`, { hasText: 'local:2' }).first();
        await retrying(
          'picking local:2 from the CodeLens',
          async () => {
            await lens('Run with executor...').click({ timeout: ATTEMPT_MS });
            await row.waitFor({ timeout: ATTEMPT_MS });
            await row.click({ timeout: ATTEMPT_MS });
          },
          () => page.keyboard.press('Escape'),
        );
        // The lens turns into the running study's controls.
        await lens('Cancel').waitFor({ timeout: STEP_MS });
      },
    ],
    [
      'the Runs tree fills with the study and its trials',
      async () => {
        await showRunsView(page);
        await until('the study row', studyRow);
        const rows = await until('three trial rows with their losses', async () => {
          const texts = await rowTexts(page);
          return texts.filter((t) => /^trial \d+/.test(t) && /loss [\d.e-]+/.test(t)).length >= 3 ? texts : undefined;
        });
        assert.ok(rows.some((t) => /loss [\d.e-]+/.test(t)), rows.join(' | '));
        await session.workbench.screenshot('vscode-extension-runs-tree-running');
      },
    ],
    [
      "a click on the running study's row opens its charts",
      async () => {
        // The rows below the study's move as trials come in: a click can land on a trial row.
        await retrying('a click on the study row', async () => {
          await page.locator(ROWS, { hasText: 'slow_study.py:28' }).first().click({ timeout: ATTEMPT_MS });
          await page.locator('.tab', { hasText: 'Trials: slow_study.py:28' }).first().waitFor({ timeout: ATTEMPT_MS });
        }, () => Promise.resolve());
      },
    ],
    [
      'after a window reload mid-study the window re-attaches and the study completes',
      async () => {
        // slow_study.py holds its trials after the sixth until slow_study.release exists: the
        // study cannot end while the window reloads, however slow the reload is.
        const before = await until('the status bar item', () => statusCounts(page));
        assert.ok(before.done < before.total, `the study is still running before the reload: ${before.text}`);
        await page.reload({ waitUntil: 'domcontentloaded', timeout: STEP_MS });
        await session.workbench.whenRestored();
        // The status bar item comes only from the live study the service reports.
        const after = await until('the status bar item after the reload', () => statusCounts(page));
        console.log(`  status bar before the reload: ${before.text}; after: ${after.text}`);
        assert.equal(after.total, 40);
        assert.ok(after.done >= before.done && after.done < after.total, `re-attached mid-study: ${before.text} -> ${after.text}`);
        await showRunsView(page);
        const running = await until('the study row, running', async () => {
          const row = await studyRow();
          return row && !row.includes('max_evals') ? row : undefined;
        });
        assert.match(running, /\d+\/40/);
        // The live study's panel came back with the window, and its row is still expanded.
        await page.locator('.tab', { hasText: 'Trials: slow_study.py:28' }).first().waitFor({ timeout: STEP_MS });
        await until('trial rows under the study without a click', async () => ((await rowTexts(page)).filter((t) => /^trial \d+/.test(t)).length >= 3 ? true : undefined));
        writeFileSync(join(workspace, 'slow_study.release'), '');
        // Progress after re-attach reaches the window as it happens...
        const later = await until('progress after the release', async () => {
          const now = await statusCounts(page);
          if (now && now.done > after.done) return now.text;
          const row = await studyRow();
          return row?.includes('40/40') ? row.replace(/\s+/g, ' ') : undefined;
        });
        console.log(`  after the release: ${later}`);
        // ...and the study completes: done/total reaches total.
        const done = await until('the study to complete', async () => {
          const row = await studyRow();
          return row?.includes('40/40') && row.includes('max_evals') ? row : undefined;
        }, 180_000);
        console.log(`  ${done.replace(/\s+/g, ' ')}`);
        await until('the status bar item to go', async () => (await statusCounts(page)) === undefined);
        const outcome = await session.workbench.waitForNotification(/^slow_study\.py:28: best [-\d.e]+ after 40 trials/, 30_000);
        console.log(`  notification: ${outcome}`);
        await showRunsView(page);
        await session.workbench.openNotificationCenter();
        await session.workbench.screenshot('vscode-extension-study-ended');
        await page.keyboard.press('Escape');
        // The CodeLens over the call offers to run it again.
        await page.locator('.tab', { hasText: 'slow_study.py' }).filter({ hasNotText: 'Trials' }).first().click({ timeout: STEP_MS });
        await lens('Run with executor...').waitFor({ timeout: STEP_MS });
      },
    ],
    [
      'Open Charts from the tree opens a trials panel for the study',
      async () => {
        await retrying(
          'Open Charts from the context menu',
          async () => {
            await page.locator(ROWS, { hasText: 'slow_study.py:28' }).first().click({ button: 'right', timeout: ATTEMPT_MS });
            await session.workbench.pickContextMenu('Open Charts');
          },
          () => page.keyboard.press('Escape'),
        );
        await page.locator('.tab', { hasText: 'Trials: slow_study.py:28' }).first().waitFor({ timeout: STEP_MS });
        // What the panel draws is checked by the webview's own tests; here: it opens for the study.
        await session.workbench.screenshot('vscode-extension-trials-panel');
      },
    ],
    [
      'a screenshot of the workbench with the Runs view open is saved',
      async () => {
        await showRunsView(page);
        await until('the study row in the Runs view', studyRow);
        const file = await session.workbench.screenshot('vscode-extension-runs-view');
        assert.ok(statSync(file).size > 10_000, `${file} holds a picture`);
        console.log(`  screenshot: ${file}`);
      },
    ],
    [
      'a script with a syntax error: the notification names its file, line and error, the Problems view lists it',
      async () => {
        writeFileSync(join(workspace, 'broken_study.py'), 'from hyperopt import fmin, hp\n\nbest = fmin(lambda x: x, hp.uniform("x", 0, 1), max_evals=(3\n');
        // The keyboard goes to the workbench, not to a trials panel's frame that has the focus.
        await page.locator('.tab', { hasText: 'slow_study.py' }).filter({ hasNotText: 'Trials' }).first().click({ timeout: STEP_MS });
        await session.workbench.openFile('broken_study.py');
        await session.workbench.runCommand('Hyperopt: Run Tuning Script');
        const message = await session.workbench.waitForNotification(/^broken_study\.py:3: SyntaxError/, 60_000);
        console.log(`  notification: ${message}`);
        await session.workbench.runCommand('View: Focus Problems (Errors, Warnings, Infos)', 10_000).catch(() => session.workbench.runCommand('View: Toggle Problems (Errors, Warnings, Infos)'));
        const problem = page.locator('.markers-panel .monaco-list-row', { hasText: 'SyntaxError' }).first();
        await problem.waitFor({ timeout: STEP_MS });
        await session.workbench.openNotificationCenter();
        await session.workbench.screenshot('vscode-extension-syntax-error');
        await page.keyboard.press('Escape');
      },
    ],
  ];
  let failed = 0;
  try {
    await session.workbench.waitUntilReady(STEP_MS);
    await session.workbench.whenRestored();
    console.log(`workbench restored after ${((Date.now() - started) / 1000).toFixed(1)} s`);
    failed += await runChecks(checks, (n) => session.workbench.screenshot(`vscode-extension-ui-failed-${n}`));
  } finally {
    await session.close();
    // The service, its scripts and workers must not outlive the window and the workspace.
    try {
      await removeWorkspace(workspace);
      console.log('ok - no process of the workspace is left');
    } catch (error) {
      failed++;
      console.log(`not ok - no process of the workspace is left\n  ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  console.log(`${checks.length + 1 - failed} passed, ${failed} failed`);
  console.error(`ui check took ${((Date.now() - started) / 1000).toFixed(1)} s`);
  process.exitCode = failed > 0 ? 1 : 0;
}

if (resolve(process.argv[1] ?? '') === __filename) void main();
export { main as runUiCheck };
