// The Runs tree's rows with tracking on, against a real mlflow server: the study store fed the
// service's messages in the order a window gets them, the runs model reading MLflow as the tree
// does (root, then an expanded experiment), and the parent run written as the runner writes it.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { EngineEvent } from '../../core/src/coordinator/events';
import type { StudyInfo } from '../../core/src/journal/records';
import { MlflowClient } from '../../core/src/mlflow/client';
import { childRunCreate, parentRunCreate } from '../../core/src/mlflow/runLayout';
import { RunsModel, type ExperimentNode, type RunsNode, type StudyNode } from '../../core/src/mlflow/runsModel';
import type { Snapshot } from '../../core/src/protocol/control';
import { RunsView } from '../../extension/src/model/runsView';
import { StudyStore } from '../../extension/src/model/studyStore';
import { present, mlflowNode } from '../../extension/src/model/treeNodes';
import { startMlflowServer, type TestMlflowServer } from './helpers/mlflowServer';

const WS = '/home/ada/proj';
const SCRIPT = `${WS}/long_study.py`;
const settings = { timeout: null, deadline: null, parallelism: 2, lossThreshold: null, noProgressTrials: null, trialTimeout: null };

function info(id: string, runId: string, createdAt: number): StudyInfo {
  return {
    id, runId, ordinal: 0, script: SCRIPT, args: [], cwd: WS, python: '/usr/bin/python3', executors: ['local:2'],
    callSite: { file: SCRIPT, line: 15 }, maxEvals: 80, parallelism: 2, timeout: null, trialTimeout: null, lossThreshold: null,
    algo: 'tpe', maxQueueLen: 1, space: [], createdAt,
  };
}

function snapshot(uri: string, runs: string[]): Snapshot {
  return {
    service: { pid: 1, version: '0.1.0', protocol: 1, workspace: WS, startedAt: 0 },
    runs: runs.map((run) => ({
      run, script: SCRIPT, args: [], cwd: WS, python: '/usr/bin/python3', executors: ['local:2'],
      journalDir: `${WS}/.hyperopt-runner/journal`, driverLog: `${WS}/.hyperopt-runner/journal/runs/${run}.log`,
      trackingUri: uri, state: 'starting' as const, startedAt: 900, studies: [],
    })),
  };
}

const studies = (nodes: RunsNode[]): StudyNode[] => nodes.filter((n): n is StudyNode => n.kind === 'study');

