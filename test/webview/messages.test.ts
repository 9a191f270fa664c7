// The webview's side of the channel, in headless Chromium. The fake host stands in for VS Code's
// webview host (whose real side is tested in the editor suite): the ready handshake, messages
// that do not parse, a protocol mismatch, and what survives a reload of the panel.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { WEBVIEW_PROTOCOL_VERSION } from '../../core/src/protocol/webview';
import { Harness } from './harness/panel';
import { expected, makeStudy, rowsOf, trialsMessage } from './fixtures/study';

let harness: Harness;
before(async () => {
  harness = await Harness.start();
});
after(async () => {
  await harness?.close();
});

describe('handshake and validation', () => {
  test('the webview says ready first and draws nothing until the host answers with init', async () => {
    const panel = await harness.open();
    try {
      const ready = await panel.host.next('ready', 0);
      assert.deepEqual(ready, { type: 'ready', protocol: WEBVIEW_PROTOCOL_VERSION });
      assert.deepEqual(panel.host.received.map((m) => m.type), ['ready']);
      // Updates before init have nothing to apply to and are dropped.
      const init = makeStudy();
      await panel.host.send(trialsMessage(rowsOf(init).slice(0, 5)));
      await panel.page.waitForTimeout(50);
      assert.equal(await panel.page.locator('#app').getAttribute('aria-busy'), 'true');
      await panel.host.send(init);
      await panel.page.waitForSelector('body[data-complete="200"]');
      assert.equal(await panel.page.locator('#app').getAttribute('aria-busy'), 'false');
      assert.equal(await panel.page.title(), 'Trials: train.py:42 (fmin #1)');
    } finally {
      await panel.close();
    }
  });

  test('messages that do not parse are ignored, counted and reported to the host', async () => {
    const init = makeStudy();
    const want = expected(init);
    const panel = await harness.open({ init });
    try {
      const one = (): ReturnType<typeof trialsMessage> => JSON.parse(JSON.stringify(trialsMessage(rowsOf(init).slice(0, 1)))) as ReturnType<typeof trialsMessage>;
      const negative = one();
      negative.trials.tid[0] = -1;
      const wordy = one();
      wordy.trials.loss[0] = 'a lot' as never;
      const bad: unknown[] = [
        'not an object',
        { type: 'explode' },
        negative,
        wordy,
        { type: 'state', status: { ...init.status, state: 'paused' } },
        { type: 'importances', method: 'ped-anova', trials: 1, items: [{ param: 'x', importance: 7, score: 1 }] },
        { type: 'select', tid: 'first' },
        { noType: true },
      ];
      for (const message of bad) await panel.host.send(message);
      await panel.page.waitForSelector(`body[data-rejected-messages="${bad.length}"]`);
      const rejected = await panel.host.waitFor(() => (panel.host.messages('rejected').length === bad.length ? panel.host.messages('rejected') : undefined));
      assert.deepEqual(rejected.map((r) => r.messageType), [undefined, 'explode', 'trials', 'trials', 'state', 'importances', 'select', undefined]);
      assert.match(rejected[2]?.error ?? '', /^invalid "trials" message: trials\.tid: expected an array of trial ids/);
      assert.match(rejected[3]?.error ?? '', /^invalid "trials" message: trials\.loss: expected an array of losses/);
      // Nothing changed.
      assert.equal(await panel.page.locator('[data-chart="history"]').getAttribute('data-points'), String(want.ok));
      assert.equal(await panel.page.locator('[data-testid="state"]').innerText(), 'Running');
      assert.equal(await panel.page.locator('body').getAttribute('data-trials'), '200');
      assert.ok(panel.console.some((line) => line.startsWith('[warning] [trials] dropped a message')));
      assert.deepEqual(panel.pageErrors, []);
      // A good message still goes through afterwards.
      await panel.host.send({ type: 'state', status: { ...init.status, state: 'stopping' } });
      await panel.page.waitForFunction(() => document.querySelector('[data-testid="state"]')?.textContent === 'Stopping');
    } finally {
      await panel.close();
    }
  });

  test('an init of another protocol version is refused with a visible message', async () => {
    const panel = await harness.open();
    try {
      await panel.host.next('ready', 0);
      await panel.host.send({ ...makeStudy(), protocol: WEBVIEW_PROTOCOL_VERSION + 1 });
      const rejected = await panel.host.next('rejected', 0);
      assert.equal(rejected.messageType, 'init');
      assert.match(await panel.page.locator('.problem').innerText(), /reload the window/);
    } finally {
      await panel.close();
    }
  });
});

describe('state across reloads', () => {
  test('selection, sort, filter, filters on the axes and the log scale come back after a reload', async () => {
    const init = makeStudy();
    const panel = await harness.open({ init });
    try {
      const page = panel.page;
      await panel.host.send({ type: 'select', tid: 42 });
      await page.waitForSelector('.selection[data-tid="42"]');
      await page.click('button.sort[data-key="loss"]');
      await page.click('button.sort[data-key="loss"]');
      await page.waitForSelector('vscode-table-header-cell[aria-sort="descending"] button[data-key="loss"]');
      await page.locator('#table-filter input').fill('optimizer=sgd');
      await page.click('#log-loss');
      const overlay = page.locator('[data-chart="parcoords"] canvas.pc-overlay');
      await overlay.evaluate((el) => el.scrollIntoView({ block: 'center' }));
      const box = await overlay.boundingBox();
      assert.ok(box);
      await page.mouse.move(box.x + 44, box.y + 60);
      await page.mouse.down();
      await page.mouse.move(box.x + 44, box.y + 200, { steps: 4 });
      await page.mouse.up();
      await page.waitForFunction(() => document.querySelector('[data-testid="brush-info"]')?.textContent?.includes('inside 1 filter'));
      const rows = await page.locator('#trials vscode-table').getAttribute('data-rows');
      const inBrush = await page.locator('[data-chart="parcoords"]').getAttribute('data-in-brush');
      await page.waitForTimeout(50);

      const readies = panel.host.messages('ready').length;
      await page.reload();
      await panel.host.next('ready', readies);
      await page.waitForSelector('body[data-complete="200"]');
      await page.waitForSelector('.selection[data-tid="42"]');
      await page.waitForSelector('vscode-table-header-cell[aria-sort="descending"] button[data-key="loss"]');
      assert.equal(await page.locator('#table-filter').evaluate((el) => (el as HTMLInputElement).value), 'optimizer=sgd');
      assert.equal(await page.locator('#log-loss').evaluate((el) => (el as HTMLInputElement).checked), true);
      assert.equal(await page.locator('[data-chart="parcoords"]').getAttribute('data-in-brush'), inBrush);
      assert.equal(await page.locator('#trials vscode-table').getAttribute('data-rows'), rows);
      assert.equal(await page.locator('[data-chart="history"]').getAttribute('data-scale-y'), 'log');
    } finally {
      await panel.close();
    }
  });

  test('the saved state of another study is not applied', async () => {
    const panel = await harness.open({ init: makeStudy() });
    try {
      await panel.host.send({ type: 'select', tid: 7 });
      await panel.page.waitForSelector('.selection[data-tid="7"]');
      await panel.page.waitForTimeout(50);
      const other = makeStudy({ seed: 5 });
      other.study = { ...other.study, id: 'study-other' };
      panel.host.init = other;
      await panel.page.reload();
      await panel.page.waitForSelector('body[data-complete="200"]');
      assert.equal(await panel.page.locator('.selection').isHidden(), true);
    } finally {
      await panel.close();
    }
  });
});
