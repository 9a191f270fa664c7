// The trials panel in headless Chromium, with a fake host (see harness/panel.ts: it stands in for
// VS Code's webview host, whose real side is tested in the editor suite): the charts draw what
// the study holds, follow live updates, and share one selection.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { computeImportances } from '../../core/src/analysis/importance';
import { formatDuration } from '../../core/src/analysis/shape';
import type { InitMessage, TrialRow } from '../../core/src/protocol/webview';
import { Harness, type Panel } from './harness/panel';
import { STUDY_START, TrialSource, expected, makeStudy, rowsOf, trialsMessage } from './fixtures/study';

let harness: Harness;
before(async () => {
  harness = await Harness.start();
});
after(async () => {
  await harness?.close();
});

async function attr(panel: Panel, selector: string, name: string): Promise<string | null> {
  return panel.page.locator(selector).first().getAttribute(name);
}

async function waitAttr(panel: Panel, selector: string, name: string, value: string | number): Promise<void> {
  await panel.page.waitForSelector(`${selector}[${name}="${value}"]`, { timeout: 10_000 });
}

function importancesFor(init: InitMessage): unknown {
  const r = computeImportances({
    space: init.study.space,
    trials: rowsOf(init).filter((t) => t.state === 'done' && typeof t.loss === 'number').map((t) => ({ params: t.params, loss: t.loss as number })),
  });
  return { type: 'importances', method: r.method, trials: r.trials, items: r.items, note: r.note };
}

describe('charts', () => {
  const init = makeStudy();
  const rows = rowsOf(init);
  const want = expected(init);
  let panel: Panel;
  before(async () => {
    panel = await harness.open({ init });
  });
  after(async () => {
    await panel?.close();
  });

  test('the fixture has what the tests need', () => {
    assert.equal(rows.length, 200);
    assert.ok(want.failed >= 10 && want.cancelled >= 8 && want.running === 3 && want.queued === 2, JSON.stringify(want));
  });

  test('loss per trial: one point per trial with a loss, failed and cancelled marked apart', async () => {
    assert.equal(await attr(panel, '[data-chart="history"]', 'data-points'), String(want.ok));
    assert.equal(await attr(panel, '[data-chart="history"]', 'data-failed'), String(want.failed));
    assert.equal(await attr(panel, '[data-chart="history"]', 'data-cancelled'), String(want.cancelled));
    assert.equal(await panel.page.locator('[data-chart="history"] canvas').count(), 1);
  });

  test('one chart per hyperparameter, with a log axis for the loguniform and categories for the choice', async () => {
    const slices = panel.page.locator('[data-chart="slice"]');
    assert.equal(await slices.count(), 4);
    const seen: Record<string, [string | null, string | null]> = {};
    for (const el of await slices.all()) seen[(await el.getAttribute('data-param')) ?? ''] = [await el.getAttribute('data-points'), await el.getAttribute('data-scale')];
    assert.deepEqual(seen, {
      x: [String(want.ok), 'linear'],
      lr: [String(want.ok), 'log'],
      optimizer: [String(want.ok), 'categorical'],
      layers: [String(want.ok), 'linear'],
    });
    assert.equal(await attr(panel, '[data-param="optimizer"]', 'data-categories'), 'adam,sgd,rmsprop');
  });

  test('parallel coordinates: one line per trial with a loss across the four parameters and the loss', async () => {
    assert.equal(await attr(panel, '[data-chart="parcoords"]', 'data-lines'), String(want.ok));
    assert.equal(await attr(panel, '[data-chart="parcoords"]', 'data-axes'), '5');
  });

  test('timeline: a bar per started trial, a lane per slot', async () => {
    assert.equal(await attr(panel, '[data-chart="timeline"]', 'data-bars'), String(want.started));
    assert.equal(await attr(panel, '[data-chart="timeline"]', 'data-lanes'), String(want.lanes));
  });

  test('importances: a bar per parameter, most important first', async () => {
    const message = importancesFor(init) as { items: Array<{ param: string }> };
    await panel.host.send(message);
    await waitAttr(panel, '[data-chart="importances"]', 'data-bars', 4);
    const order = await panel.page.locator('[data-chart="importances"] li').evaluateAll((els) => els.map((e) => e.getAttribute('data-param')));
    assert.deepEqual(order, message.items.map((i) => i.param));
  });

  test('the header shows state, counts, best loss with its parameters, elapsed and time left', async () => {
    const text = (id: string): Promise<string> => panel.page.locator(`[data-testid="${id}"]`).innerText();
    assert.equal(await text('state'), 'Running');
    assert.match(await text('counts'), new RegExp(`^200 of 250 · ${want.ok} ok · ${want.failed} failed · ${want.cancelled} cancelled · 3 running · 2 queued$`));
    const best = init.status.best;
    assert.ok(best);
    assert.match(await text('best'), new RegExp(`\\(trial ${best.tid}\\)`));
    assert.match(await text('argmin'), /^argmin: x=[\d.]+, lr=[\de.-]+, optimizer=(adam|sgd|rmsprop), layers=\d$/);
    assert.match(await text('elapsed'), /\d/);
    assert.match(await text('time-left'), /min/);
  });

  test('a trials batch updates every chart at once', async () => {
    const source = new TrialSource(99, init.status.startedAt);
    source.tid = 200;
    const fresh: TrialRow[] = [];
    while (fresh.length < 10) {
      const t = source.next();
      if (t.state === 'done') fresh.push(t);
    }
    // One of the running trials finishes too.
    const running = rows.find((t) => t.state === 'running');
    assert.ok(running);
    const finished: TrialRow = { ...running, state: 'done', status: 'ok', loss: 0.5, endedAt: (running.startedAt ?? 0) + 1000 };
    await panel.host.send(trialsMessage([...fresh, finished]));
    const ok = want.ok + 11;
    await waitAttr(panel, '[data-chart="history"]', 'data-points', ok);
    await waitAttr(panel, '[data-chart="parcoords"]', 'data-lines', ok);
    await waitAttr(panel, '[data-chart="timeline"]', 'data-bars', want.started + 10);
    for (const el of await panel.page.locator('[data-chart="slice"]').all()) assert.equal(await el.getAttribute('data-points'), String(ok));
    await waitAttr(panel, 'body', 'data-trials', 210);
  });
});

