// The host-side model of a study for the panel (engine events -> webview messages), the control
// mapping onto the engine, and the capabilities the panel shows. All vscode-free, run in Node.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { EngineEvent, StudySettings } from '../../core/src/coordinator/events';
import { JournalWriter, readJournal } from '../../core/src/journal/journal';
import type { StudyInfo, StudyState } from '../../core/src/journal/records';
import { type ControlTarget, applyControl } from '../../core/src/analysis/control';
import { StudyViewModel, capabilitiesFor, studyHeader } from '../../core/src/analysis/studyView';
import { HostToWebview, type ControlRequest, decodeTrials } from '../../core/src/protocol/webview';
import { tempDir } from '../core/helpers/tempDir';

const info: StudyInfo = {
  id: 's1', runId: 'r1', ordinal: 0, script: '/w/train.py', args: [], cwd: '/w', python: '/usr/bin/python3', executors: ['local:2'],
  callSite: { file: '/w/train.py', line: 10 }, maxEvals: 4, parallelism: 2, timeout: 60, trialTimeout: null, lossThreshold: null,
  algo: 'tpe.suggest', maxQueueLen: 1, space: [{ label: 'x', dist: 'uniform', args: { low: 0, high: 1 } }], createdAt: 1_000,
};
const settings: StudySettings = { timeout: 60, deadline: 61_000, parallelism: 2, lossThreshold: null, noProgressTrials: null, trialTimeout: null };

function valid(message: unknown): void {
  const parsed = HostToWebview.safeParse(JSON.parse(JSON.stringify(message)));
  assert.ok(parsed.success, parsed.success ? '' : parsed.error.message);
}

test('engine events become init, trial upserts and state messages the webview accepts', () => {
  const model = new StudyViewModel(studyHeader(info, 'live'), settings);
  const events: EngineEvent[] = [
    { type: 'study.opened', study: info, journal: '/j/s1.jsonl', settings, resumed: false },
    { type: 'study.state', study: 's1', state: 'running' },
    { type: 'trial.queued', study: 's1', tid: 0, params: { x: 0.5 } },
    { type: 'trial.queued', study: 's1', tid: 1, params: { x: 0.1 } },
    { type: 'trial.queued', study: 'other', tid: 9, params: { x: 0.9 } },
    { type: 'trial.started', study: 's1', tid: 0, slot: 'local/0', at: 2_000, attempt: 1 },
    { type: 'trial.started', study: 's1', tid: 1, slot: 'gpu1/1', at: 2_100, attempt: 1 },
    { type: 'trial.output', study: 's1', tid: 0, slot: 'local/0', text: 'epoch 1\n' },
  ];
  const concerned = events.map((e) => model.apply(e, 1_500));
  assert.deepEqual(concerned, [true, true, true, true, false, true, true, false]);
  const init = model.init(capabilitiesFor('running', { controllable: true, logs: true, mlflow: false }), 2_200);
  valid(init);
  const rows = decodeTrials(init.trials);
  assert.equal(rows.length, 2);
  assert.deepEqual(rows[1], { tid: 1, params: { x: 0.1 }, state: 'running', slot: 'gpu1/1', startedAt: 2_100, attempt: 1 });
  assert.equal(model.takeUpdates(), undefined, 'init clears the pending updates');

  model.apply({ type: 'trial.finished', study: 's1', tid: 0, state: 'done', summary: { status: 'ok', loss: 0.25 }, slot: 'local/0', startedAt: 2_000, endedAt: 3_000 });
  model.apply({ type: 'trial.finished', study: 's1', tid: 1, state: 'error', error: { type: 'ValueError', message: 'x'.repeat(10_000), traceback: 'tb' }, endedAt: 3_100 });
  const update = model.takeUpdates();
  assert.ok(update);
  valid(update);
  const updated = decodeTrials(update.trials);
  assert.deepEqual(updated.map((t) => [t.tid, t.state]), [[0, 'done'], [1, 'error']]);
  assert.equal(updated[0]?.loss, 0.25);
  assert.ok((updated[1]?.error?.message.length ?? 0) <= 2_000, 'long errors are cut');
  assert.equal(updated[1]?.slot, 'gpu1/1', 'the slot is kept from the start');

  model.apply({ type: 'study.settings', study: 's1', settings: { ...settings, parallelism: 4 } });
  model.apply({ type: 'study.state', study: 's1', state: 'ended', reason: 'max_evals' }, 4_000);
  const state = model.stateMessage(capabilitiesFor('ended', { controllable: true, logs: true, mlflow: true }), 4_000);
  valid(state);
  assert.deepEqual(state.status.counts, { total: 2, done: 1, ok: 1, failed: 1, cancelled: 0, running: 0, queued: 0 });
  assert.deepEqual(state.status.best, { tid: 0, loss: 0.25 });
  assert.equal(state.status.settings.parallelism, 4);
  assert.equal(state.status.endedAt, 4_000);
  assert.equal(state.capabilities?.stop.enabled, false);
  assert.deepEqual(model.importanceTrials(), [{ params: { x: 0.5 }, loss: 0.25 }]);
});

