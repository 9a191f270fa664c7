// A live study's panel in headless Chromium, with a fake host (see harness/panel.ts): whatever the
// order and pace of the host's batches, once the study has ended and its last batch is in, the
// header's counts, the loss chart's marks, the table's rows and the trial count agree with the
// study's final trials.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { InitMessage, TrialRow } from '../../core/src/protocol/webview';
import { Harness, type Panel } from './harness/panel';
import { TrialSource, makeStudy, rowsOf, statusOf, trialsMessage } from './fixtures/study';

let harness: Harness;
before(async () => {
  harness = await Harness.start();
});
after(async () => {
  await harness?.close();
});

interface Shown {
  counts: string;
  chart: { ok: number; failed: number; cancelled: number };
  tableRows: number;
  trials: number;
}

async function shown(panel: Panel): Promise<Shown> {
  return panel.page.evaluate(() => {
    // No named functions in here: the page has no `__name` helper for them.
    const chart = document.querySelector('[data-chart="history"]');
    const [ok, failed, cancelled] = ['points', 'failed', 'cancelled'].map((name) => Number(chart?.getAttribute(`data-${name}`) ?? -1));
    return {
      counts: document.querySelector('[data-testid="counts"]')?.textContent ?? '',
      chart: { ok: ok as number, failed: failed as number, cancelled: cancelled as number },
      tableRows: Number(document.querySelector('vscode-table')?.getAttribute('data-rows') ?? -1),
      trials: Number(document.body.getAttribute('data-trials') ?? -1),
    };
  });
}

/** What the panel must show for these final rows. */
function wanted(init: InitMessage, rows: TrialRow[]): Shown {
  const c = statusOf(rows, 'ended', 0).counts;
  const parts = [`${c.total} of ${init.study.maxEvals}`, `${c.ok} ok`];
  if (c.failed) parts.push(`${c.failed} failed`);
  if (c.cancelled) parts.push(`${c.cancelled} cancelled`);
  return { counts: parts.join(' · '), chart: { ok: c.ok, failed: c.failed, cancelled: c.cancelled }, tableRows: c.total, trials: c.total };
}

/** Polls the page until it shows `want` (the views redraw live data a few times a second), then compares. */
async function converges(panel: Panel, want: Shown): Promise<void> {
  const deadline = Date.now() + 10_000;
  let last = await shown(panel);
  while (JSON.stringify(last) !== JSON.stringify(want) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    last = await shown(panel);
  }
  assert.deepEqual(last, want);
  assert.deepEqual(panel.pageErrors, []);
  assert.deepEqual(panel.host.log, []);
}

/** Ends every trial that is still running or queued: done, except the queued ones, cancelled by the stop. */
function finish(rows: TrialRow[]): TrialRow[] {
  return rows
    .filter((t) => t.state === 'running' || t.state === 'queued')
    .map((t): TrialRow => {
      if (t.state === 'queued') return { ...t, state: 'cancel', error: { type: 'Cancelled', message: 'the study stopped before this trial started' } };
      return { ...t, state: 'done', status: 'ok', loss: 0.25, endedAt: (t.startedAt ?? 0) + 900 };
    });
}

function merge(rows: TrialRow[], updates: TrialRow[]): TrialRow[] {
  const byTid = new Map(rows.map((t) => [t.tid, t]));
  for (const t of updates) byTid.set(t.tid, t);
  return [...byTid.values()].sort((a, b) => a.tid - b.tid);
}

describe('a live study converges to its final trials', () => {
  test('the last batch only changes trials the panel already has (no new rows), then the study ends', async () => {
    // 40 trials: the panel's columns hold more rows than there are trials.
    const init = makeStudy({ trials: 40, seed: 11 });
    const panel = await harness.open({ init });
    try {
      const updates = finish(rowsOf(init));
      const rows = merge(rowsOf(init), updates);
      await panel.host.send(trialsMessage(updates));
      await panel.host.send({ type: 'state', status: statusOf(rows, 'ended', Date.now()) });
      await converges(panel, wanted(init, rows));
    } finally {
      await panel.close();
    }
  });

  test('a stream of batches, each in its own frame or several in one, then the end', async () => {
    const init = makeStudy({ trials: 30, seed: 12 });
    const panel = await harness.open({ init });
    try {
      let rows = rowsOf(init);
      const source = new TrialSource(13, init.status.startedAt);
      source.tid = rows.length;
      // New trials arrive as running, then finish in a later batch, as the host's 200 ms flushes send them.
      for (let round = 0; round < 25; round++) {
        const started: TrialRow[] = [];
        for (let k = 0; k < 3; k++) {
          const t = source.next();
          started.push({ tid: t.tid, params: t.params, state: 'running', ...(t.slot ? { slot: t.slot } : {}), ...(t.startedAt !== undefined ? { startedAt: t.startedAt } : {}) });
        }
        const done = rows.filter((t) => t.state === 'running').map((t): TrialRow => ({ ...t, state: 'done', status: 'ok', loss: 0.1 + round / 100, endedAt: (t.startedAt ?? 0) + 700 }));
        rows = merge(rows, [...done, ...started]);
        await panel.host.send(trialsMessage([...done, ...started]));
        await panel.host.send({ type: 'state', status: statusOf(rows, 'running', Date.now()) });
        // Some batches back to back (one frame applies them together), some a frame or two apart.
        if (round % 3 === 0) await new Promise((r) => setTimeout(r, 40));
      }
      const last = finish(rows);
      rows = merge(rows, last);
      await panel.host.send(trialsMessage(last));
      await panel.host.send({ type: 'state', status: statusOf(rows, 'ended', Date.now()) });
      await converges(panel, wanted(init, rows));
    } finally {
      await panel.close();
    }
  });
});