describe('selection', () => {
  const init = makeStudy({ seed: 3 });
  const rows = rowsOf(init);
  let panel: Panel;
  before(async () => {
    panel = await harness.open({ init });
  });
  after(async () => {
    await panel?.close();
  });

  const charts = ['[data-chart="history"]', '[data-chart="parcoords"]', '[data-chart="timeline"]'];

  async function highlighted(tid: number | null): Promise<void> {
    const value = tid === null ? null : String(tid);
    for (const c of charts) await panel.page.waitForFunction(([sel, v]) => document.querySelector(sel as string)?.getAttribute('data-selected-tid') === v, [c, value]);
    for (const el of await panel.page.locator('[data-chart="slice"]').all()) assert.equal(await el.getAttribute('data-selected-tid'), value);
  }

  test('clicking a table row selects the trial in every chart and tells the host', async () => {
    const tid = rows.find((t) => t.state === 'done' && t.tid > 5)?.tid as number;
    const before = panel.host.messages('selectTrial').length;
    await panel.page.click(`vscode-table-row[data-tid="${tid}"]`);
    const sent = await panel.host.next('selectTrial', before);
    assert.deepEqual(sent, { type: 'selectTrial', tid });
    await highlighted(tid);
    assert.equal(await panel.page.locator(`vscode-table-row[data-tid="${tid}"]`).getAttribute('aria-selected'), 'true');
    assert.match(await panel.page.locator('[data-testid="selection-summary"]').innerText(), new RegExp(`^Trial ${tid} · ok · loss`));
    assert.equal(await panel.page.locator('[data-chart="history"] .select-marker').isVisible(), true);
  });

  test('"Open logs" and "Open MLflow run" ask the host for the selected trial', async () => {
    const tid = Number(await panel.page.locator('.selection').getAttribute('data-tid'));
    await panel.page.click('#open-logs');
    assert.deepEqual(await panel.host.next('openLogs', 0), { type: 'openLogs', tid });
    await panel.page.click('#open-run');
    assert.deepEqual(await panel.host.next('openRun', 0), { type: 'openRun', tid });
  });

  test('a failed trial is selectable too: its mark is ringed, and its error shown', async () => {
    const failed = rows.find((t) => t.state === 'error') as TrialRow;
    await panel.host.send({ type: 'select', tid: failed.tid });
    await panel.page.waitForFunction((t) => document.querySelector('.selection')?.getAttribute('data-tid') === String(t), failed.tid);
    assert.match(await panel.page.locator('.selection').innerText(), /ValueError: diverged/);
    assert.equal(await panel.page.locator('[data-chart="history"]').getAttribute('data-selected-tid'), String(failed.tid));
    // No loss: not in the slices or the parallel coordinates, but on the timeline.
    await panel.page.waitForFunction((t) => document.querySelector('[data-chart="timeline"]')?.getAttribute('data-selected-tid') === String(t), failed.tid);
    assert.equal(await panel.page.locator('[data-chart="parcoords"]').getAttribute('data-selected-tid'), null);
  });

  test('a selection from the host is shown without being echoed back', async () => {
    const tid = rows.find((t) => t.state === 'done' && t.tid > 50)?.tid as number;
    const sent = panel.host.messages('selectTrial').length;
    await panel.host.send({ type: 'select', tid });
    await highlighted(tid);
    assert.equal(panel.host.messages('selectTrial').length, sent);
  });

  test('clicking a point in the loss chart selects its trial', async () => {
    const tid = rows.find((t) => t.state === 'done' && t.tid > 100)?.tid as number;
    await panel.host.send({ type: 'select', tid });
    await highlighted(tid);
    const chart = panel.page.locator('[data-chart="history"]');
    const marker = await chart.locator('.select-marker').boundingBox();
    const box = await chart.boundingBox();
    assert.ok(marker && box);
    // Clearing hides the selection bar, which moves the page: click relative to the chart.
    await panel.page.click('#clear-selection');
    await highlighted(null);
    const before = panel.host.messages('selectTrial').length;
    await chart.click({ position: { x: marker.x + marker.width / 2 - box.x, y: marker.y + marker.height / 2 - box.y } });
    assert.deepEqual(await panel.host.next('selectTrial', before), { type: 'selectTrial', tid });
    await highlighted(tid);
  });

  test('the loss chart is keyboard reachable: arrows move the selection, Escape clears it', async () => {
    await panel.host.send({ type: 'select', tid: 10 });
    await highlighted(10);
    await panel.page.focus('[data-chart="history"]');
    await panel.page.keyboard.press('ArrowRight');
    await highlighted(11);
    await panel.page.keyboard.press('ArrowLeft');
    await panel.page.keyboard.press('ArrowLeft');
    await highlighted(9);
    await panel.page.keyboard.press('Escape');
    await highlighted(null);
    assert.equal(await panel.page.locator('.selection').isHidden(), true);
  });

  test('the log-scale switch puts the loss on a log axis', async () => {
    await panel.page.click('#log-loss');
    await waitAttr(panel, '[data-chart="history"]', 'data-scale-y', 'log');
    for (const el of await panel.page.locator('[data-chart="slice"]').all()) assert.equal(await el.getAttribute('data-scale-y'), 'log');
    await panel.page.click('#log-loss');
    await waitAttr(panel, '[data-chart="history"]', 'data-scale-y', 'linear');
  });

  test('nothing went wrong in the page', () => {
    assert.deepEqual(panel.pageErrors, []);
    assert.deepEqual(panel.host.invalid, []);
  });
});

