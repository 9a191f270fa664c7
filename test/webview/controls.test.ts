// The controls of the trials panel in headless Chromium. The fake host stands in for VS Code's
// webview host (the real one, reaching the engine, is tested in the editor suite): each control
// must post the right request with an id, show the reply, and be disabled with a reason when
// it does not apply.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ControlMessage, ControlRequest } from '../../core/src/protocol/webview';
import { Harness, type Panel, type Reply } from './harness/panel';
import { makeStudy } from './fixtures/study';

let harness: Harness;
before(async () => {
  harness = await Harness.start();
});
after(async () => {
  await harness?.close();
});

const BUTTONS = ['#stop', '#cancel', '#timeout-set', '#timeout-clear', '#timeout-extend', '#policy-apply', '#parallelism-apply'];
const INPUTS = ['#timeout-input', '#extend-input', '#no-progress-input', '#loss-threshold-input', '#parallelism-input'];

async function type(panel: Panel, field: string, text: string): Promise<void> {
  await panel.page.locator(`${field} input`).fill(text);
}

async function status(panel: Panel): Promise<string> {
  return panel.page.locator('[data-testid="control-status"]').innerText();
}

describe('controls of a running study', () => {
  let panel: Panel;
  let answer: (m: ControlMessage) => Reply | undefined = () => ({ ok: true });
  before(async () => {
    panel = await harness.open({ init: makeStudy(), reply: (m) => answer(m) });
  });
  after(async () => {
    await panel?.close();
  });

  async function expectRequest(act: () => Promise<void>, request: ControlRequest): Promise<ControlMessage> {
    const before = panel.host.messages('control').length;
    await act();
    const sent = await panel.host.next('control', before);
    assert.deepEqual(sent.request, request);
    await panel.page.waitForFunction(() => /: done\.$/.test(document.querySelector('[data-testid="control-status"]')?.textContent ?? ''));
    return sent;
  }

  test('every control is enabled, labelled and reachable from the keyboard', async () => {
    for (const selector of [...BUTTONS, ...INPUTS]) {
      assert.equal(await panel.page.locator(selector).evaluate((el) => (el as HTMLElement & { disabled: boolean }).disabled), false, selector);
    }
    for (const selector of INPUTS) {
      const label = await panel.page.locator(`${selector} input`).getAttribute('aria-label');
      assert.ok(label && label.length > 3, `${selector} has a label`);
    }
    // Tab from the first control reaches the next ones.
    await panel.page.focus('#stop');
    await panel.page.keyboard.press('Tab');
    assert.equal(await panel.page.evaluate(() => document.activeElement?.id), 'cancel');
  });

  test('Stop and Cancel', async () => {
    await expectRequest(() => panel.page.click('#stop'), { action: 'stop' });
    await expectRequest(() => panel.page.click('#cancel'), { action: 'cancel' });
  });

  test('the timeout: set, remove and extend, durations as people write them', async () => {
    await type(panel, '#timeout-input', '45m');
    await expectRequest(() => panel.page.click('#timeout-set'), { action: 'setTimeout', seconds: 2700 });
    await type(panel, '#timeout-input', '1h30m');
    await expectRequest(() => panel.page.press('#timeout-input input', 'Enter'), { action: 'setTimeout', seconds: 5400 });
    await expectRequest(() => panel.page.click('#timeout-clear'), { action: 'setTimeout', seconds: null });
    await type(panel, '#extend-input', '90');
    await expectRequest(() => panel.page.click('#timeout-extend'), { action: 'extendTimeout', seconds: 90 });
  });

  test('the early-stop policy: both rules, and empty fields turn them off', async () => {
    await type(panel, '#no-progress-input', '20');
    await type(panel, '#loss-threshold-input', '0.05');
    await expectRequest(() => panel.page.click('#policy-apply'), { action: 'setPolicy', noProgressTrials: 20, lossThreshold: 0.05 });
    await type(panel, '#no-progress-input', '');
    await type(panel, '#loss-threshold-input', 'off');
    await expectRequest(() => panel.page.click('#policy-apply'), { action: 'setPolicy', noProgressTrials: null, lossThreshold: null });
  });

  test('parallelism', async () => {
    await type(panel, '#parallelism-input', '3');
    await expectRequest(() => panel.page.click('#parallelism-apply'), { action: 'setParallelism', n: 3 });
  });

  test('every request carries its own id', () => {
    const ids = panel.host.messages('control').map((m) => m.id);
    assert.ok(ids.length >= 9);
    assert.equal(new Set(ids).size, ids.length);
  });

  test('what does not parse is not sent, and the field says why', async () => {
    const sent = panel.host.messages('control').length;
    await type(panel, '#parallelism-input', '0');
    await panel.page.click('#parallelism-apply');
    assert.match(await status(panel), /whole number from 1/);
    await type(panel, '#timeout-input', 'soon');
    await panel.page.click('#timeout-set');
    assert.match(await status(panel), /duration such as/);
    assert.equal(await panel.page.locator('#timeout-input').evaluate((el) => (el as HTMLElement & { invalid: boolean }).invalid), true);
    await type(panel, '#loss-threshold-input', 'low');
    await panel.page.click('#policy-apply');
    assert.match(await status(panel), /must be a number/);
    assert.equal(panel.host.messages('control').length, sent);
  });

  test('a refusal from the host is shown', async () => {
    answer = () => ({ ok: false, error: 'The study is already stopping.' });
    const before = panel.host.messages('control').length;
    await panel.page.click('#stop');
    await panel.host.next('control', before);
    await panel.page.waitForFunction(() => document.querySelector('[data-testid="control-status"]')?.textContent === 'Stop: The study is already stopping.');
    assert.equal(await panel.page.locator('[data-testid="control-status"]').getAttribute('data-error'), '');
    answer = () => ({ ok: true });
  });

  test('a reply to an unknown request id changes nothing', async () => {
    const text = await status(panel);
    await panel.host.send({ type: 'reply', id: 'nobody-1', ok: false, error: 'stray' });
    await panel.page.waitForTimeout(50);
    assert.equal(await status(panel), text);
  });

  test('when the study stops and then ends, the controls are disabled with the reason', async () => {
    const init = makeStudy();
    const stateText = (text: string): Promise<unknown> => panel.page.waitForFunction((t) => document.querySelector('[data-testid="state"]')?.textContent === t, text);
    // A stop the policy asked for says why; one the user asked for is just "Stopping".
    await panel.host.send({ type: 'state', status: { ...init.status, state: 'stopping', reason: 'loss_threshold' } });
    await stateText('Stopping (loss threshold)');
    await panel.host.send({ type: 'state', status: { ...init.status, state: 'stopping', reason: 'stopped' } });
    await panel.page.waitForFunction(() => document.querySelector('[data-testid="state"]')?.textContent !== 'Stopping (loss threshold)');
    await panel.page.waitForFunction(() => (document.querySelector('#stop') as HTMLElement & { disabled: boolean }).disabled);
    assert.equal(await panel.page.locator('#cancel').evaluate((el) => (el as HTMLElement & { disabled: boolean }).disabled), false, 'Cancel still applies');
    assert.match(await panel.page.locator('[data-testid="reason-run"]').innerText(), /already stopping/);
    assert.equal(await panel.page.locator('[data-testid="state"]').innerText(), 'Stopping', 'the reason is not said twice');
    await panel.host.send({ type: 'state', status: { ...init.status, state: 'ended', reason: 'stopped', endedAt: init.status.now } });
    await panel.page.waitForFunction(() => (document.querySelector('#cancel') as HTMLElement & { disabled: boolean }).disabled);
    await stateText('Ended (stopped)');
    for (const selector of [...BUTTONS, ...INPUTS]) {
      assert.equal(await panel.page.locator(selector).evaluate((el) => (el as HTMLElement & { disabled: boolean }).disabled), true, selector);
    }
    // A reason every group shares is said once, above the groups, not four times.
    assert.equal(await panel.page.locator('[data-testid="reason-controls"]').innerText(), 'The study has ended.');
    for (const group of ['run', 'timeout', 'policy', 'parallelism']) {
      assert.equal(await panel.page.locator(`[data-testid="reason-${group}"]`).innerText(), '', group);
    }
  });
});

