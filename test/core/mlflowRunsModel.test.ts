import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { MlflowClient } from '../../core/src/mlflow/client';
import {
  RunsModel,
  type ExperimentNode,
  type RunsModelChange,
  type RunsNode,
  type StudyNode,
  type TrialNode,
} from '../../core/src/mlflow/runsModel';
import { runMlflowPython, startMlflowServer, type TestMlflowServer } from './helpers/mlflowServer';

/** Runs Python that prints `RESULT <json>` last; other output (mlflow's run links) is ignored. */
async function python<T>(uri: string, code: string): Promise<T> {
  const out = await runMlflowPython(uri, `import json, mlflow\n${code}`);
  const line = out
    .split('\n')
    .reverse()
    .find((l) => l.startsWith('RESULT '));
  assert.ok(line, `no RESULT line in: ${out}`);
  return JSON.parse(line.slice('RESULT '.length)) as T;
}

/**
 * The layout the runtime writes: a parent run per study tagged with the study id (and, as
 * SparkTrials does, runSource and fmin_uuid), a child run per trial with its tid tag, the
 * point's params and metric loss, FINISHED or FAILED.
 */
const STUDY_SCRIPT = `
def study(experiment, study_id, trials, name=None):
    mlflow.set_experiment(experiment)
    parent = mlflow.start_run(run_name=name or f"study {study_id}", tags={
        "hyperopt_runner.study_id": study_id, "runSource": "hyperoptAutoTracking", "fmin_uuid": study_id})
    parent_id = parent.info.run_id
    mlflow.log_params({"max_evals": len(trials), "algo": "tpe.suggest", "parallelism": 2})
    mlflow.end_run()
    for tid, loss, status in trials:
        mlflow.start_run(run_name=f"trial {tid}", parent_run_id=parent_id, tags={
            "hyperopt_runner.tid": str(tid), "fmin_uuid": study_id,
            "trial_status": "ok" if status == "FINISHED" else "fail"})
        mlflow.log_params({"x": round(tid * 0.1, 3), "kind": "odd" if tid % 2 else "even"})
        mlflow.log_metric("loss", loss)
        mlflow.end_run(status=status)
    return parent_id
`;

function byKind<K extends RunsNode['kind']>(nodes: RunsNode[], kind: K): Array<Extract<RunsNode, { kind: K }>> {
  return nodes.filter((n): n is Extract<RunsNode, { kind: K }> => n.kind === kind);
}

