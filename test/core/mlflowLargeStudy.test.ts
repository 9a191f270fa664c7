// A real mlflow server over a store holding a 10,000-trial study, written with MLflow's own
// SQL store (creating 10,000 runs over REST would take minutes on this machine).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { MlflowClient } from '../../core/src/mlflow/client';
import { childRunsFilter } from '../../core/src/mlflow/tags';
import { startMlflowServer } from './helpers/mlflowServer';
import { execFileSync } from 'node:child_process';
import { VENV_PYTHON } from './helpers/mlflowServer';

const POPULATE = `
import sys, time
from mlflow.entities import RunTag
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
store = SqlAlchemyStore(sys.argv[1], sys.argv[2])
now = int(time.time() * 1000)
parent = store.create_run("0", "", now, [RunTag("hyperopt_runner.study_id", "big")], "big")
for tid in range(int(sys.argv[3])):
    store.create_run("0", "", now + tid, [RunTag("mlflow.parentRunId", parent.info.run_id), RunTag("hyperopt_runner.tid", str(tid))], f"trial {tid}")
print(parent.info.run_id)
`;

test('pagination over a 10,000-trial study returns every child run exactly once', { timeout: 600_000 }, async () => {
  const server = await startMlflowServer();
  try {
    const parentId = execFileSync(VENV_PYTHON, ['-c', POPULATE, `sqlite:///${join(server.dir, 'mlflow.db')}`, join(server.dir, 'mlartifacts'), '10000'], {
      encoding: 'utf8',
      timeout: 540_000,
    }).trim().split('\n').pop()!;
    const client = new MlflowClient({ trackingUri: server.uri });
    const started = performance.now();
    const pages = client.searchRunsPages({ experimentIds: ['0'], filter: childRunsFilter(parentId), pageSize: 1000 });
    const ids: string[] = [];
    let firstPageMs: number | undefined;
    for await (const page of pages) {
      firstPageMs ??= performance.now() - started;
      for (const run of page.items) ids.push(run.info.runId);
    }
    const totalMs = performance.now() - started;
    assert.equal(ids.length, 10_000);
    assert.equal(new Set(ids).size, 10_000);
    const first100 = performance.now();
    const small = await client.searchRunsPage({ experimentIds: ['0'], filter: childRunsFilter(parentId), pageSize: 100 });
    assert.equal(small.items.length, 100);
    // Diagnostics only: timings belong to benchmarks, not assertions.
    console.log(`10,000 child runs: first page of 1000 in ${firstPageMs?.toFixed(0)} ms, all in ${totalMs.toFixed(0)} ms; a page of 100 in ${(performance.now() - first100).toFixed(0)} ms`);
  } finally {
    await server.stop();
  }
});
