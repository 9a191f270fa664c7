// The coordinator's MLflow writes (core/src/mlflow/runWriter.ts) against a real `mlflow server`:
// the runs a study leaves, the order of the writes, and what happens when the server stops answering.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MlflowClient } from '../../core/src/mlflow/client';
import { RunWriter, type TrackedRun, type TrackingTarget } from '../../core/src/mlflow/runWriter';
import type { StudyInfo } from '../../core/src/journal/records';
import { startMlflowServer, type TestMlflowServer } from './helpers/mlflowServer';

function studyInfo(id: string): StudyInfo {
  return {
    id,
    runId: 'run-1',
    ordinal: 0,
    script: '/work/train.py',
    args: [],
    cwd: '/work',
    python: 'python3',
    executors: ['local:2'],
    callSite: { file: '/work/train.py', line: 42 },
    maxEvals: 3,
    parallelism: 2,
    timeout: null,
    trialTimeout: null,
    lossThreshold: null,
    algo: 'tpe.suggest',
    maxQueueLen: 1,
    space: [],
    createdAt: Date.now(),
  };
}

const PARAMS = { max_evals: '3', parallelism: 'None', timeout: 'None', algo: 'tpe.suggest', max_queue_len: '1' };

/** The run id a request names, for the JSON requests of the REST API. */
function runIdOf(body: unknown): string | undefined {
  if (typeof body !== 'string') return undefined;
  try {
    return (JSON.parse(body) as { run_id?: string }).run_id;
  } catch {
    return undefined; // an artifact's content
  }
}

/** A client whose requests are recorded (path and run id) in the order they were sent. */
function recordingClient(uri: string, sent: string[], options: { maxRetries?: number; requestTimeoutMs?: number } = {}): MlflowClient {
  return new MlflowClient({
    trackingUri: uri,
    maxRetries: options.maxRetries ?? 0,
    requestTimeoutMs: options.requestTimeoutMs ?? 10_000,
    fetch: (input, init) => {
      const runId = runIdOf(init?.body);
      sent.push(`${new URL(String(input)).pathname.replace('/api/2.0/mlflow/', '')}${runId ? ` ${runId}` : ''}`);
      return fetch(input, init);
    },
  });
}

function target(client: MlflowClient): TrackingTarget {
  return { uri: client.trackingUri, client, ready: () => Promise.resolve(), env: {} };
}

