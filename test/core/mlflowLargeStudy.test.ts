// A real mlflow server over a store holding a 10,000-trial study, written into its SQL store
// directly (creating 10,000 runs over REST or one by one would take many minutes here).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { MlflowClient } from '../../core/src/mlflow/client';
import { childRunsFilter } from '../../core/src/mlflow/tags';
import { startMlflowServer } from './helpers/mlflowServer';
import { execFileSync } from 'node:child_process';
import { VENV_PYTHON } from './helpers/mlflowServer';

// The benchmark's writer: the children go in as bulk inserts through MLflow's table models.
const POPULATE = join(__dirname, '..', '..', 'bench', 'mlflow', 'populate.py');

test('pagination over a 10,000-trial study returns every child run exactly once', { timeout: 600_000 }, async () => {
  const server = await startMlflowServer();
  try {
    const written = execFileSync(VENV_PYTHON, [POPULATE, `sqlite:///${join(server.dir, 'mlflow.db')}`, join(server.dir, 'mlartifacts'), 'big', '10000', '7'], {
      encoding: 'utf8',
      timeout: 300_000,
    });
    const { experimentId, parentRunId: parentId } = JSON.parse(written.trim().split('\n').pop()!) as { experimentId: string; parentRunId: string };
    const client = new MlflowClient({ trackingUri: server.uri });
    const started = performance.now();
    const pages = client.searchRunsPages({ experimentIds: [experimentId], filter: childRunsFilter(parentId), pageSize: 1000 });
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
    const small = await client.searchRunsPage({ experimentIds: [experimentId], filter: childRunsFilter(parentId), pageSize: 100 });
    assert.equal(small.items.length, 100);
    // Diagnostics only: timings belong to benchmarks, not assertions.
    console.log(`10,000 child runs: first page of 1000 in ${firstPageMs?.toFixed(0)} ms, all in ${totalMs.toFixed(0)} ms; a page of 100 in ${(performance.now() - first100).toFixed(0)} ms`);
  } finally {
    await server.stop();
  }
});
