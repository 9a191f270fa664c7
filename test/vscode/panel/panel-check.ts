// The trials panel inside a real VS Code (code-server + headless Chromium), driven like a user:
// run a study on the local executor from the CodeLens, open its charts from the Runs tree, look
// inside the webview (VS Code nests it in two iframes; the panel's page is the inner one) for a
// drawn loss chart that grows with the live study, then press Stop, and for a second study
// Cancel, in the panel, and see the engine end each study for that reason (in the panel's header
// and in the Runs tree); once each study has ended, the panel's header counts, chart marks and
// table rows, the Runs tree and the study's journal agree. Screenshots go to test-results/.
//   node --import tsx test/vscode/panel/panel-check.ts
import assert from 'node:assert/strict';
import { copyFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Frame, Page } from 'playwright-core';
import { countTrials, listStudies } from '../../../core/src/journal/journal';
import { openSession } from '../harness/session';
import { runChecks } from '../harness/ui';
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

/** The importances view: how many bars it drew and the line under them. */
async function importancesShown(frame: Frame): Promise<{ bars: number; note: string }> {
  return frame.evaluate(() => {
    const list = document.querySelector('[data-chart="importances"]');
    const panel = document.querySelector('#importances');
    return { bars: Number(list?.getAttribute('data-bars') ?? 0), note: panel?.textContent ?? '' };
  });
}

async function headerState(frame: Frame): Promise<{ state: string | null; text: string }> {
  return frame.evaluate(() => {
    const el = document.querySelector('[data-testid="state"]');
    return { state: el?.getAttribute('data-state') ?? null, text: el?.textContent ?? '' };
  });
}

/** What the panel shows of a study's trials: the header's counts, the loss chart's marks, the table's rows. */
interface PanelCounts {
  header: { total: number; ok: number; failed: number; cancelled: number; running: number; queued: number };
  chart: { ok: number; failed: number; cancelled: number };
  tableRows: number;
  text: string;
}

async function panelCounts(frame: Frame): Promise<PanelCounts> {
  return frame.evaluate(() => {
    // No named functions in here: the page has no `__name` helper for them.
    const text = document.querySelector('[data-testid="counts"]')?.textContent ?? '';
    const [ok, failed, cancelled, running, queued] = ['ok', 'failed', 'cancelled', 'running', 'queued'].map((word) => Number(new RegExp(`(\\d+) ${word}`).exec(text)?.[1] ?? 0));
    const chart = document.querySelector('[data-chart="history"]');
    const [points, chartFailed, chartCancelled] = ['points', 'failed', 'cancelled'].map((name) => Number(chart?.getAttribute(`data-${name}`) ?? -1));
    return {
      header: { total: Number(/^(\d+)/.exec(text)?.[1] ?? -1), ok: ok as number, failed: failed as number, cancelled: cancelled as number, running: running as number, queued: queued as number },
      chart: { ok: points as number, failed: chartFailed as number, cancelled: chartCancelled as number },
      tableRows: Number(document.querySelector('vscode-table')?.getAttribute('data-rows') ?? -1),
      text,
    };
  });
}

/**
 * After a study has ended, the panel's header, loss chart and table, the Runs tree and the
 * study's journal (what the engine recorded) must come to the same trial counts. Waits for them
 * to agree (the panel batches updates, its views redraw a few times a second), then asserts.
 */
async function checkConverged(page: Page, frame: Frame, workspace: string, file: string): Promise<string> {
  const read = async () => {
    const { studies } = listStudies(join(workspace, '.hyperopt-runner', 'journal'));
    const record = studies.filter((s) => s.info.script.endsWith(file) && s.state === 'ended').pop();
    const engine = record ? countTrials(record.trials.values()) : undefined;
    // The row's description starts with finished/max_evals (its label, file:line, is a separate element).
    const description = await page.locator(ROWS, { hasText: `${file}:` }).first().locator('.label-description').innerText().catch(() => '');
    const tree = Number(/^(\d+)\/\d+/.exec(description.trim())?.[1] ?? -1);
    return { engine, tree, panel: await panelCounts(frame) };
  };
  let last: Awaited<ReturnType<typeof read>> | undefined;
  const agree = (r: Awaited<ReturnType<typeof read>>): boolean => {
    const { engine, tree, panel } = r;
    if (!engine) return false;
    const finished = engine.ok + engine.failed + engine.cancelled;
    return (
      finished === engine.total &&
      tree === finished &&
      panel.header.total === engine.total &&
      panel.header.ok === engine.ok &&
      panel.header.failed === engine.failed &&
      panel.header.cancelled === engine.cancelled &&
      panel.header.running === 0 &&
      panel.header.queued === 0 &&
      panel.chart.ok === engine.ok &&
      panel.chart.failed === engine.failed &&
      panel.chart.cancelled === engine.cancelled &&
      panel.tableRows === engine.total
    );
  };
  try {
    await until(`the panel, the Runs tree and the journal to agree on ${file}'s trials`, async () => {
      last = await read();
      return agree(last);
    }, 30_000);
  } catch {
    assert.fail(`after ${file}'s study ended, the panel, the Runs tree and the engine disagree: ${JSON.stringify(last)}`);
  }
  const { engine, panel } = last as Awaited<ReturnType<typeof read>>;
  return `${panel.text} = chart ${panel.chart.ok}/${panel.chart.failed}/${panel.chart.cancelled} = ${panel.tableRows} table rows = journal ${engine?.total}`;
}

async function main(): Promise<void> {
  const started = Date.now();
  // Untracked: with tracking on, the first study's trials do not reach three within the check's wait.
  const workspace = makeWorkspace({ 'hyperoptRunner.tracking': false });
  for (const file of readdirSync(join(__dirname, 'workspace'))) copyFileSync(join(__dirname, 'workspace', file), join(workspace, file));
  const session = await openSession({ workspaceFolder: workspace, extensionPath: ROOT });
  const page = session.page;
  let stopFrame: Frame | undefined;

  const openCharts = async (file: string): Promise<Frame> => {
    await showRunsView(page);
    await until(`the ${file} study in the Runs tree`, () => studyRow(page, file));
    await page.locator(ROWS, { hasText: `${file}:` }).first().click({ button: 'right' });
    await session.workbench.pickContextMenu('Open Charts');
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
        const agreed = await checkConverged(page, frame, workspace, 'stop_study.py');
        // Importances are computed on the extension's analysis thread from the finished trials.
        const shown = await until('hyperparameter importances drawn', async () => {
          const found = await importancesShown(frame);
          return found.bars >= 1 && /(?:of|over) \d+ trials/.test(found.note) ? found : undefined;
        }, 30_000);
        assert.ok(Number(/(?:of|over) (\d+) trials/.exec(shown.note)?.[1]) >= 10, shown.note);
        console.log(`  panel: ${counts}; tree: ${row.replace(/\s+/g, ' ')}; after the end: ${agreed}; importances: ${shown.bars} bar(s), ${shown.note.replace(/\s+/g, ' ')}`);
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
        const agreed = await checkConverged(page, frame, workspace, 'cancel_study.py');
        console.log(`  panel: ${counts}; tree: ${row.replace(/\s+/g, ' ')}; after the end: ${agreed}`);
        await session.workbench.screenshot('vscode-panel-cancelled');
      },
    ],
  ];
  let failed = 0;
  try {
    await session.workbench.waitUntilReady();
    console.log(`workbench ready after ${((Date.now() - started) / 1000).toFixed(1)} s`);
    failed += await runChecks(checks, (n) => session.workbench.screenshot(`vscode-panel-failed-${n}`));
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
