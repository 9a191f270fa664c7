// Unit tests of the extension's vscode-free parts: settings validation, the executor quick pick,
// the CodeLens over fmin calls, the study store fed by service messages, the tree's presentation
// and the status bar text.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { EngineEvent } from '../../core/src/coordinator/events';
import type { StudyInfo } from '../../core/src/journal/records';
import type { Snapshot } from '../../core/src/protocol/control';
import { scanSource } from '../../core/src/scan/scan-source';
import { COMMANDS } from '../../extension/src/commandIds';
import { executorChoices, sshEntryFromInput } from '../../extension/src/model/executorChoices';
import { formatDuration, formatLoss, formatStartTime } from '../../extension/src/model/format';
import { lensesFor } from '../../extension/src/model/lenses';
import { viewModelOf } from '../../extension/src/model/panelModel';
import { readSettings } from '../../extension/src/model/settings';
import { statusText } from '../../extension/src/model/statusText';
import { bestOf, countsOf, StudyStore } from '../../extension/src/model/studyStore';
import type { StudyNode, TrialNode } from '../../core/src/mlflow/runsModel';
import { mlflowNode, present, studyNode, trialNode } from '../../extension/src/model/treeNodes';

const WS = '/home/ada/proj';
const SCRIPT = `${WS}/train.py`;

function info(id: string, line = 3, maxEvals = 4): StudyInfo {
  return {
    id, runId: 'run1', ordinal: 0, script: SCRIPT, args: [], cwd: WS, python: '/usr/bin/python3', executors: ['local:2'],
    callSite: { file: SCRIPT, line }, maxEvals, parallelism: 2, timeout: 60, trialTimeout: null, lossThreshold: null,
    algo: 'tpe', maxQueueLen: 1, space: [], createdAt: 1_000,
  };
}

const settings = { timeout: 60, deadline: null, parallelism: 2, lossThreshold: null, noProgressTrials: null, trialTimeout: null };

function liveStore(): StudyStore {
  const store = new StudyStore();
  const snapshot: Snapshot = {
    service: { pid: 1, version: '0.1.0', protocol: 1, workspace: WS, startedAt: 0 },
    runs: [{ run: 'run1', script: SCRIPT, args: [], cwd: WS, python: '/usr/bin/python3', executors: ['local:2'], journalDir: `${WS}/.hyperopt-runner/journal`, driverLog: `${WS}/.hyperopt-runner/journal/runs/run1.log`, trackingUri: null, state: 'running', startedAt: 900, studies: [] }],
  };
  store.applySnapshot(snapshot);
  const events: EngineEvent[] = [
    { type: 'study.opened', study: info('s1'), journal: `${WS}/.hyperopt-runner/journal/s1.jsonl`, settings, resumed: false },
    { type: 'trial.queued', study: 's1', tid: 0, params: { x: 1 } },
    { type: 'trial.started', study: 's1', tid: 0, slot: 'local/0', at: 1_100, attempt: 1 },
    { type: 'trial.finished', study: 's1', tid: 0, state: 'done', summary: { status: 'ok', loss: 0.5 }, startedAt: 1_100, endedAt: 1_600 },
    { type: 'trial.queued', study: 's1', tid: 1, params: { x: 2 } },
    { type: 'trial.started', study: 's1', tid: 1, slot: 'local/1', at: 1_200, attempt: 1 },
    { type: 'trial.finished', study: 's1', tid: 1, state: 'done', summary: { status: 'ok', loss: 0.25 }, startedAt: 1_200, endedAt: 1_900 },
    { type: 'trial.queued', study: 's1', tid: 2, params: { x: 3 } },
    { type: 'trial.started', study: 's1', tid: 2, slot: 'local/0', at: 1_700, attempt: 1 },
  ];
  for (const event of events) store.applyEvent('run1', event, 1_000);
  return store;
}

test('settings: defaults read cleanly', () => {
  const { settings: s, problems } = readSettings(() => undefined, WS);
  assert.deepEqual(problems, []);
  assert.deepEqual(s.executors, ['local']);
  assert.equal(s.trackingUri, '');
  assert.equal(s.journalDirectory, `${WS}/.hyperopt-runner/journal`);
  assert.equal(s.studyTimeout, null);
});

