import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { ImportanceRefresher } from '../../core/src/analysis/refresh';
import { computeImportances, type ImportanceResult, type ImportanceTask } from '../../core/src/analysis/importance';
import { HostToWebview, type ImportancesMessage } from '../../core/src/protocol/webview';

function study(n: number): ImportanceTask {
  return { space: [{ label: 'x', dist: 'uniform' }], trials: Array.from({ length: n }, (_, i) => ({ params: { x: (i * 7919) % 101 / 100 }, loss: i })) };
}

test('many requests while one computation runs give one more computation, over the latest trials', async () => {
  const sent: ImportancesMessage[] = [];
  const sizes: number[] = [];
  let release: () => void = () => undefined;
  const refresher = new ImportanceRefresher({
    minIntervalMs: 0,
    compute: async (task) => {
      sizes.push(task.trials.length);
      await new Promise<void>((r) => (release = r));
      return computeImportances(task);
    },
    send: (m) => sent.push(m),
  });
  let n = 10;
  refresher.request(() => study(n));
  for (n = 11; n <= 20; n++) refresher.request(() => study(n));
  n = 20;
  await sleep(5);
  assert.deepEqual(sizes, [10], 'one at a time');
  release();
  await sleep(5);
  assert.deepEqual(sizes, [10, 20], 'the pending requests became one, with the latest trials');
  release();
  await sleep(5);
  assert.equal(sent.length, 2);
  for (const m of sent) assert.ok(HostToWebview.safeParse(m).success);
  assert.equal(sent[1]?.trials, 20);
  refresher.dispose();
});

test('requests are spaced by the interval, and nothing is sent after dispose', async () => {
  const starts: number[] = [];
  const sent: ImportancesMessage[] = [];
  const refresher = new ImportanceRefresher({
    minIntervalMs: 60,
    compute: async (task): Promise<ImportanceResult> => {
      starts.push(Date.now());
      return computeImportances(task);
    },
    send: (m) => sent.push(m),
  });
  refresher.request(() => study(12));
  await sleep(5);
  refresher.request(() => study(13));
  await sleep(300);
  assert.equal(starts.length, 2);
  assert.ok((starts[1] as number) - (starts[0] as number) >= 55, `${(starts[1] as number) - (starts[0] as number)} ms apart`);
  // The interval has passed: this one starts at once, but its result comes after dispose.
  refresher.request(() => study(14));
  refresher.dispose();
  refresher.request(() => study(15));
  await sleep(300);
  assert.equal(starts.length, 3);
  assert.equal(sent.length, 2);
});

test('a failed computation is reported and the next request still runs', async () => {
  const errors: unknown[] = [];
  let fail = true;
  const sent: ImportancesMessage[] = [];
  const refresher = new ImportanceRefresher({
    minIntervalMs: 0,
    compute: async (task) => {
      if (fail) throw new Error('worker died');
      return computeImportances(task);
    },
    send: (m) => sent.push(m),
    onError: (e) => errors.push(e),
  });
  refresher.request(() => study(10));
  await sleep(5);
  fail = false;
  refresher.request(() => study(10));
  await sleep(5);
  assert.equal(errors.length, 1);
  assert.equal(sent.length, 1);
  refresher.dispose();
});
