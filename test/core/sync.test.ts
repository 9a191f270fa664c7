// Runs written later from the journal (core/src/mlflow/sync.ts) against a real `mlflow server`:
// a study whose command ended before its parent run was set up gets the parent it would have had
// live (the script's active run, or one in the script's experiment, with the script's params).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { JournalWriter, readJournal } from '../../core/src/journal/journal';
import type { StudyInfo } from '../../core/src/journal/records';
import { MlflowClient } from '../../core/src/mlflow/client';
import { childRunCreate, parentRunCreate } from '../../core/src/mlflow/runLayout';
import { needsSync, syncStudy } from '../../core/src/mlflow/sync';
import { childRunsFilter } from '../../core/src/mlflow/tags';
import { startMlflowServer, type TestMlflowServer } from './helpers/mlflowServer';
import { tempDir } from './helpers/tempDir';

function info(id: string): StudyInfo {
  return {
    id, runId: 'r1', ordinal: 1, script: '/w/train.py', args: [], cwd: '/w', python: '/usr/bin/python3', executors: ['local:2'],
    callSite: { file: '/w/train.py', line: 12 }, maxEvals: 3, parallelism: 2, parallelismSource: 'script', requestedParallelism: 2,
    timeout: null, trialTimeout: null, lossThreshold: null, algo: 'rand.suggest', maxQueueLen: 1, space: [], createdAt: Date.now(),
  };
}

/** A tracked study that ended with 3 finished trials and no MLflow run written yet. */
function journal(dir: string, id: string, request: { activeRunId?: string; experimentId?: string }): string {
  const path = join(dir, `${id}.jsonl`);
  const w = new JournalWriter(path);
  w.append({ k: 'study', v: 1, study: info(id) });
  w.append({ k: 'trackingRequest', params: { max_evals: '3', parallelism: '2', timeout: 'None', algo: 'rand.suggest', max_queue_len: '1' }, ...request, at: Date.now() });
  for (const tid of [0, 1, 2]) {
    w.append({ k: 'trial', tid, vals: { x: [tid] }, params: { x: tid }, at: Date.now() });
    w.append({ k: 'start', tid, slot: `local/${tid % 2}`, attempt: 1, at: Date.now() });
    w.append({ k: 'end', tid, state: 'done', summary: { status: 'ok', loss: tid + 0.5 }, result: 'AA==', slot: `local/${tid % 2}`, startedAt: Date.now(), endedAt: Date.now() });
  }
  w.append({ k: 'state', state: 'ended', reason: 'max_evals', at: Date.now() });
  w.close();
  return path;
}