describe('controls that do not apply', () => {
  test('an ended study: nothing can be sent, the reason is visible, logs and runs still open', async () => {
    const panel = await harness.open({ init: makeStudy({ state: 'ended' }) });
    try {
      assert.equal(await panel.page.locator('[data-testid="state"]').innerText(), 'Ended (max evals)');
      for (const selector of BUTTONS) {
        await panel.page.locator(selector).click({ force: true });
      }
      await panel.page.waitForTimeout(100);
      assert.equal(panel.host.messages('control').length, 0);
      assert.match(await panel.page.locator('[data-testid="reason-controls"]').innerText(), /The study has ended\./);
      assert.equal(await panel.page.locator('[data-testid="time-left"]').innerText(), '–');
      await panel.host.send({ type: 'select', tid: 0 });
      await panel.page.waitForSelector('.selection:not([hidden])');
      await panel.page.click('#open-logs');
      assert.deepEqual(await panel.host.next('openLogs', 0), { type: 'openLogs', tid: 0 });
    } finally {
      await panel.close();
    }
  });

  test('a capability the host turns off: disabled, with the host’s reason', async () => {
    const reason = 'gpu1 has a fixed number of slots.';
    const panel = await harness.open({
      init: makeStudy({ capabilities: { parallelism: { enabled: false, reason }, openRun: { enabled: false, reason: 'MLflow is not installed.' } } }),
    });
    try {
      assert.equal(await panel.page.locator('#parallelism-apply').evaluate((el) => (el as HTMLElement & { disabled: boolean }).disabled), true);
      assert.equal(await panel.page.locator('[data-testid="reason-parallelism"]').innerText(), reason);
      assert.equal(await panel.page.locator('[data-testid="reason-controls"]').isVisible(), false, 'one group off: its reason stays next to it');
      assert.equal(await panel.page.locator('#stop').evaluate((el) => (el as HTMLElement & { disabled: boolean }).disabled), false);
      await panel.host.send({ type: 'select', tid: 0 });
      await panel.page.waitForSelector('.selection:not([hidden])');
      assert.equal(await panel.page.locator('#open-run').evaluate((el) => (el as HTMLElement & { disabled: boolean }).disabled), true);
      assert.match(await panel.page.locator('[data-testid="selection-reasons"]').innerText(), /MLflow is not installed/);
    } finally {
      await panel.close();
    }
  });
});
