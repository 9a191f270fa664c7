import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decideParallelism } from '../../core/src/coordinator/parallelism';

test("the run's option wins over the script's value, and says so when they differ", () => {
  assert.deepEqual(decideParallelism(4, 8, 2), {
    parallelism: 4,
    source: 'option',
    notice: "parallelism 4 (the run's option) is used instead of the script's 8",
  });
  assert.deepEqual(decideParallelism(4, 4, 8), { parallelism: 4, source: 'option' });
  assert.deepEqual(decideParallelism(3, null, 8), { parallelism: 3, source: 'option' });
});

test("the script's value applies up to the executors' slots and is lowered above them with a notice", () => {
  assert.deepEqual(decideParallelism(null, 2, 4), { parallelism: 2, source: 'script' });
  assert.deepEqual(decideParallelism(undefined, 4, 4), { parallelism: 4, source: 'script' });
  const lowered = decideParallelism(null, 8, 2);
  assert.equal(lowered.parallelism, 2);
  assert.equal(lowered.source, 'slots');
  assert.match(lowered.notice ?? '', /asks for parallelism 8, but the executors have 2 slots: 2 trials run at once/);
});

test('without a value from the run or the script, the slots decide; never below 1', () => {
  assert.deepEqual(decideParallelism(null, null, 6), { parallelism: 6, source: 'slots' });
  assert.deepEqual(decideParallelism(null, null, 0), { parallelism: 1, source: 'slots' });
  assert.equal(decideParallelism(null, 5, 0).parallelism, 1);
});