test('settings: each invalid value gets a message naming the setting, the value and what is expected', () => {
  const values: Record<string, unknown> = {
    executors: ['local:2', 'cluster:9', 7],
    studyTimeout: -5,
    trialTimeout: 'soon',
    parallelism: 2.5,
    trackingUri: 'databricks://x',
    runsPageSize: 1,
    python: 'venv/bin/python',
  };
  const { settings: s, problems } = readSettings((key) => values[key], WS);
  const messages = problems.map((p) => p.message);
  assert.deepEqual(messages, [
    "hyperoptRunner.executors[1]: invalid --executor value 'cluster:9': unknown executor kind 'cluster'; use local[:N] (N workers) or ssh:HOST[,HOST...]",
    'hyperoptRunner.executors[2]: 7 is not valid: expected a string such as "local:4" or "ssh:gpu1,gpu2"',
    'hyperoptRunner.studyTimeout: -5 is not valid: expected a positive number of seconds, or empty for none',
    "hyperoptRunner.trialTimeout: 'soon' is not valid: expected a positive number of seconds, or empty for none",
    'hyperoptRunner.parallelism: 2.5 is not valid: expected a whole number from 1 to 4096, or empty for one trial per executor slot',
    "hyperoptRunner.trackingUri: 'databricks://x' is not valid: expected an http(s):// tracking server, a sqlite:/// or file: store, or empty for the embedded server",
    'hyperoptRunner.runsPageSize: 1 is not valid: expected a whole number from 5 to 1000',
  ]);
  // The valid parts still apply; invalid ones fall back to their defaults.
  assert.deepEqual(s.executors, ['local:2']);
  assert.equal(s.python, `${WS}/venv/bin/python`);
  assert.equal(s.runsPageSize, 50);
  assert.equal(readSettings((k) => (k === 'tracking' ? false : undefined), WS).settings.trackingUri, null);
});

test('executor quick pick: each executor, combinations, the last choice first, then Add SSH hosts', () => {
  const items = executorChoices(['local:4', 'ssh:gpu1,gpu2', 'ssh:tpu'], ['ssh:tpu']);
  assert.deepEqual(
    items.map((i) => i.label),
    ['ssh:tpu', 'local:4', 'ssh:gpu1,gpu2', 'local:4 + ssh:gpu1,gpu2', 'local:4 + ssh:tpu', 'local:4 + ssh:gpu1,gpu2 + ssh:tpu', 'Add SSH hosts...'],
  );
  assert.equal(items[0]?.kind === 'choice' && items[0].last, true);
  assert.deepEqual(sshEntryFromInput('gpu1, ada@gpu2:2222'), { entry: 'ssh:gpu1,ada@gpu2:2222' });
  assert.ok('error' in sshEntryFromInput('gpu1; rm -rf /'));
  assert.ok('error' in sshEntryFromInput('  '));
});

test('CodeLens: Run lenses over idle calls, the study controls over the running one', () => {
  const text = 'from hyperopt import fmin as f, hp\nx = 1\nbest = f(lambda v: v, hp.uniform("v", 0, 1),\n         max_evals=4)\nother = f(lambda v: v, hp.uniform("v", 0, 1), max_evals=4)\n';
  const calls = scanSource(text);
  assert.equal(calls.length, 2);
  const idle = lensesFor(SCRIPT, calls, [], 'local:2');
  assert.deepEqual(idle.map((l) => [l.line, l.title, l.command]), [
    [2, '$(play) Run with executor...', COMMANDS.runWithExecutor],
    [2, 'Run on local:2', COMMANDS.runOnLastExecutor],
    [4, '$(play) Run with executor...', COMMANDS.runWithExecutor],
    [4, 'Run on local:2', COMMANDS.runOnLastExecutor],
  ]);
  const store = liveStore();
  const running = lensesFor(SCRIPT, calls, store.activeStudies(), 'local:2', 2_000);
  assert.deepEqual(running.filter((l) => l.line === 2).map((l) => l.title), ['$(debug-stop) Stop', '$(close) Cancel', '$(watch) Timeout...', '$(graph) 2/4 · 59s left']);
  assert.deepEqual(running.filter((l) => l.line === 2).map((l) => l.args), [['s1'], ['s1'], ['s1'], ['s1']]);
  assert.equal(running.filter((l) => l.line === 4)[0]?.command, COMMANDS.runWithExecutor);
});