test('a NaN loss or a non-ok status is never the best', () => {
  const model = new StudyViewModel(studyHeader(info, 'live'), settings);
  model.upsert({ tid: 0, state: 'done', params: {}, loss: 'NaN', status: 'ok' });
  model.upsert({ tid: 1, state: 'done', params: {}, loss: 0.1, status: 'fail' });
  model.upsert({ tid: 2, state: 'done', params: {}, loss: 0.7, status: 'ok' });
  assert.deepEqual(model.status(0).best, { tid: 2, loss: 0.7 });
  assert.equal(model.status(0).counts.failed, 1);
});

test('a past study is read back from its journal', () => {
  const dir = tempDir('hr-view-');
  const path = join(dir, 's1.jsonl');
  const w = new JournalWriter(path);
  w.append({ k: 'study', v: 1, study: info });
  w.append({ k: 'trial', tid: 0, vals: { x: [0.2] }, params: { x: 0.2 }, at: 1_100 });
  w.append({ k: 'start', tid: 0, slot: 'local/1', attempt: 1, at: 1_200 });
  w.append({ k: 'end', tid: 0, state: 'done', summary: { status: 'ok', loss: 0.04 }, slot: 'local/1', startedAt: 1_200, endedAt: 1_900 });
  w.append({ k: 'state', state: 'ended', reason: 'max_evals', at: 2_000 });
  w.close();
  const model = StudyViewModel.fromJournal(readJournal(path));
  const init = model.init(capabilitiesFor('ended', { controllable: false, logs: true, mlflow: false }), 5_000);
  valid(init);
  assert.equal(init.study.source, 'journal');
  assert.equal(init.study.title, 'train.py:10 (fmin #1)');
  assert.equal(init.status.state, 'ended');
  assert.equal(init.status.reason, 'max_evals');
  assert.deepEqual(decodeTrials(init.trials)[0], { tid: 0, state: 'done', params: { x: 0.2 }, loss: 0.04, status: 'ok', slot: 'local/1', startedAt: 1_200, endedAt: 1_900, attempt: 1 });
  assert.equal(init.capabilities.cancel.enabled, false);
  assert.match(init.capabilities.cancel.reason ?? '', /not running in this window/);
});

test('capabilities say why a control does not apply', () => {
  const live = { controllable: true, logs: true, mlflow: true };
  assert.ok(Object.values(capabilitiesFor('running', live)).every((c) => c.enabled));
  const stopping = capabilitiesFor('stopping', live);
  assert.equal(stopping.stop.enabled, false);
  assert.equal(stopping.cancel.enabled, true);
  assert.equal(stopping.timeout.enabled, true);
  assert.equal(stopping.parallelism.enabled, false);
  const ended = capabilitiesFor('ended', live);
  for (const name of ['stop', 'cancel', 'timeout', 'policy', 'parallelism'] as const) assert.deepEqual(ended[name], { enabled: false, reason: 'The study has ended.' });
  assert.equal(ended.openLogs.enabled, true, 'logs and runs stay available after the end');
  const remote = capabilitiesFor('running', { controllable: false, notControllableReason: 'Read from MLflow.', logs: false, mlflow: false, mlflowReason: 'MLflow is not installed.' });
  assert.deepEqual(remote.stop, { enabled: false, reason: 'Read from MLflow.' });
  assert.deepEqual(remote.openRun, { enabled: false, reason: 'MLflow is not installed.' });
});