describe('a short study that has ended', () => {
  // Opened long after it ended, from a record without the end time (a study a snapshot reports).
  const ended = makeStudy({ trials: 3, state: 'ended' });
  const init: InitMessage = { ...ended, status: { ...ended.status, endedAt: null, now: STUDY_START + 88_000 } };
  const rows = rowsOf(init);
  let panel: Panel;
  before(async () => {
    panel = await harness.open({ init });
  });
  after(async () => {
    await panel?.close();
  });

  test('elapsed runs to its last trial, not to the moment the panel opened', async () => {
    const lastEnd = Math.max(...rows.map((t) => t.endedAt ?? 0));
    assert.ok(lastEnd - STUDY_START < 10_000, 'a study of seconds');
    assert.equal(await panel.page.locator('[data-testid="elapsed"]').innerText(), formatDuration(lastEnd - STUDY_START));
    assert.equal(await panel.page.locator('[data-testid="time-left"]').innerText(), '–');
  });

  test('the trial axis of the loss chart has ticks on whole trials only', async () => {
    await panel.page.waitForSelector('[data-chart="history"][data-x-ticks]');
    const ticks = ((await attr(panel, '[data-chart="history"]', 'data-x-ticks')) ?? '').split(' ').map(Number);
    assert.ok(ticks.length >= 2, `ticks: ${ticks.join(' ')}`);
    assert.deepEqual(ticks.filter((t) => !Number.isInteger(t)), [], `ticks: ${ticks.join(' ')}`);
    assert.ok(ticks.every((t) => t >= 0 && t <= rows.length - 1), `ticks: ${ticks.join(' ')}`);
  });
});