test('study store: a snapshot and events give counts and the best trial; the run ending ends its studies', () => {
  const store = liveStore();
  const study = store.study('s1')!;
  assert.deepEqual(countsOf(study), { total: 3, finished: 2, ok: 2, failed: 0, cancelled: 0, running: 1, queued: 0 });
  assert.equal(bestOf(study)?.tid, 1);
  assert.deepEqual(store.activeStudies().map((s) => s.id), ['s1']);
  store.applyEvent('run1', { type: 'trial.finished', study: 's1', tid: 2, state: 'error', error: { type: 'ValueError', message: 'boom' }, endedAt: 2_000 });
  assert.equal(countsOf(store.study('s1')!).failed, 1);
  store.applyRunEnded('run1', 1);
  assert.deepEqual(store.activeStudies(), []);
  assert.equal(store.study('s1')?.reason, 'interrupted');
});

test('tree: studies and trials presented with status icons, loss and duration, the best trial marked', () => {
  const store = liveStore();
  const ctx = { study: (id: string) => store.study(id), mlflowUi: false, now: 2_500 };
  const study = present(studyNode('s1'), ctx);
  assert.equal(study.label, 'train.py:3');
  assert.equal(study.description, `2/4 · best 0.25 · 1.5s · ${formatStartTime(1_000, 2_500)}`);
  assert.match(study.tooltip ?? '', /^started /m);
  assert.equal(study.icon?.id, 'loading~spin');
  assert.deepEqual(study.command, { command: 'hyperoptRunner.openCharts', title: 'Open Charts', args: ['s1'] }, 'a click opens its charts');
  assert.equal(study.contextValue, 'study charts script logs runId running');
  assert.match(present(studyNode('s1'), { ...ctx, study: () => ({ ...store.study('s1')!, state: 'ended' as const }) }).contextValue ?? '', /\bidle\b/, 'an ended study can be run again');
  assert.equal(study.collapsible, 'expanded');
  const best = present(trialNode('s1', 1), ctx);
  assert.equal(best.description, '★ best · loss 0.25 · 0.7s');
  assert.equal(best.icon?.id, 'star-full');
  assert.equal(present(trialNode('s1', 0), ctx).description, 'loss 0.5 · 0.5s');
  assert.equal(present(trialNode('s1', 2), ctx).description, 'running · 0.8s');
  assert.equal(present(trialNode('s1', 2), ctx).icon?.id, 'sync~spin');
});

test('status bar: done/total, best loss and time left; several running studies are counted', () => {
  const store = liveStore();
  const status = statusText(store.activeStudies(), 2_000);
  assert.equal(status?.text, '$(loading~spin) 2/4 · best 0.25 · 59s left');
  assert.equal(status?.studyId, 's1');
  assert.equal(statusText([], 0), undefined);
  assert.equal(formatLoss(Number.NaN), 'NaN');
  assert.equal(formatLoss(1.23456789e-7), '1.235e-7');
  assert.equal(formatDuration(125_000), '2m05s');
});

test('start times: the clock today, the day this year, the date before (two panels or rows of one script tell apart)', () => {
  const now = new Date(2026, 11, 3, 18, 5).getTime();
  assert.equal(formatStartTime(new Date(2026, 11, 3, 9, 7).getTime(), now), '09:07');
  assert.equal(formatStartTime(new Date(2026, 11, 2, 14, 32).getTime(), now), 'Dec 2 14:32');
  assert.equal(formatStartTime(new Date(2025, 0, 9, 23, 59).getTime(), now), '2025-01-09 23:59');
  assert.equal(formatStartTime(undefined, now), '');
  const ctx = { study: () => undefined, mlflowUi: false, now };
  const study: StudyNode = { kind: 'study', id: 's', parent: 'e', runId: 'r0', label: 'train.py:3', status: 'FINISHED', startTime: new Date(2026, 11, 3, 9, 7).getTime(), durationMs: 9_000, trialCount: 40, bestLoss: 0.1, live: false };
  assert.equal(present(mlflowNode(study), ctx).description, 'best 0.1 · 40 trials · 9.0s · 09:07');
  assert.equal(present(mlflowNode(study), ctx).command, undefined, 'a run of no study known here opens nothing on a click');
  assert.deepEqual(present(mlflowNode({ ...study, studyId: 'st' }), ctx).command?.args, ['st']);
});

