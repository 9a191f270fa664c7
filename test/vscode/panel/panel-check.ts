// The trials panel inside a real VS Code (code-server + headless Chromium), driven like a user:
// run a study on the local executor from the CodeLens, open its charts from the Runs tree, look
// inside the webview (VS Code nests it in two iframes; the panel's page is the inner one) for a
// drawn loss chart that grows with the live study, then press Stop, and for a second study
// Cancel, in the panel, and see the engine end each study for that reason (in the panel's header
// and in the Runs tree). Screenshots go to test-results/.
//   node --import tsx test/vscode/panel/panel-check.ts
import assert from 'node:assert/strict';
import { copyFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Frame, Page } from 'playwright-core';
import { openSession } from '../harness/session';
import { makeWorkspace, removeWorkspace } from '../extension/workspace';

const ROOT = resolve(__dirname, '../../..');
const VIEW = '[id="workbench.view.extension.hyperoptRunner"]';
const ROWS = `${VIEW} .monaco-list-row`;

async function until<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last instanceof Error ? ` (last error: ${last.message.split('\n')[0]})` : ''}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function openFile(page: Page, name: string): Promise<void> {
  // Keys go to whatever has focus, which after a click in the panel is the webview's iframe:
  // a click on an editor tab gives it back to the workbench.
  const tab = page.locator('.tabs-container .tab:not(:has-text("Trials:"))');
  if ((await tab.count()) > 0) await tab.first().click();
  const input = page.locator('.quick-input-widget input');
  await until('the quick open box', async () => {
    await page.keyboard.press('Control+P');
    return input.isVisible();
  }, 15_000);
  await input.fill(name);
  // The box first lists recently opened files: wait for the one asked for.
  await page.locator('.quick-input-widget .monaco-list-row', { hasText: name }).first().click({ timeout: 15_000 });
  await page.locator(`.tab.active:has-text("${name}")`).waitFor({ timeout: 15_000 });
}

async function showRunsView(page: Page): Promise<void> {
  if ((await page.locator(VIEW).count()) > 0 && (await page.locator(VIEW).isVisible())) return;
  await page.locator('.activitybar [aria-label^="Hyperopt"]').first().click();
  await page.locator(VIEW).waitFor({ state: 'visible', timeout: 15_000 });
}

/** Runs the script's study on local:2 from the CodeLens over its fmin call. */
async function runStudy(page: Page, file: string): Promise<void> {
  await openFile(page, file);
  const lens = page.locator('.monaco-editor .codelens-decoration a', { hasText: 'Run with executor...' });
  await lens.first().waitFor({ timeout: 60_000 });
  await lens.first().click();
  const row = page.locator('.quick-input-widget .monaco-list-row', { hasText: 'local:2' });
  await row.first().waitFor({ timeout: 15_000 });
  await row.first().click();
}

/** The study's row in the Runs tree (its label starts with the script's name). */
async function studyRow(page: Page, file: string): Promise<string | undefined> {
  const texts = await page.locator(ROWS).allInnerTexts();
  return texts.find((t) => t.startsWith(`${file}:`));
}

/**
 * The panel's page: VS Code web puts a webview in an iframe (served by code-server under
 * /stable-.../static/out/vs/workbench/contrib/webview/browser/pre/) whose own iframe, `active-frame`,
 * holds the page the extension rendered. Found by what it contains, so the nesting may change.
 */
async function panelFrame(page: Page, file: string): Promise<Frame> {
  return until(
    `the panel's page for ${file} inside the webview iframes`,
    async () => {
      for (const frame of page.frames()) {
        if (frame === page.mainFrame()) continue;
        const found = await frame
          .evaluate((f) => document.title.startsWith(`Trials: ${f}:`) && document.querySelector('[data-chart="history"]') !== null, file)
          .catch(() => false);
        if (found) return frame;
      }
      return undefined;
    },
    60_000,
  );
}

/** What the loss chart shows: the points it says it drew, and the canvas pixels that are not blank. */
async function lossChart(frame: Frame): Promise<{ points: number; inked: number; width: number; height: number }> {
  return frame.evaluate(() => {
    const box = document.querySelector('[data-chart="history"]');
    const canvas = box?.querySelector('canvas');
    if (!box || !canvas) return { points: -1, inked: 0, width: 0, height: 0 };
    const ctx = canvas.getContext('2d');
    let inked = 0;
    if (ctx && canvas.width > 0 && canvas.height > 0) {
      const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
      for (let k = 3; k < data.length; k += 4) if ((data[k] as number) > 0) inked++;
    }
    return { points: Number(box.getAttribute('data-points') ?? -1), inked, width: canvas.width, height: canvas.height };
  });
}

async function headerState(frame: Frame): Promise<{ state: string | null; text: string }> {
  return frame.evaluate(() => {
    const el = document.querySelector('[data-testid="state"]');
    return { state: el?.getAttribute('data-state') ?? null, text: el?.textContent ?? '' };
  });
}