describe('runs written from the journal against a real mlflow server', () => {
  let server: TestMlflowServer;
  let client: MlflowClient;

  before(async () => {
    server = await startMlflowServer();
    client = new MlflowClient({ trackingUri: server.uri });
  });
  after(async () => {
    await server?.stop();
  });

  it("puts the trials under the script's active run, which keeps its status; a differing param gets the study's suffix", async () => {
    const active = await client.createRun({ experimentId: '0', runName: 'two_models' });
    await client.logBatch(active.info.runId, { params: { max_evals: '6' } });
    const dir = tempDir('hr-sync-');
    const path = journal(dir, '20261202-000000-abc123', { activeRunId: active.info.runId });
    const result = await syncStudy(readJournal(path), client);
    assert.deepEqual(result, { study: '20261202-000000-abc123', written: 3, parentCreated: false });
    const kids = await client.searchAllRuns({ experimentIds: ['0'], filter: childRunsFilter(active.info.runId) });
    assert.equal(kids.length, 3);
    assert.deepEqual(kids.map((k) => k.data.metrics.loss).sort(), [0.5, 1.5, 2.5]);
    const parent = await client.getRun(active.info.runId);
    assert.equal(parent.info.status, 'RUNNING');
    assert.equal(parent.data.params.max_evals, '6');
    assert.equal(parent.data.params.max_evals_abc123, '3');
    assert.equal(parent.data.params.actual_parallelism, '2');
    assert.equal(parent.data.metrics.total_trials_count, 3);
    // The journal now names the parent, not as the runner's own: a second sync writes nothing.
    const again = readJournal(path);
    assert.equal(again.tracking?.parentRunId, active.info.runId);
    assert.equal(again.tracking?.owned, false);
    assert.equal((await syncStudy(again, client)).written, 0);
  });

  it('adopts the parent a command created but did not journal, instead of making a second one', async () => {
    const id = '20261202-000000-0a1b2c';
    const dir = tempDir('hr-sync-');
    const path = journal(dir, id, {});
    const orphan = await client.createRun(parentRunCreate(info(id), '0'));
    const result = await syncStudy(readJournal(path), client);
    assert.equal(result.parentCreated, false);
    assert.equal(readJournal(path).tracking?.parentRunId, orphan.info.runId);
    const parents = await client.searchAllRuns({ experimentIds: ['0'], filter: `tags.\`hyperopt_runner.study_id\` = '${id}' and attributes.run_name = 'train:12'` });
    assert.deepEqual(parents.map((p) => [p.info.runId, p.info.status]), [[orphan.info.runId, 'FINISHED']]);
    assert.equal((await client.searchAllRuns({ experimentIds: ['0'], filter: childRunsFilter(orphan.info.runId) })).length, 3);
  });

  it('reuses the child run a command created but did not journal, so a trial never gets two', async () => {
    const id = '20261203-000000-c4d5e6';
    const dir = tempDir('hr-sync-');
    const path = journal(dir, id, {});
    const parent = await client.createRun(parentRunCreate(info(id), '0'));
    // The command made trial 1's run, then ended before its answer was journalled.
    const orphan = await client.createRun(childRunCreate({ studyId: id, tid: 1, slot: 'local/1', experimentId: '0', parentRunId: parent.info.runId, startTime: Date.now() }));
    const result = await syncStudy(readJournal(path), client);
    assert.equal(result.written, 3);
    const kids = await client.searchAllRuns({ experimentIds: ['0'], filter: childRunsFilter(parent.info.runId) });
    assert.deepEqual(kids.map((k) => k.data.tags['hyperopt_runner.tid']).sort(), ['0', '1', '2']);
    const one = kids.find((k) => k.data.tags['hyperopt_runner.tid'] === '1')!;
    assert.equal(one.info.runId, orphan.info.runId);
    assert.equal(one.info.status, 'FINISHED');
    assert.equal(one.data.metrics.loss, 1.5);
  });

  it('a create whose answer is lost is not made twice: the retry finds the run the first attempt made', async () => {
    // A real connection fault between client and server: the request reaches MLflow, its answer
    // is dropped (the socket closed before the response is relayed).
    const { createServer, request } = await import('node:http');
    const target = new URL(server.uri);
    let dropped = 0;
    const proxy = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const upstream = request({ host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers }, (answer) => {
          const body: Buffer[] = [];
          answer.on('data', (c: Buffer) => body.push(c));
          answer.on('end', () => {
            if (req.url?.endsWith('/runs/create') && dropped === 0) {
              dropped += 1;
              req.socket.destroy();
              return;
            }
            res.writeHead(answer.statusCode ?? 502, answer.headers);
            res.end(Buffer.concat(body));
          });
        });
        upstream.end(Buffer.concat(chunks));
      });
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    try {
      const port = (proxy.address() as { port: number }).port;
      const flaky = new MlflowClient({ trackingUri: `http://127.0.0.1:${port}`, maxRetries: 2, retryBaseDelayMs: 10 });
      const parent = await client.createRun({ experimentId: '0', runName: 'lost-answers' });
      const run = await flaky.createRun(childRunCreate({ studyId: 'S-lost', tid: 7, experimentId: '0', parentRunId: parent.info.runId, startTime: Date.now() }));
      assert.equal(dropped, 1, 'the first answer was dropped');
      const kids = await client.searchAllRuns({ experimentIds: ['0'], filter: childRunsFilter(parent.info.runId) });
      assert.deepEqual(kids.map((k) => k.info.runId), [run.info.runId]);
    } finally {
      proxy.closeAllConnections();
      await new Promise((resolve) => proxy.close(resolve));
    }
  });

  it("creates the parent in the script's experiment with the script's params, and ends it", async () => {
    const experimentId = await client.createExperiment('chosen-by-the-script');
    const dir = tempDir('hr-sync-');
    const path = journal(dir, '20261202-000000-def456', { experimentId });
    const result = await syncStudy(readJournal(path), client);
    assert.equal(result.parentCreated, true);
    const study = readJournal(path);
    const parent = await client.getRun(study.tracking!.parentRunId);
    assert.equal(parent.info.experimentId, experimentId);
    assert.equal(parent.info.status, 'FINISHED');
    assert.equal(parent.data.params.parallelism, '2');
    const kids = await client.searchAllRuns({ experimentIds: [experimentId], filter: childRunsFilter(parent.info.runId) });
    assert.equal(kids.length, 3);
  });

  /**
   * A study a command left mid-way: trial 0 finished, trial 1 in flight, trial 2 queued again after
   * its worker was lost, each of the last two with its child run RUNNING under a RUNNING parent.
   */
  async function leftMidway(id: string, ownerPid: number): Promise<{ path: string; parent: string; kids: string[] }> {
    const dir = tempDir('hr-sync-');
    const path = join(dir, `${id}.jsonl`);
    const parent = await client.createRun(parentRunCreate(info(id), '0'));
    const kids = [];
    for (const tid of [0, 1, 2]) kids.push((await client.createRun(childRunCreate({ studyId: id, tid, experimentId: '0', parentRunId: parent.info.runId, startTime: Date.now() }))).info.runId);
    const w = new JournalWriter(path);
    w.append({ k: 'study', v: 1, study: info(id), owner: { pid: ownerPid, host: hostname() } });
    w.append({ k: 'tracking', uri: server.uri, experimentId: '0', parentRunId: parent.info.runId, owned: true, at: Date.now() });
    for (const tid of [0, 1, 2]) {
      w.append({ k: 'trial', tid, vals: { x: [tid] }, params: { x: tid }, at: Date.now() });
      w.append({ k: 'start', tid, slot: 'local/0', attempt: 1, at: Date.now() });
      w.append({ k: 'run', tid, mlflowRunId: kids[tid]!, at: Date.now() });
    }
    w.append({ k: 'end', tid: 0, state: 'done', summary: { status: 'ok', loss: 0.5 }, slot: 'local/0', endedAt: Date.now(), mlflowRunId: kids[0]!, mlflowIncomplete: true });
    w.append({ k: 'requeue', tid: 2, slot: 'local/0', reason: 'the worker exited', at: Date.now() });
    w.close();
    return { path, parent: parent.info.runId, kids };
  }

  it('ends a study whose command is gone: its attempts in flight KILLED as lost, its parent KILLED with the counts', async () => {
    const gone = spawnSync(process.execPath, ['-e', '0']).pid;
    const { path, parent, kids } = await leftMidway('20261202-000000-dead01', gone);
    assert.equal(needsSync(readJournal(path)), true);
    assert.equal((await syncStudy(readJournal(path), client)).written, 3);
    const status = async (runId: string): Promise<string> => (await client.getRun(runId)).info.status;
    assert.deepEqual([await status(parent), ...(await Promise.all(kids.map(status)))], ['KILLED', 'FINISHED', 'KILLED', 'KILLED']);
    for (const kid of kids.slice(1)) {
      const tags = (await client.getRun(kid)).data.tags;
      assert.equal(tags.trial_status, 'cancelled');
      assert.match(tags['hyperopt_runner.cancel_reason'] ?? '', new RegExp(`^attempt lost: the command that ran the study \\(pid ${gone}\\) ended`));
    }
    const metrics = (await client.getRun(parent)).data.metrics;
    assert.deepEqual([metrics.successful_trials_count, metrics.cancelled_trials_count, metrics.total_trials_count], [1, 2, 3]);
    const study = readJournal(path);
    assert.deepEqual([study.state, study.endReason], ['ended', 'interrupted']);
    assert.equal(needsSync(study), false);
  });

  it('leaves a study whose command is alive to that command', async () => {
    const { path, parent, kids } = await leftMidway('20261202-000000-a11ve1', process.pid);
    assert.equal(needsSync(readJournal(path)), false);
    assert.equal((await syncStudy(readJournal(path), client)).written, 0);
    for (const runId of [parent, ...kids]) assert.equal((await client.getRun(runId)).info.status, 'RUNNING');
    assert.equal(readJournal(path).state, 'running');
  });
});