describe('Runs tree rows of tracked studies the service runs', () => {
  let server: TestMlflowServer;
  let client: MlflowClient;

  before(async () => {
    server = await startMlflowServer();
    client = new MlflowClient({ trackingUri: server.uri });
  });
  after(async () => {
    await server?.stop();
  });

  /** What the runner does when a study opens with tracking on: the parent run, then `study.tracking`. */
  async function openParent(study: StudyInfo, experimentId: string): Promise<Extract<EngineEvent, { type: 'study.tracking' }>> {
    const parent = await client.createRun(parentRunCreate(study, experimentId));
    return { type: 'study.tracking', study: study.id, uri: server.uri, experimentId, parentRunId: parent.info.runId };
  }

  it('shows a running study under its experiment from its parent run on, live, as one row, then ended', async () => {
    const experimentId = await client.getOrCreateExperiment('rows');
    let clock = Date.now();
    const store = new StudyStore();
    const view = new RunsView(store);
    const model = new RunsModel(client, { now: () => clock });
    view.connect(model, server.uri);
    store.applySnapshot(snapshot(server.uri, ['run1']));
    const experimentOf = async (): Promise<ExperimentNode> => {
      const root = await view.root();
      const node = root.mlflow.find((n): n is ExperimentNode => n.kind === 'experiment' && n.experimentId === experimentId);
      assert.ok(node, 'the experiment is listed');
      return node;
    };
    // The tree is open: the root and the expanded experiment are read before the study starts.
    assert.deepEqual(await model.getChildren(await experimentOf()), []);

    const study = info('S1', 'run1', clock);
    store.applyEvent('run1', { type: 'study.opened', study, journal: `${WS}/.hyperopt-runner/journal/S1.jsonl`, settings, resumed: false });
    assert.deepEqual((await view.root()).local.map((s) => s.id), ['S1'], 'before its parent run exists the study is a row at the top');

    store.applyEvent('run1', await openParent(study, experimentId));
    const events: EngineEvent[] = [
      { type: 'trial.queued', study: 'S1', tid: 0, params: { x: 1 } },
      { type: 'trial.started', study: 'S1', tid: 0, slot: 'local/0', at: clock + 10, attempt: 1 },
      { type: 'trial.queued', study: 'S1', tid: 1, params: { x: 2 } },
      { type: 'trial.started', study: 'S1', tid: 1, slot: 'local/1', at: clock + 20, attempt: 1 },
    ];
    for (const event of events) store.applyEvent('run1', event);
    const experiment = await experimentOf();
    assert.deepEqual((await view.root()).local, [], 'not at the top any more');
    let rows = studies(await model.getChildren(experiment));
    assert.deepEqual(rows.map((r) => [r.id, r.status, r.trialCount]), [['study:S1', 'RUNNING', 2]], 'under its experiment, with its trials');
    assert.equal(rows[0]?.label, 'long_study:15');
    const rowId = mlflowNode(rows[0]!).id;

    store.applyEvent('run1', { type: 'trial.finished', study: 'S1', tid: 0, state: 'done', summary: { status: 'ok', loss: 0.25 }, startedAt: clock + 10, endedAt: clock + 500 });
    store.applyEvent('run1', { type: 'trial.queued', study: 'S1', tid: 2, params: { x: 3 } });
    await experimentOf();
    rows = studies(await model.getChildren(experiment));
    assert.deepEqual(rows.map((r) => [r.id, r.trialCount, r.bestLoss]), [['study:S1', 3, 0.25]], 'its counts follow the events');

    // MLflow lists the parent run (a refresh reads the experiment again): still one row, the same.
    model.refresh(experiment);
    rows = studies(await model.getChildren(experiment));
    assert.equal(rows.length, 1);
    assert.equal(mlflowNode(rows[0]!).id, rowId);
    assert.equal(rows[0]?.live, false, "MLflow's parent run is read");
    assert.equal(rows[0]?.trialCount, 3);
    const presentOf = (node: StudyNode): ReturnType<typeof present> =>
      present(mlflowNode(node), { study: (id) => store.study(id), mlflowUi: true, now: clock });
    assert.equal(presentOf(rows[0]!).icon?.id, 'loading~spin');

    // Cancel: the study ends; MLflow has the parent KILLED only once the trials' runs are written.
    const endedAt = clock + 1_000;
    store.applyEvent('run1', { type: 'study.state', study: 'S1', state: 'ended', reason: 'cancelled' }, endedAt);
    await experimentOf();
    let row = studies(await model.getChildren(experiment))[0]!;
    assert.deepEqual([row.status, row.endReason, row.durationMs], ['KILLED', 'cancelled', 1_000], 'ended while MLflow still says RUNNING');
    assert.equal(presentOf(row).icon?.id, 'circle-slash');
    clock += 60_000;
    row = model.getNode(row.id) as StudyNode;
    assert.equal(row.durationMs, 1_000, 'the duration stands still');

    await client.finishRun(row.runId!, 'KILLED', endedAt);
    model.refresh(experiment);
    row = studies(await model.getChildren(experiment))[0]!;
    assert.deepEqual([row.id, row.status, row.durationMs], ['study:S1', 'KILLED', 1_000], "MLflow's end agrees");
  });

  it('shows a study whose driver was killed as killed, with MLflow still RUNNING', async () => {
    let clock = Date.now();
    const store = new StudyStore();
    const view = new RunsView(store);
    const model = new RunsModel(client, { now: () => clock });
    view.connect(model, server.uri);
    store.applySnapshot(snapshot(server.uri, ['run2']));
    await view.root();
    // The run makes its experiment after the tree read the root.
    const experimentId = await client.getOrCreateExperiment('killed');

    const study = info('S2', 'run2', clock);
    store.applyEvent('run2', { type: 'study.opened', study, journal: `${WS}/.hyperopt-runner/journal/S2.jsonl`, settings, resumed: false });
    const tracking = await openParent(study, experimentId);
    store.applyEvent('run2', tracking);
    await client.createRun(childRunCreate({ studyId: 'S2', tid: 0, experimentId, parentRunId: tracking.parentRunId, startTime: clock + 5 }));
    store.applyEvent('run2', { type: 'trial.started', study: 'S2', tid: 0, slot: 'local/0', at: clock + 5, attempt: 1 });
    // The experiment was made after the root was read: until the model has read it for the live
    // study, the study stays at the top; then it moves under it.
    assert.deepEqual((await view.root()).local.map((s) => s.id), ['S2']);
    await model.whenIdle();
    const root = await view.root();
    assert.deepEqual(root.local, []);
    const experiment = root.mlflow.find((n): n is ExperimentNode => n.kind === 'experiment' && n.experimentId === experimentId);
    assert.ok(experiment, 'the new experiment is listed');
    assert.equal(root.mlflow[0]?.id, experiment.id, 'first, as the most recently updated');
    assert.equal(studies(await model.getChildren(experiment))[0]?.status, 'RUNNING');

    // The script is killed: the run ends without the study's end event.
    clock += 2_000;
    store.applyRunEnded('run2', 137);
    await view.root();
    const row = studies(await model.getChildren(experiment))[0]!;
    assert.deepEqual([row.id, row.status, row.endReason], ['study:S2', 'KILLED', 'interrupted']);
    const ended = store.study('S2')!.endedAt!;
    assert.equal(row.durationMs, ended - study.createdAt);
    const shown = present(mlflowNode(row), { study: (id) => store.study(id), mlflowUi: true, now: clock });
    assert.equal(shown.icon?.id, 'warning');
    clock += 60_000;
    assert.equal((model.getNode(row.id) as StudyNode).durationMs, ended - study.createdAt, 'the duration stands still');
    model.refresh(experiment);
    const reread = studies(await model.getChildren(experiment))[0]!;
    assert.equal(reread.live, false);
    assert.equal((await client.getRun(reread.runId!)).info.status, 'RUNNING', 'MLflow still has the parent RUNNING');
    assert.equal(reread.status, 'KILLED', 'the engine knows better');
  });

  it('leaves studies of another server and untracked studies at the top', async () => {
    const store = new StudyStore();
    const view = new RunsView(store);
    view.connect(new RunsModel(client), server.uri);
    store.applySnapshot(snapshot(server.uri, ['run3']));
    const elsewhere = info('S3', 'run3', Date.now());
    const untracked = info('S4', 'run3', Date.now() + 1);
    for (const s of [elsewhere, untracked]) {
      store.applyEvent('run3', { type: 'study.opened', study: s, journal: `${WS}/.hyperopt-runner/journal/${s.id}.jsonl`, settings, resumed: false });
    }
    store.applyEvent('run3', { type: 'study.tracking', study: 'S3', uri: 'http://127.0.0.1:1', experimentId: '0', parentRunId: 'p' });
    assert.deepEqual((await view.root()).local.map((s) => s.id), ['S4', 'S3']);
  });
});
