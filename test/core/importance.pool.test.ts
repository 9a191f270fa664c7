import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AnalysisPool } from '../../core/src/analysis/pool';
import { computeImportances, type ImportanceTrial } from '../../core/src/analysis/importance';
import type { ParamDescriptor } from '../../core/src/protocol/driver';

const space: ParamDescriptor[] = [
  { label: 'x', dist: 'uniform' },
  { label: 'y', dist: 'uniform' },
];

function trials(n: number): ImportanceTrial[] {
  let seed = 3;
  const random = (): number => {
    seed = (seed * 16807) % 2147483647;
    return seed / 2147483647;
  };
  return Array.from({ length: n }, () => {
    const x = random();
    const y = random();
    return { params: { x, y }, loss: (x - 0.6) ** 2 };
  });
}

test('importances computed in the worker thread equal those computed in place', async () => {
  const pool = new AnalysisPool({ idleTimeoutMs: 1_000 });
  try {
    const task = { space, trials: trials(500) };
    const remote = await pool.importances(task);
    assert.deepEqual(remote, computeImportances(task));
    assert.equal(remote.items[0]?.param, 'x');
  } finally {
    await pool.close();
  }
});

test('an aborted request is dropped', async () => {
  const pool = new AnalysisPool({ idleTimeoutMs: 1_000 });
  try {
    const controller = new AbortController();
    controller.abort();
    await assert.rejects(pool.importances({ space, trials: trials(100) }, controller.signal), (error: Error) => error.name === 'AbortError');
  } finally {
    await pool.close();
  }
});