describe('the best-so-far line and the loss axis', () => {
  // The best comes first (0.01) and every later trial is far worse (1 to 10), so a zoom on later
  // trials holds only points above 1 while the best-so-far line stays at 0.01.
  const base = makeStudy({ trials: 60, state: 'ended' });
  const rows = rowsOf(base).map((t, i) => ({ ...t, state: 'done' as const, status: 'ok', loss: i === 0 ? 0.01 : 1 + (i % 10) }));
  const init: InitMessage = { ...base, trials: trialsMessage(rows).trials };
  let panel: Panel;
  before(async () => {
    panel = await harness.open({ init });
  });
  after(async () => {
    await panel?.close();
  });

  const yMin = async (): Promise<number> => Number(await attr(panel, '[data-chart="history"]', 'data-y-min'));

  test('on a log scale, and zoomed in on later trials, the axis reaches down to the best so far', async () => {
    await panel.page.click('#log-loss');
    await waitAttr(panel, '[data-chart="history"]', 'data-scale-y', 'log');
    await panel.page.waitForFunction(() => document.querySelector('[data-chart="history"]')?.hasAttribute('data-y-min'));
    assert.ok((await yMin()) <= 0.01, `y from ${await yMin()}`);
    const over = panel.page.locator('[data-chart="history"] .u-over');
    const box = await over.boundingBox();
    assert.ok(box);
    const before = await attr(panel, '[data-chart="history"]', 'data-y-max');
    await panel.page.mouse.move(box.x + box.width * 0.5, box.y + box.height / 2);
    await panel.page.mouse.down();
    await panel.page.mouse.move(box.x + box.width * 0.9, box.y + box.height / 2, { steps: 4 });
    await panel.page.mouse.up();
    // The zoom re-ranged the axis (uPlot ranges y over the points in view).
    await panel.page.waitForFunction((b) => document.querySelector('[data-chart="history"]')?.getAttribute('data-y-max') !== b, before, { timeout: 5_000 }).catch(() => undefined);
    assert.ok((await yMin()) <= 0.01, `zoomed: y from ${await yMin()}`);
    await panel.page.click('#log-loss');
    await waitAttr(panel, '[data-chart="history"]', 'data-scale-y', 'linear');
    assert.ok((await yMin()) <= 0.01, `linear: y from ${await yMin()}`);
  });
});

describe('a long study', () => {
  // Above 1,500 lines the parallel coordinates become a density image, drawn over several frames.
  const init = makeStudy({ trials: 3_000, seed: 21 });
  const want = expected(init);
  let panel: Panel;
  before(async () => {
    panel = await harness.open({ init });
  });
  after(async () => {
    await panel?.close();
  });

  test('every chart counts every trial, and a brush filters the density image and the table', async () => {
    assert.equal(await attr(panel, '[data-chart="history"]', 'data-points'), String(want.ok));
    assert.equal(await attr(panel, '[data-chart="parcoords"]', 'data-lines'), String(want.ok));
    assert.equal(await attr(panel, '[data-chart="timeline"]', 'data-bars'), String(want.started));
    const overlay = panel.page.locator('[data-chart="parcoords"] canvas.pc-overlay');
    await overlay.evaluate((el) => el.scrollIntoView({ block: 'center' }));
    const box = await overlay.boundingBox();
    assert.ok(box);
    const x = box.x + 44;
    await panel.page.mouse.move(x, box.y + 60);
    await panel.page.mouse.down();
    await panel.page.mouse.move(x, box.y + 150, { steps: 4 });
    await panel.page.mouse.up();
    await panel.page.waitForFunction(() => document.querySelector('[data-testid="brush-info"]')?.textContent?.includes('inside 1 filter'));
    const inside = Number(await attr(panel, '[data-chart="parcoords"]', 'data-in-brush'));
    assert.ok(inside > 0 && inside < want.ok);
    // The table keeps every trial inside the brush, failed and cancelled ones too (they have an x).
    await panel.page.waitForFunction(
      ([lo, hi]) => {
        const rows = Number(document.querySelector('#trials vscode-table')?.getAttribute('data-rows'));
        return rows >= (lo as number) && rows < (hi as number);
      },
      [inside, 3_000],
    );
    // The image shows pixels of the brushed lines' colour (the density image was drawn).
    const coloured = await panel.page.evaluate(() => {
      const canvas = document.querySelector<HTMLCanvasElement>('.pc-base');
      const ctx = canvas?.getContext('2d');
      if (!canvas || !ctx) return 0;
      const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
      let n = 0;
      for (let i = 3; i < data.length; i += 4) if ((data[i] as number) > 0) n++;
      return n / (canvas.width * canvas.height);
    });
    assert.ok(coloured > 0.2, `the image covers ${coloured}`);
  });

  test('a live batch on a long study is drawn in the following frames', async () => {
    const source = new TrialSource(5, init.status.startedAt);
    source.tid = 3_000;
    const fresh: TrialRow[] = [];
    while (fresh.length < 40) {
      const t = source.next();
      if (t.state === 'done') fresh.push(t);
    }
    await panel.host.send(trialsMessage(fresh));
    await waitAttr(panel, '[data-chart="parcoords"]', 'data-lines', want.ok + 40);
    await waitAttr(panel, '[data-chart="history"]', 'data-points', want.ok + 40);
  });
});