class FakeEngine implements ControlTarget {
  calls: unknown[][] = [];
  constructor(
    public state: StudyState,
    public settings: StudySettings,
  ) {}
  snapshot(id: string): { state: StudyState; settings: StudySettings } | undefined {
    return id === 's1' ? { state: this.state, settings: this.settings } : undefined;
  }
  stop(id: string): void {
    this.calls.push(['stop', id]);
  }
  cancel(id: string): void {
    this.calls.push(['cancel', id]);
  }
  setTimeout(id: string, s: number | null): void {
    this.calls.push(['setTimeout', id, s]);
  }
  setParallelism(id: string, n: number): void {
    this.calls.push(['setParallelism', id, n]);
  }
  setPolicy(id: string, p: unknown): void {
    this.calls.push(['setPolicy', id, p]);
  }
}

test('each control request is one engine call', () => {
  const engine = new FakeEngine('running', settings);
  const run = (request: ControlRequest, now = 31_000): ReturnType<typeof applyControl> => applyControl(engine, 's1', request, 1_000, now);
  assert.deepEqual(run({ action: 'stop' }), { ok: true });
  assert.deepEqual(run({ action: 'cancel' }), { ok: true });
  assert.deepEqual(run({ action: 'setTimeout', seconds: 120 }), { ok: true });
  assert.deepEqual(run({ action: 'setTimeout', seconds: null }), { ok: true });
  assert.deepEqual(run({ action: 'extendTimeout', seconds: 600 }), { ok: true });
  assert.deepEqual(run({ action: 'setParallelism', n: 3 }), { ok: true });
  assert.deepEqual(run({ action: 'setPolicy', lossThreshold: 0.1, noProgressTrials: null }), { ok: true });
  assert.deepEqual(engine.calls, [
    ['stop', 's1'],
    ['cancel', 's1'],
    ['setTimeout', 's1', 120],
    ['setTimeout', 's1', null],
    ['setTimeout', 's1', 660],
    ['setParallelism', 's1', 3],
    ['setPolicy', 's1', { lossThreshold: 0.1, noProgressTrials: null }],
  ]);
});

test('extending a study without a timeout gives it one from now; impossible requests are refused', () => {
  const engine = new FakeEngine('running', { ...settings, timeout: null, deadline: null });
  assert.deepEqual(applyControl(engine, 's1', { action: 'extendTimeout', seconds: 600 }, 1_000, 31_000), { ok: true });
  assert.deepEqual(engine.calls.pop(), ['setTimeout', 's1', 630]);
  const past = applyControl(engine, 's1', { action: 'setTimeout', seconds: 10 }, 1_000, 31_000);
  assert.equal(past.ok, false);
  assert.equal(applyControl(engine, 'nope', { action: 'stop' }, 0).ok, false);
  engine.state = 'stopping';
  assert.equal(applyControl(engine, 's1', { action: 'stop' }, 0).ok, false);
  assert.equal(applyControl(engine, 's1', { action: 'setParallelism', n: 2 }, 0).ok, false);
  assert.equal(applyControl(engine, 's1', { action: 'cancel' }, 0).ok, true);
  engine.state = 'ended';
  const ended = applyControl(engine, 's1', { action: 'cancel' }, 0);
  assert.deepEqual(ended, { ok: false, error: 'The study has ended.' });
});

test('a model fed by events tells when another record of the study has moved on without an event', () => {
  const model = new StudyViewModel(studyHeader(info, 'live'), settings);
  model.apply({ type: 'trial.queued', study: 's1', tid: 0, params: { x: 0.5 } });
  model.apply({ type: 'trial.started', study: 's1', tid: 0, slot: 'local/0', at: 2_000, attempt: 1 });
  const counts = { total: 1, ok: 0, failed: 0, cancelled: 0, running: 1, queued: 0 };
  assert.equal(model.agrees('running', counts), true);
  // A snapshot taken after a re-attach: the trial finished and another started meanwhile.
  assert.equal(model.agrees('running', { ...counts, total: 2, ok: 1 }), false);
  // The run ended without the study's end event (its driver died): same trials, another state.
  assert.equal(model.agrees('ended', counts), false);
  model.apply({ type: 'trial.finished', study: 's1', tid: 0, state: 'done', summary: { status: 'ok', loss: 0.2 }, endedAt: 3_000 });
  model.apply({ type: 'study.state', study: 's1', state: 'ended', reason: 'completed' });
  assert.equal(model.agrees('ended', { total: 1, ok: 1, failed: 0, cancelled: 0, running: 0, queued: 0 }), true);
});