test('durations are rounded before they are split: no 60 in the seconds or minutes place', () => {
  assert.equal(formatDuration(9_940), '9.9s');
  assert.equal(formatDuration(9_960), '10s');
  assert.equal(formatDuration(59_600), '1m00s');
  assert.equal(formatDuration(359_600), '6m00s');
  assert.equal(formatDuration(359_400), '5m59s');
  assert.equal(formatDuration(3_599_600), '1h00m');
  assert.equal(formatDuration(7_380_000), '2h03m');
});

test('tree: a cancelled trial from MLflow (KILLED) says cancelled, as the panel does', () => {
  const ctx = { study: () => undefined, mlflowUi: false, now: 5_000 };
  const trial = (status: TrialNode['status']): TrialNode => ({
    kind: 'trial', id: `t-${status}`, parent: 's', runId: 'r', tid: 3, label: 'trial 3', status, startTime: 1_000,
    ...(status === 'SCHEDULED' ? {} : { durationMs: 500 }), isBest: false, params: {}, live: false,
  });
  assert.equal(present(mlflowNode(trial('KILLED')), ctx).description, 'cancelled · 0.5s');
  assert.equal(present(mlflowNode(trial('FAILED')), ctx).description, 'failed · 0.5s');
  assert.equal(present(mlflowNode(trial('SCHEDULED')), ctx).description, 'queued');
  const study: StudyNode = { kind: 'study', id: 's', parent: 'e', runId: 'r0', label: 'train:3', status: 'KILLED', trialCount: 2, live: false };
  assert.match(present(mlflowNode(study), ctx).tooltip ?? '', /^status cancelled$/m);
  assert.doesNotMatch(present(mlflowNode(study), ctx).tooltip ?? '', /killed/i);
});

test("the Runs view's welcome text has no markdown code spans: VS Code shows their backticks as typed", () => {
  const root = join(__dirname, '../..');
  const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { contributes: { viewsWelcome: Array<{ view: string; contents: string }> } };
  const nls = JSON.parse(readFileSync(join(root, 'package.nls.json'), 'utf8')) as Record<string, string>;
  const welcomes = manifest.contributes.viewsWelcome.map((w) => w.contents.replace(/^%(.+)%$/, (_, key: string) => nls[key] ?? `missing ${key}`));
  assert.ok(welcomes.length > 0);
  for (const text of welcomes) {
    assert.doesNotMatch(text, /^missing /);
    assert.ok(!text.includes('`'), text);
  }
});

test("panel: an ended study's elapsed time stops at its end, not when the panel opens", () => {
  const store = liveStore();
  store.applyEvent('run1', { type: 'trial.finished', study: 's1', tid: 2, state: 'done', summary: { status: 'ok', loss: 0.75 }, startedAt: 1_700, endedAt: 9_500 });
  store.applyEvent('run1', { type: 'study.state', study: 's1', state: 'ended', reason: 'max_evals' }, 10_000);
  const opened = 1_000 + 88_000;
  const status = viewModelOf(store.study('s1')!).status(opened);
  assert.equal(status.state, 'ended');
  assert.equal(status.reason, 'max_evals');
  assert.equal(status.endedAt, 10_000);
  assert.equal(status.startedAt, 1_000, 'a 9 s study');

  // A study a snapshot reports as ended carries no end time: its last trial's end stands for it.
  const reported = { ...store.study('s1')!, endedAt: undefined };
  assert.equal(viewModelOf(reported).status(opened).endedAt, 9_500);
  assert.equal(present(studyNode('s1'), { study: () => reported, mlflowUi: false, now: opened }).description, `3/4 · best 0.25 · 8.5s · max_evals · ${formatStartTime(1_000, opened)}`);
  // A running one keeps counting.
  assert.equal(viewModelOf(liveStore().study('s1')!).status(opened).endedAt, null);
});
