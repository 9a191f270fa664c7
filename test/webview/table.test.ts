// The trials table in headless Chromium, with the fake host standing in for VS Code's webview
// host (its real side is tested in the editor suite): sorting, filtering, brushing, paging.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { trialOutcome } from '../../core/src/protocol/webview';
import { Harness, type Panel } from './harness/panel';
import { expected, makeStudy, rowsOf } from './fixtures/study';

let harness: Harness;
before(async () => {
  harness = await Harness.start();
});
after(async () => {
  await harness?.close();
});

describe('trials table', () => {
  const init = makeStudy({ seed: 11 });
  const rows = rowsOf(init);
  const want = expected(init);
  let panel: Panel;
  before(async () => {
    panel = await harness.open({ init });
  });
  after(async () => {
    await panel?.close();
  });

  const tids = (): Promise<number[]> => panel.page.locator('#trials vscode-table-row').evaluateAll((rows) => rows.map((r) => Number(r.getAttribute('data-tid'))));
  const rowCount = async (): Promise<number> => Number(await panel.page.locator('#trials vscode-table').getAttribute('data-rows'));
  const column = (index: number): Promise<string[]> =>
    panel.page.locator('#trials vscode-table-row').evaluateAll((rows, i) => rows.map((r) => (r.children[i] as HTMLElement).textContent ?? ''), index);

  async function setFilter(text: string): Promise<void> {
    await panel.page.locator('#table-filter input').fill(text);
    await panel.page.waitForFunction((t) => (document.querySelector('#table-filter') as HTMLInputElement | null)?.value === t, text);
  }

  async function waitRows(n: number): Promise<void> {
    await panel.page.waitForFunction((v) => document.querySelector('#trials vscode-table')?.getAttribute('data-rows') === String(v), n, { timeout: 10_000 });
  }

  test('shows a page of rows in trial order, with params, loss, status, duration and slot', async () => {
    assert.equal(await rowCount(), 200);
    assert.deepEqual(await tids(), Array.from({ length: 20 }, (_, i) => i));
    const headers = await panel.page.locator('#trials vscode-table-header-cell').allInnerTexts();
    assert.deepEqual(headers.map((h) => h.replace(/[▲▼]/g, '').trim()), ['Trial', 'Status', 'Loss', 'x', 'lr', 'optimizer', 'layers', 'Duration', 'Host / slot']);
    const first = rows[0];
    assert.ok(first);
    const cells = await panel.page.locator('#trials vscode-table-row').first().locator('vscode-table-cell').allInnerTexts();
    assert.equal(cells[0], '0');
    assert.equal(cells[1], trialOutcome(first));
    assert.equal(cells[5], first.params.optimizer);
    assert.equal(cells[8], first.slot);
  });

  test('sorts by loss both ways (trials without a loss last), and says so', async () => {
    await panel.page.click('button.sort[data-key="loss"]');
    await panel.page.waitForSelector('vscode-table-header-cell[aria-sort="ascending"] button[data-key="loss"]');
    const byLoss = rows.filter((t) => typeof t.loss === 'number').sort((a, b) => (a.loss as number) - (b.loss as number) || a.tid - b.tid);
    assert.deepEqual(await tids(), byLoss.slice(0, 20).map((t) => t.tid));
    await panel.page.click('button.sort[data-key="loss"]');
    await panel.page.waitForSelector('vscode-table-header-cell[aria-sort="descending"] button[data-key="loss"]');
    assert.equal((await tids())[0], byLoss[byLoss.length - 1]?.tid);
    // The last page holds the trials without a loss.
    await panel.page.click('#page-next', { clickCount: 1 });
    for (let i = 0; i < 8; i++) await panel.page.click('#page-next');
    await panel.page.waitForFunction(() => document.querySelector('.page-text')?.textContent?.startsWith('Rows 181–200'));
    const statuses = await column(1);
    assert.ok(statuses.slice(-5).every((s) => s !== 'ok'), statuses.join(','));
  });

  test('sorts by a parameter and by status', async () => {
    await panel.page.click('button.sort[data-key="p:lr"]');
    await panel.page.waitForSelector('vscode-table-header-cell[aria-sort="ascending"] button[data-key="p:lr"]');
    const lrs = (await column(4)).map(Number);
    assert.deepEqual(lrs, [...lrs].sort((a, b) => a - b));
    assert.match(await panel.page.locator('.page-text').innerText(), /^Rows 1–20 /, 'a new sort starts at the first page');
    await panel.page.click('button.sort[data-key="status"]');
    await panel.page.waitForSelector('vscode-table-header-cell[aria-sort="ascending"] button[data-key="status"]');
  });

  test('filters by text, by comparisons and by status', async () => {
    await panel.page.click('button.sort[data-key="tid"]');
    await setFilter('optimizer=adam');
    const adam = rows.filter((t) => t.params.optimizer === 'adam').length;
    await waitRows(adam);
    assert.ok((await column(5)).every((o) => o === 'adam'));

    await setFilter('loss<0.1');
    await waitRows(rows.filter((t) => typeof t.loss === 'number' && t.loss < 0.1).length);

    await setFilter('gpu1');
    await waitRows(rows.filter((t) => t.slot?.startsWith('gpu1')).length);

    await setFilter('lr>=0.01 layers<=4');
    await waitRows(rows.filter((t) => (t.params.lr as number) >= 0.01 && (t.params.layers as number) <= 4).length);

    await setFilter('nonsense<<<');
    // The table recomputes on the next frame after the input event: wait for it, then check the words.
    const filterError = panel.page.locator('[data-testid="filter-error"]');
    await panel.page.waitForFunction(() => (document.querySelector('[data-testid="filter-error"]')?.textContent ?? '') !== '', undefined, { timeout: 10_000 });
    assert.match(await filterError.innerText(), /Not understood/);

    await setFilter('');
    await waitRows(200);
    const chooseStatus = async (name: string): Promise<void> => {
      await panel.page.locator('#status-filter').click();
      await panel.page.locator('#status-filter').getByRole('option', { name, exact: true }).click();
    };
    await chooseStatus('failed');
    await waitRows(want.failed);
    assert.ok((await column(1)).every((s) => s === 'failed'));
    await chooseStatus('cancelled');
    await waitRows(want.cancelled);
    await chooseStatus('All statuses');
    await waitRows(200);
  });

  test('brushing an axis of the parallel coordinates filters the table; clearing restores it', async () => {
    const overlay = panel.page.locator('[data-chart="parcoords"] canvas.pc-overlay');
    await overlay.evaluate((el) => el.scrollIntoView({ block: 'center' }));
    const box = await overlay.boundingBox();
    assert.ok(box);
    // The loss axis is the last one, 44 px from the right edge; brush its lower half (low losses).
    const x = box.x + box.width - 44;
    await panel.page.mouse.move(x, box.y + box.height - 24);
    await panel.page.mouse.down();
    await panel.page.mouse.move(x, box.y + 170, { steps: 5 });
    await panel.page.mouse.up();
    await panel.page.waitForFunction(() => Number(document.querySelector('[data-chart="parcoords"]')?.getAttribute('data-in-brush')) < Number(document.querySelector('[data-chart="parcoords"]')?.getAttribute('data-lines')));
    const inside = Number(await panel.page.locator('[data-chart="parcoords"]').getAttribute('data-in-brush'));
    assert.ok(inside > 0 && inside < want.ok, String(inside));
    await waitRows(inside);
    assert.match(await panel.page.locator('[data-testid="brush-info"]').innerText(), new RegExp(`^${inside} of ${want.ok} trials inside 1 filter$`));
    const losses = (await column(2)).map(Number);
    const max = Math.max(...losses);
    assert.ok(losses.every((l) => l <= max && Number.isFinite(l)));
    await panel.page.click('#clear-brushes');
    await waitRows(200);
  });

  test('pages forward and back; Enter on a focused row selects it, arrows move between rows', async () => {
    await panel.page.click('#page-next');
    await panel.page.waitForFunction(() => document.querySelector('.page-text')?.textContent?.startsWith('Rows 21–40'));
    assert.equal((await tids())[0], 20);
    await panel.page.click('#page-prev');
    await panel.page.waitForFunction(() => document.querySelector('.page-text')?.textContent?.startsWith('Rows 1–20'));
    await panel.page.locator('#trials vscode-table-row[data-tid="3"]').focus();
    await panel.page.keyboard.press('ArrowDown');
    const before = panel.host.messages('selectTrial').length;
    await panel.page.keyboard.press('Enter');
    assert.deepEqual(await panel.host.next('selectTrial', before), { type: 'selectTrial', tid: 4 });
  });

  test('selecting a trial elsewhere turns the table to its page', async () => {
    await panel.host.send({ type: 'select', tid: 157 });
    await panel.page.waitForSelector('#trials vscode-table-row[data-tid="157"][aria-selected="true"]');
    assert.match(await panel.page.locator('.page-text').innerText(), /^Rows 141–160/);
  });
});