describe('RunsModel against a real mlflow server', () => {
  let server: TestMlflowServer;
  let client: MlflowClient;
  let ids: { paged: string; plainParent: string; lonely: string; experiment: string };

  before(async () => {
    server = await startMlflowServer();
    client = new MlflowClient({ trackingUri: server.uri });
    // Twelve trials: tid 7 has the best loss; tid 3 is NaN; tid 10 has a lower loss but FAILED.
    ids = await python(
      server.uri,
      `${STUDY_SCRIPT}
trials = [(tid, (tid - 7) ** 2 + 0.5, "FINISHED") for tid in range(12)]
trials[3] = (3, float("nan"), "FINISHED")
trials[10] = (10, -100.0, "FAILED")
paged = study("tree", "S-paged", trials)
# An untagged top-level run with a child counts as a study; one without children does not.
mlflow.set_experiment("tree")
with mlflow.start_run(run_name="plain parent") as plain:
    with mlflow.start_run(run_name="plain child", nested=True):
        mlflow.log_metric("loss", 2.0)
with mlflow.start_run(run_name="lonely run") as lonely:
    mlflow.log_metric("loss", 1.0)
experiment = mlflow.get_experiment_by_name("tree").experiment_id
print("RESULT " + json.dumps({"paged": paged, "plainParent": plain.info.run_id, "lonely": lonely.info.run_id, "experiment": experiment}))
`,
    );
  });
  after(async () => {
    await server?.stop();
  });

  it('shows experiments > studies > trials, with studies found by tag or by their children', async () => {
    const model = new RunsModel(client);
    const experiments = byKind(await model.getChildren(), 'experiment');
    const tree = experiments.find((e) => e.label === 'tree') as ExperimentNode;
    assert.ok(tree);
    assert.equal(tree.experimentId, ids.experiment);
    assert.ok(experiments.some((e) => e.label === 'Default'));
    assert.equal(model.hasMore(), false);

    const studies = byKind(await model.getChildren(tree), 'study');
    assert.deepEqual(studies.map((s) => s.label).sort(), ['plain parent', 'study S-paged']);
    assert.ok(!studies.some((s) => s.runId === ids.lonely));
    const paged = studies.find((s) => s.runId === ids.paged) as StudyNode;
    assert.equal(paged.studyId, 'S-paged');
    assert.equal(paged.parent, tree.id);
    assert.equal(paged.status, 'FINISHED');
    assert.equal(paged.live, false);

    const plain = studies.find((s) => s.runId === ids.plainParent) as StudyNode;
    const plainTrials = byKind(await model.getChildren(plain), 'trial');
    assert.equal(plainTrials.length, 1);
    assert.equal(plainTrials[0]?.loss, 2.0);
    assert.equal(plainTrials[0]?.isBest, true);
    assert.deepEqual(await model.getChildren(plainTrials[0]), []);
  });

  it('pages trials with loadMore and marks the best finished trial', async () => {
    const model = new RunsModel(client, { pageSize: 5, experimentIds: [ids.experiment] });
    const [tree] = byKind(await model.getChildren(), 'experiment');
    assert.ok(tree);
    const study = byKind(await model.getChildren(tree), 'study').find((s) => s.runId === ids.paged) as StudyNode;
    const changes: RunsModelChange[] = [];
    model.onDidChange((c) => changes.push(c));

    let trials = byKind(await model.getChildren(study), 'trial');
    assert.deepEqual(
      trials.map((t) => t.tid),
      [0, 1, 2, 3, 4],
    );
    assert.equal(model.hasMore(study), true);
    // The best trial is on a later page: its loss is known from the server, no loaded node is
    // marked. The parent has no best_trial_loss, so the server is asked behind the page.
    await model.whenIdle();
    assert.deepEqual(
      changes.map((c) => c.node?.id),
      [study.id],
      'the best loss arriving changes the study node',
    );
    changes.length = 0;
    trials = byKind(await model.getChildren(study), 'trial');
    assert.equal(model.getNode(study.id)?.kind, 'study');
    assert.equal((model.getNode(study.id) as StudyNode).bestLoss, 0.5);
    assert.ok(trials.every((t) => !t.isBest));
    assert.ok(Number.isNaN(trials[3]?.loss));
    assert.deepEqual(trials[2]?.params, { x: '0.2', kind: 'even' });
    assert.equal(trials[0]?.status, 'FINISHED');
    assert.ok((trials[0]?.durationMs ?? -1) >= 0);

    trials = byKind(await model.loadMore(study), 'trial');
    assert.equal(trials.length, 10);
    assert.equal(changes.length, 1);
    assert.equal(changes[0]?.node?.id, study.id);
    trials = byKind(await model.loadMore(study), 'trial');
    assert.deepEqual(
      trials.map((t) => t.tid),
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
    );
    assert.equal(model.hasMore(study), false);
    assert.equal(new Set(trials.map((t) => t.runId)).size, 12, 'every child run exactly once');
    const best = trials.filter((t) => t.isBest);
    assert.deepEqual(
      best.map((t) => t.tid),
      [7],
    );
    const failed = trials.find((t) => t.tid === 10) as TrialNode;
    assert.equal(failed.status, 'FAILED');
    assert.equal(failed.loss, -100);
    assert.equal(failed.isBest, false);
    assert.equal((model.getNode(best[0]?.id ?? '') as TrialNode).tid, 7);
  });

  it("reads a whole study with loadAll and takes a finished study's best loss from its parent", async () => {
    const parent = await python<string>(
      server.uri,
      `${STUDY_SCRIPT}
trials = [(tid, (tid - 7) ** 2 + 0.5, "FINISHED") for tid in range(12)]
parent = study("final", "S-final", trials)
mlflow.MlflowClient().log_metric(parent, "best_trial_loss", 0.5)
print("RESULT " + json.dumps(parent))
`,
    );
    const bodies: string[] = [];
    const counting = new MlflowClient({
      trackingUri: server.uri,
      fetch: (input, init) => {
        bodies.push(typeof init?.body === 'string' ? init.body : '');
        return fetch(input, init);
      },
    });
    const model = new RunsModel(counting, { pageSize: 5, bulkPageSize: 4 });
    const experiment = byKind(await model.getChildren(), 'experiment').find((e) => e.label === 'final') as ExperimentNode;
    const study = byKind(await model.getChildren(experiment), 'study').find((s) => s.runId === parent) as StudyNode;
    const first = byKind(await model.getChildren(study), 'trial');
    assert.equal(first.length, 5);
    await model.whenIdle();
    assert.equal((model.getNode(study.id) as StudyNode).bestLoss, 0.5, "the parent's best_trial_loss");
    assert.ok(!bodies.some((b) => b.includes('metrics.loss')), 'no search ordered by the loss metric');

    bodies.length = 0;
    const all = byKind(await model.loadAll(study), 'trial');
    assert.deepEqual(
      all.map((t) => t.tid),
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
    );
    assert.equal(new Set(all.map((t) => t.runId)).size, 12);
    assert.equal(model.hasMore(study), false);
    assert.deepEqual(
      bodies.map((b) => (JSON.parse(b) as { max_results: number }).max_results),
      [4, 4, 4],
      'the rest of the study in pages of bulkPageSize',
    );
    assert.deepEqual(
      all.filter((t) => t.isBest).map((t) => t.tid),
      [7],
    );
    assert.deepEqual(await model.loadAll(study), await model.getChildren(study), 'a loaded study is not read again');
    assert.equal(bodies.length, 3);
  });

  it("counts a collapsed study's trials from its parent's total_trials_count until all are loaded", async () => {
    const parent = await python<string>(
      server.uri,
      `${STUDY_SCRIPT}
trials = [(tid, float(tid), "FINISHED") for tid in range(12)]
parent = study("counted", "S-counted", trials)
mlflow.MlflowClient().log_metric(parent, "total_trials_count", 12)
print("RESULT " + json.dumps(parent))
`,
    );
    const model = new RunsModel(client, { pageSize: 5 });
    const experiment = byKind(await model.getChildren(), 'experiment').find((e) => e.label === 'counted') as ExperimentNode;
    const study = byKind(await model.getChildren(experiment), 'study').find((s) => s.runId === parent) as StudyNode;
    assert.equal(study.trialCount, 12, 'collapsed, no trial loaded: the parent says 12');
    assert.equal(byKind(await model.getChildren(study), 'trial').length, 5);
    assert.equal((model.getNode(study.id) as StudyNode).trialCount, 12, 'one page of three loaded');
    assert.equal(byKind(await model.loadAll(study), 'trial').length, 12);
    assert.equal((model.getNode(study.id) as StudyNode).trialCount, 12, 'all loaded');

    // A parent without the count (a study still running) shows the trials loaded so far.
    const tree = byKind(await model.getChildren(), 'experiment').find((e) => e.label === 'tree') as ExperimentNode;
    const uncounted = byKind(await model.getChildren(tree), 'study').find((s) => s.runId === ids.paged) as StudyNode;
    assert.equal(uncounted.trialCount, 0);
    assert.equal(byKind(await model.getChildren(uncounted), 'trial').length, 5);
    assert.equal((model.getNode(uncounted.id) as StudyNode).trialCount, 5);
  });

  it('shows live trials before MLflow has the runs, then reconciles with them', async () => {
    const experimentId = await client.getOrCreateExperiment('live');
    const model = new RunsModel(client);
    const liveExperiment = byKind(await model.getChildren(), 'experiment').find((e) => e.label === 'live') as ExperimentNode;
    assert.deepEqual(await model.getChildren(liveExperiment), []);
    const changes: Array<string | undefined> = [];
    model.onDidChange((c) => changes.push(c.node?.id));

    const t0 = Date.now() - 5000;
    model.applyLiveEvent({ studyId: 'L1', experimentId, studyLabel: 'live study', tid: 0, state: 'queued', params: { x: 0.5, kind: 'even' } });
    model.applyLiveEvent({ studyId: 'L1', tid: 0, state: 'running', startedAt: t0 });
    model.applyLiveEvent({ studyId: 'L1', tid: 1, state: 'running', startedAt: t0 + 10, params: { x: 0.1, kind: null } });
    model.applyLiveEvent({ studyId: 'L1', tid: 0, state: 'done', loss: 0.3, resultStatus: 'ok', endedAt: t0 + 1000 });
    assert.equal(changes[0], liveExperiment.id, 'a new study changes its experiment');
    assert.ok(changes.slice(1).every((id) => id === 'study:L1'));

    let studies = byKind(await model.getChildren(liveExperiment), 'study');
    assert.equal(studies.length, 1);
    const study = studies[0] as StudyNode;
    assert.equal(study.id, 'study:L1');
    assert.equal(study.live, true);
    assert.equal(study.label, 'live study');
    assert.equal(study.status, 'RUNNING');
    assert.equal(study.startTime, t0);
    assert.equal(model.hasMore(study), false);
    let trials = byKind(await model.getChildren(study), 'trial');
    assert.deepEqual(
      trials.map((t) => [t.id, t.status, t.loss, t.isBest, t.live]),
      [
        ['study:L1/tid:0', 'FINISHED', 0.3, true, true],
        ['study:L1/tid:1', 'RUNNING', undefined, false, true],
      ],
    );
    assert.deepEqual(trials[0]?.params, { x: '0.5', kind: 'even' });
    assert.equal(trials[0]?.durationMs, 1000);
    assert.deepEqual(trials[1]?.params, { x: '0.1', kind: 'None' });

    // Now the runtime's runs land in MLflow: trial 1 finished there with a better loss.
    const parent = await python<string>(
      server.uri,
      `${STUDY_SCRIPT}
print("RESULT " + json.dumps(study("live", "L1", [(0, 0.3, "FINISHED"), (1, 0.1, "FINISHED")], name="live study run")))
`,
    );
    // The engine's last event for trial 1 names its run; the study is found by its run id too.
    model.applyLiveEvent({ studyRunId: parent, tid: 1, state: 'done', loss: 0.1, resultStatus: 'ok', endedAt: Date.now() });
    model.refresh(liveExperiment);
    studies = byKind(await model.getChildren(liveExperiment), 'study');
    assert.equal(studies.length, 1, 'the live study and its MLflow run are one node');
    const reconciled = studies[0] as StudyNode;
    assert.equal(reconciled.id, 'study:L1', 'the node keeps its id');
    assert.equal(reconciled.runId, parent);
    assert.equal(reconciled.live, false);
    assert.equal(reconciled.label, 'live study run');
    assert.equal(reconciled.status, 'FINISHED');
    trials = byKind(await model.getChildren(reconciled), 'trial');
    assert.deepEqual(
      trials.map((t) => [t.id, t.status, t.loss, t.isBest, t.live, t.runId !== undefined]),
      [
        ['study:L1/tid:0', 'FINISHED', 0.3, false, false, true],
        ['study:L1/tid:1', 'FINISHED', 0.1, true, false, true],
      ],
    );
    assert.deepEqual(trials[1]?.params, { x: '0.1', kind: 'odd' }, "MLflow's params win once it has the run");
    assert.equal(model.findStudy({ studyId: 'L1' })?.runId, parent);
    assert.equal(model.findStudy({ runId: parent })?.id, 'study:L1');
  });

  it("shows a study the engine ended as ended, with a fixed duration, while MLflow's parent is RUNNING", async () => {
    const parent = await python<string>(
      server.uri,
      `${STUDY_SCRIPT}
parent = study("ending", "S-ending", [(0, 1.0, "FINISHED")])
mlflow.MlflowClient().set_terminated(parent, status="RUNNING")
print("RESULT " + json.dumps(parent))
`,
    );
    let clock = Date.now();
    const model = new RunsModel(client, { now: () => clock });
    const experiment = byKind(await model.getChildren(), 'experiment').find((e) => e.label === 'ending') as ExperimentNode;
    let study = byKind(await model.getChildren(experiment), 'study')[0] as StudyNode;
    assert.equal(study.status, 'RUNNING');
    const startTime = study.startTime as number;
    model.applyLiveStudy({ studyId: 'S-ending', studyRunId: parent, experimentId: experiment.experimentId, startedAt: startTime });
    clock += 1_000;
    assert.equal((model.getNode(study.id) as StudyNode).durationMs, clock - startTime, 'running: up to now');

    model.applyLiveStudy({ studyId: 'S-ending', ended: { reason: 'interrupted', at: startTime + 5_000 } });
    clock += 60_000;
    study = model.getNode(study.id) as StudyNode;
    assert.deepEqual([study.status, study.endReason, study.durationMs], ['KILLED', 'interrupted', 5_000]);
    model.applyLiveStudy({ studyId: 'S-ending' });
    assert.equal((model.getNode(study.id) as StudyNode).status, 'KILLED', 'a later event does not undo the end');
    model.refresh(experiment);
    study = byKind(await model.getChildren(experiment), 'study')[0] as StudyNode;
    assert.deepEqual([study.id, study.status, study.durationMs], ['study:S-ending', 'KILLED', 5_000], 'a stale RUNNING parent read again');

    // Once MLflow has it ended, MLflow's status and end time are the study's.
    await client.finishRun(parent, 'FINISHED', startTime + 7_000);
    model.refresh(experiment);
    study = byKind(await model.getChildren(experiment), 'study')[0] as StudyNode;
    assert.deepEqual([study.status, study.durationMs], ['FINISHED', 7_000]);
  });

  it('reads the experiment of a live study that the root does not list, and puts it first', async () => {
    const model = new RunsModel(client);
    await model.getChildren();
    const experimentId = await client.getOrCreateExperiment('made later');
    model.applyLiveStudy({ studyId: 'S-later', experimentId, studyLabel: 'later:1', startedAt: Date.now() });
    assert.equal((model.findStudy({ studyId: 'S-later' }) as StudyNode).parent, undefined, 'at the top until the experiment is read');
    await model.whenIdle();
    const [first] = await model.getChildren();
    assert.equal(first?.kind === 'experiment' && first.experimentId, experimentId);
    const [study] = byKind(await model.getChildren(first), 'study');
    assert.deepEqual([study?.id, study?.parent, study?.status, study?.label], ['study:S-later', first?.id, 'RUNNING', 'later:1']);
  });

  it('puts a live study whose experiment it does not know at the top level', async () => {
    const model = new RunsModel(client, { experimentIds: [ids.experiment] });
    model.applyLiveEvent({ studyId: 'nowhere', tid: 0, state: 'running', startedAt: Date.now() });
    const top = await model.getChildren();
    assert.deepEqual(
      top.map((n) => n.kind),
      ['experiment', 'study'],
    );
    const live = top[1] as StudyNode;
    assert.equal(live.parent, undefined);
    assert.equal(live.label, 'study nowhere');
    assert.equal(byKind(await model.getChildren(live), 'trial')[0]?.status, 'RUNNING');
  });

  it('finds the trials of a study it knows only by its parent run id', async () => {
    const model = new RunsModel(client);
    model.applyLiveEvent({ studyRunId: ids.paged, tid: 11, state: 'running', startedAt: Date.now() });
    const study = model.findStudy({ runId: ids.paged }) as StudyNode;
    assert.equal(study.experimentId, undefined);
    const trials = byKind(await model.getChildren(study), 'trial');
    assert.equal(trials.length, 12);
    assert.equal(trials[11]?.status, 'FINISHED', "MLflow's finished run outranks a stale running event");
    assert.equal(trials[11]?.id, `study:${ids.paged}/tid:11`);
    const found = model.findStudy({ studyId: 'S-paged' }) as StudyNode;
    assert.equal(found.id, study.id);
    assert.equal(found.experimentId, ids.experiment);
    assert.equal(found.label, 'study S-paged');
  });
});