describe('the run writer against a real mlflow server', () => {
  let server: TestMlflowServer;
  let reader: MlflowClient;

  before(async () => {
    server = await startMlflowServer();
    reader = new MlflowClient({ trackingUri: server.uri });
  });
  after(async () => {
    await server?.stop();
  });

  it("writes a study's parent and its trials' runs as SparkTrials lays them out", async () => {
    const writer = new RunWriter(target(recordingClient(server.uri, [])));
    const study = writer.openStudy(studyInfo('20261202-000001-aaaaaa'), { params: PARAMS, actualParallelism: 2 });
    const tracked: Array<TrackedRun & { tid: number }> = [];
    const ok = study.trialStarted(0, { slot: 'local/0', host: 'localhost' }, Date.now());
    const failed = study.trialStarted(1, { slot: 'local/1', host: 'localhost' }, Date.now());
    const cancelled = study.trialStarted(2, { slot: 'local/0', host: 'localhost' }, Date.now());
    const traceback = 'Traceback (most recent call last):\n  File "train.py", line 9\nValueError: lr too high\n';
    study.trialEnded(0, ok, { state: 'done', summary: { status: 'ok', loss: 0.25 }, params: { lr: 0.01, model: 'svm' }, endedAt: Date.now(), slot: 'local/0' }, (t) => tracked.push({ ...t, tid: 0 }));
    study.trialEnded(1, failed, { state: 'error', error: { type: 'ValueError', message: 'lr too high', traceback }, params: { lr: 2, model: 'svm' }, endedAt: Date.now(), slot: 'local/1' }, (t) => tracked.push({ ...t, tid: 1 }));
    study.trialEnded(2, cancelled, { state: 'cancel', error: { type: 'Cancelled', message: 'cancelled' }, params: { lr: 1, model: 'rf' }, endedAt: Date.now() }, (t) => tracked.push({ ...t, tid: 2 }));
    assert.equal(await study.close({ counts: { ok: 1, failed: 1, cancelled: 1, total: 3 }, bestLoss: 0.25, failed: false, endReason: 'max_evals' }), true);
    assert.equal(await writer.drain(30_000), 0);

    const parent = await study.parent;
    assert.ok(parent && parent.owned);
    const parentRun = await reader.getRun(parent.parentRunId);
    assert.equal(parentRun.info.status, 'FINISHED');
    assert.equal(parentRun.info.runName, 'train:42');
    assert.deepEqual(parentRun.data.params, { ...PARAMS, actual_parallelism: '2' });
    assert.equal(parentRun.data.tags.runSource, 'hyperoptAutoTracking');
    assert.equal(parentRun.data.tags.fmin_uuid, '20261202-000001-aaaaaa');
    assert.equal(parentRun.data.tags['hyperopt_runner.call_site'], '/work/train.py:42');
    assert.deepEqual(
      { ...parentRun.data.metrics },
      { successful_trials_count: 1, failed_trials_count: 1, cancelled_trials_count: 1, total_trials_count: 3, best_trial_loss: 0.25 },
    );

    assert.deepEqual(tracked.map((t) => [t.tid, t.complete]).sort(), [[0, true], [1, true], [2, true]]);
    const [okRun, failedRun, cancelledRun] = await Promise.all([0, 1, 2].map((tid) => reader.getRun(tracked.find((t) => t.tid === tid)!.runId)));
    assert.equal(okRun!.info.status, 'FINISHED');
    assert.equal(okRun!.info.runName, 'trial 0');
    assert.equal(okRun!.data.tags['mlflow.parentRunId'], parent.parentRunId);
    assert.equal(okRun!.data.tags.trial_status, 'ok');
    assert.equal(okRun!.data.tags['hyperopt_runner.tid'], '0');
    assert.equal(okRun!.data.tags['hyperopt_runner.slot'], 'local/0');
    assert.deepEqual(okRun!.data.params, { lr: '0.01', model: 'svm' });
    assert.equal(okRun!.data.metrics.loss, 0.25);
    assert.equal(failedRun!.info.status, 'FAILED');
    assert.equal(failedRun!.data.tags.trial_status, 'error');
    assert.match(failedRun!.data.tags['hyperopt_runner.traceback'] ?? '', /ValueError: lr too high/);
    assert.equal(failedRun!.data.metrics.loss, undefined);
    const artifact = await fetch(`${server.uri}/api/2.0/mlflow-artifacts/artifacts/0/${failedRun!.info.runId}/artifacts/traceback.txt`);
    assert.equal(await artifact.text(), traceback, 'the full traceback is the run\'s traceback.txt');
    assert.equal(cancelledRun!.info.status, 'KILLED', 'a killed trial does not stay RUNNING');
    assert.equal(cancelledRun!.data.tags.trial_status, 'cancelled');
    // The parent ends after its trials' runs.
    for (const run of [okRun!, failedRun!, cancelledRun!]) assert.ok((run.info.endTime ?? 0) <= (parentRun.info.endTime ?? 0));
  });

  it("creates runs before any other write and never more at once than allowed; the script's active run stays open", async () => {
    const sent: string[] = [];
    let inFlight = 0;
    let most = 0;
    const client = new MlflowClient({
      trackingUri: server.uri,
      fetch: async (input, init) => {
        const runId = runIdOf(init?.body);
        sent.push(`${new URL(String(input)).pathname.replace('/api/2.0/mlflow/', '')}${runId ? ` ${runId}` : ''}`);
        inFlight += 1;
        most = Math.max(most, inFlight);
        try {
          return await fetch(input, init);
        } finally {
          inFlight -= 1;
        }
      },
    });
    const active = await reader.createRun({ experimentId: '0', runName: 'outer' });
    await reader.logBatch(active.info.runId, { params: { max_evals: '50' } });
    const writer = new RunWriter(target(client), { concurrency: 2 });
    const study = writer.openStudy(studyInfo('20261202-000002-bbbbbb'), { params: PARAMS, actualParallelism: 2, mlflow: { activeRunId: active.info.runId } });
    const runs = Array.from({ length: 6 }, (_, tid) => study.trialStarted(tid, { slot: 'local/0', host: 'localhost' }, Date.now()));
    await Promise.all(runs);
    for (const [tid, run] of runs.entries()) {
      study.trialEnded(tid, run, { state: 'done', summary: { status: 'ok', loss: tid }, params: { x: tid }, endedAt: Date.now() }, () => undefined);
    }
    // A trial dispatched while six trials' writes wait: its run is created ahead of them.
    const late = study.trialStarted(6, { slot: 'local/1', host: 'localhost' }, Date.now());
    assert.ok(await late);
    // Of the six trials' batches, only those already in flight (two) went out before it.
    const beforeCreate = sent.slice(0, sent.lastIndexOf('runs/create')).filter((line) => line.startsWith('runs/log-batch ') && !line.endsWith(active.info.runId)).length;
    assert.ok(beforeCreate <= 2, `the create went ahead of the queued batches:\n${sent.join('\n')}`);
    study.trialEnded(6, late, { state: 'done', summary: { status: 'ok', loss: 6 }, params: { x: 6 }, endedAt: Date.now() }, () => undefined);
    await study.close({ counts: { ok: 7, failed: 0, cancelled: 0, total: 7 }, bestLoss: 0, failed: false, endReason: 'max_evals' });
    assert.equal(await writer.drain(30_000), 0);
    assert.ok(most <= 2, `at most 2 requests in flight, saw ${most}`);
    // Each run's writes in order after its creation: its batch, then its end.
    for (const run of [...runs, late]) {
      const id = (await run)!.runId;
      const mine = sent.filter((line) => line.endsWith(id)).map((line) => line.split(' ')[0]);
      assert.deepEqual(mine, ['runs/log-batch', 'runs/update'], `${id}: ${mine.join(', ')}`);
    }
    const outer = await reader.getRun(active.info.runId);
    assert.equal(outer.info.status, 'RUNNING', "the script's own run is left open");
    assert.equal(outer.data.params.max_evals, '50');
    assert.equal(outer.data.params['max_evals_bbbbbb'], '3', 'a conflicting param name gets the study suffix, as MLflow resolves it');
    assert.equal(outer.data.metrics.total_trials_count, 7);
    const kids = await reader.searchAllRuns({ experimentIds: ['0'], filter: `tags.mlflow.parentRunId = '${active.info.runId}'` });
    assert.equal(kids.length, 7);
  });

  it('never holds a study up when the server stops answering: drain gives up at its bound, and the runs stay incomplete for the sync', async () => {
    const writer = new RunWriter(target(recordingClient(server.uri, [], { requestTimeoutMs: 3_000 })));
    const study = writer.openStudy(studyInfo('20261202-000003-cccccc'), { params: PARAMS, actualParallelism: 1 });
    const run = study.trialStarted(0, { slot: 'local/0', host: 'localhost' }, Date.now());
    assert.ok(await run);
    const tracked: TrackedRun[] = [];
    process.kill(-server.child.pid!, 'SIGSTOP');
    try {
      study.trialEnded(0, run, { state: 'done', summary: { status: 'ok', loss: 1 }, params: { x: 1 }, endedAt: Date.now() }, (t) => tracked.push(t));
      const started = Date.now();
      const left = await writer.drain(1_000);
      assert.ok(left > 0, 'writes were still going');
      // Past its bound it waits only for the request already sent, which fails by its own time
      // limit (3 s here), so the journal knows of every run that was created; nothing is sent after it.
      assert.ok(Date.now() - started < 4_500, `drain waited ${Date.now() - started} ms`);
      assert.deepEqual(tracked.map((t) => t.complete), [false]);
    } finally {
      process.kill(-server.child.pid!, 'SIGCONT');
    }
  });

  it('fails fast with nothing listening, once per study', async () => {
    const warnings: string[] = [];
    const client = new MlflowClient({ trackingUri: 'http://127.0.0.1:9', maxRetries: 1, retryBaseDelayMs: 10 });
    const writer = new RunWriter(target(client), { warn: (study, text) => warnings.push(`${study}: ${text}`) });
    const study = writer.openStudy(studyInfo('20261202-000004-dddddd'), { params: PARAMS, actualParallelism: 1 });
    const started = Date.now();
    const runs = await Promise.all([0, 1, 2].map((tid) => study.trialStarted(tid, { slot: 'local/0', host: 'localhost' }, Date.now())));
    assert.deepEqual(runs, [undefined, undefined, undefined]);
    assert.equal(await study.close({ counts: { ok: 0, failed: 0, cancelled: 0, total: 0 }, failed: false }), false);
    assert.ok(Date.now() - started < 3_000, `took ${Date.now() - started} ms`);
    assert.equal(await writer.drain(1_000), 0);
    assert.ok(warnings.some((w) => /could not create the study's MLflow run/.test(w)), warnings.join('\n'));
  });
});