async function main(): Promise<void> {
  const started = Date.now();
  const workspace = makeWorkspace();
  for (const file of readdirSync(join(__dirname, 'workspace'))) copyFileSync(join(__dirname, 'workspace', file), join(workspace, file));
  const session = await openSession({ workspaceFolder: workspace, extensionPath: ROOT });
  const page = session.page;
  let stopFrame: Frame | undefined;

  const openCharts = async (file: string): Promise<Frame> => {
    await showRunsView(page);
    await until(`the ${file} study in the Runs tree`, () => studyRow(page, file));
    await page.locator(ROWS, { hasText: `${file}:` }).first().click({ button: 'right' });
    await page.locator('.context-view .action-label', { hasText: 'Open Charts' }).first().click();
    await page.locator('.tab', { hasText: `Trials: ${file}:` }).first().waitFor({ timeout: 30_000 });
    return panelFrame(page, file);
  };

  const checks: [string, () => Promise<void>][] = [
    [
      'the panel opened from the Runs tree for a running study draws its loss chart, which grows with the study',
      async () => {
        await runStudy(page, 'stop_study.py');
        await showRunsView(page);
        // A few trials first, so the chart has points to draw.
        await until('three finished trials', async () => {
          const texts = await page.locator(ROWS).allInnerTexts();
          return texts.filter((t) => /^trial \d+/.test(t) && /loss/.test(t)).length >= 3;
        });
        stopFrame = await openCharts('stop_study.py');
        const first = await until('points in the loss chart', async () => {
          const chart = await lossChart(stopFrame as Frame);
          return chart.points >= 3 ? chart : undefined;
        });
        assert.ok(first.inked > 1000, `the loss chart's canvas is nearly blank: ${JSON.stringify(first)}`);
        const later = await until('the loss chart to grow with the live study', async () => {
          const chart = await lossChart(stopFrame as Frame);
          return chart.points >= first.points + 3 ? chart : undefined;
        });
        const state = await headerState(stopFrame);
        assert.equal(state.state, 'running', JSON.stringify(state));
        console.log(`  loss chart: ${first.points} points, then ${later.points}; ${later.inked} of ${later.width}x${later.height} canvas pixels inked`);
        await session.workbench.screenshot('vscode-panel-running');
      },
    ],
    [
      'Stop in the panel reaches the engine: no new trials, the study ends as stopped',
      async () => {
        const frame = stopFrame;
        assert.ok(frame, 'no panel from the first check');
        await frame.locator('#stop').click();
        const ended = await until('the panel to show the study ended', async () => {
          const state = await headerState(frame);
          return state.state === 'ended' ? state : undefined;
        });
        assert.match(ended.text, /stopped/, JSON.stringify(ended));
        // Stopped long before its 2,000 evaluations.
        const counts = await frame.locator('[data-testid="counts"]').innerText();
        const total = /^(\d+) of 2000/.exec(counts);
        assert.ok(total && Number(total[1]) < 2000, counts);
        const row = await until('the Runs tree to show the study stopped', async () => {
          const text = await studyRow(page, 'stop_study.py');
          return text && /stopped/.test(text) ? text : undefined;
        });
        console.log(`  panel: ${counts}; tree: ${row.replace(/\s+/g, ' ')}`);
        await session.workbench.screenshot('vscode-panel-stopped');
      },
    ],
    [
      'Cancel in the panel reaches the engine: running trials are killed, the study ends as cancelled',
      async () => {
        await runStudy(page, 'cancel_study.py');
        await showRunsView(page);
        const frame = await openCharts('cancel_study.py');
        await until('a point in its loss chart', async () => ((await lossChart(frame)).points >= 1 ? true : undefined));
        await frame.locator('#cancel').click();
        const ended = await until('the panel to show the study ended', async () => {
          const state = await headerState(frame);
          return state.state === 'ended' ? state : undefined;
        });
        assert.match(ended.text, /cancelled/, JSON.stringify(ended));
        // The trials that were running are killed and recorded as cancelled.
        const counts = await until('the killed trials in the counts', async () => {
          const text = await frame.locator('[data-testid="counts"]').innerText();
          return /\d+ cancelled/.test(text) ? text : undefined;
        }, 15_000);
        const row = await until('the Runs tree to show the study cancelled', async () => {
          const text = await studyRow(page, 'cancel_study.py');
          return text && /cancelled/.test(text) ? text : undefined;
        });
        console.log(`  panel: ${counts}; tree: ${row.replace(/\s+/g, ' ')}`);
        await session.workbench.screenshot('vscode-panel-cancelled');
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
        await session.workbench.screenshot(`vscode-panel-failed-${failed}`).catch(() => undefined);
      }
    }
  } finally {
    await session.close();
    await removeWorkspace(workspace);
  }
  console.log(`${checks.length - failed} passed, ${failed} failed`);
  console.error(`panel check took ${((Date.now() - started) / 1000).toFixed(1)} s`);
  process.exitCode = failed > 0 ? 1 : 0;
}

if (resolve(process.argv[1] ?? '') === __filename) void main();
export { main as runPanelCheck };
