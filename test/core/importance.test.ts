import { test } from 'node:test';
import assert from 'node:assert/strict';
import { computeImportances, type ImportanceTrial } from '../../core/src/analysis/importance';
import type { ParamDescriptor } from '../../core/src/protocol/driver';
import { seededRandom as rng } from '../seededRandom';


const SPACE: ParamDescriptor[] = [
  { label: 'x', dist: 'uniform', args: { low: 0, high: 1 } },
  { label: 'y', dist: 'uniform', args: { low: -5, high: 5 } },
  { label: 'lr', dist: 'loguniform', args: { low: Math.log(1e-5), high: Math.log(1) } },
  { label: 'opt', dist: 'choice', options: ['adam', 'sgd', 'rmsprop'] },
];
const OPTS = ['adam', 'sgd', 'rmsprop'] as const;

function sample(random: () => number, n: number, loss: (p: { x: number; y: number; lr: number; opt: string }) => number): ImportanceTrial[] {
  const trials: ImportanceTrial[] = [];
  for (let i = 0; i < n; i++) {
    const p = { x: random(), y: -5 + 10 * random(), lr: Math.exp(Math.log(1e-5) + random() * Math.log(1e5)), opt: OPTS[Math.floor(random() * 3)] as string };
    trials.push({ params: p, loss: loss(p) });
  }
  return trials;
}

function ranking(trials: ImportanceTrial[], space = SPACE): string[] {
  return computeImportances({ space, trials }).items.map((i) => i.param);
}

test('the one parameter that drives the loss ranks first; noise parameters score low', () => {
  for (const seed of [1, 2, 3, 4, 5]) {
    const random = rng(seed);
    const trials = sample(random, 200, (p) => (p.x - 0.3) ** 2 + 0.001 * random());
    const result = computeImportances({ space: SPACE, trials });
    assert.equal(result.method, 'ped-anova');
    assert.equal(result.trials, 200);
    assert.equal(result.items[0]?.param, 'x', `seed ${seed}: ${JSON.stringify(result.items)}`);
    assert.ok((result.items[0]?.importance ?? 0) > 0.5, `seed ${seed}: x takes most of the importance: ${JSON.stringify(result.items)}`);
    const sum = result.items.reduce((a, i) => a + i.importance, 0);
    assert.ok(Math.abs(sum - 1) < 1e-9);
  }
});

test('a log-distributed parameter that matters is found (scored in log space)', () => {
  const random = rng(11);
  const trials = sample(random, 300, (p) => (Math.log10(p.lr) + 3) ** 2 + 0.05 * random());
  assert.equal(ranking(trials)[0], 'lr');
});

test('a categorical parameter that matters is found', () => {
  const random = rng(12);
  const trials = sample(random, 200, (p) => ({ adam: 0, sgd: 1, rmsprop: 2 })[p.opt as 'adam'] + 0.5 * random());
  assert.equal(ranking(trials)[0], 'opt');
});

test('only the ranks of the losses count: a monotone transform changes nothing', () => {
  const random = rng(13);
  const trials = sample(random, 150, (p) => (p.x - 0.7) ** 2 + (p.y / 10) ** 2);
  const a = computeImportances({ space: SPACE, trials });
  const b = computeImportances({ space: SPACE, trials: trials.map((t) => ({ ...t, loss: Math.exp(3 * t.loss) - 10 })) });
  assert.deepEqual(a.items, b.items);
});

test('too few trials give no figures and say why; non-finite losses are not counted', () => {
  const random = rng(14);
  const trials = sample(random, 9, (p) => p.x);
  trials.push({ params: { x: 0.5 }, loss: Number.NaN }, { params: { x: 0.5 }, loss: Infinity });
  const result = computeImportances({ space: SPACE, trials });
  assert.equal(result.items.length, 0);
  assert.equal(result.trials, 9);
  assert.match(result.note ?? '', /at least 10 finished trials/);
});

test('a constant parameter scores 0; a parameter absent from the space is still scored', () => {
  const random = rng(15);
  const trials = sample(random, 100, (p) => p.x).map((t) => ({ params: { ...t.params, fixed: 3, extra: (t.params.x as number) * 2 }, loss: t.loss }));
  const result = computeImportances({ space: SPACE, trials });
  const fixed = result.items.find((i) => i.param === 'fixed');
  assert.equal(fixed?.score, 0);
  assert.ok(result.items.some((i) => i.param === 'extra' && i.importance > 0.2));
});

test('a conditional parameter is scored over the trials where it is active', () => {
  const random = rng(16);
  const space: ParamDescriptor[] = [
    { label: 'model', dist: 'choice', options: ['svm', 'tree'] },
    { label: 'C', dist: 'loguniform' },
    { label: 'depth', dist: 'quniform', args: { low: 1, high: 20, q: 1 } },
  ];
  const trials: ImportanceTrial[] = [];
  for (let i = 0; i < 300; i++) {
    if (random() < 0.5) {
      const C = Math.exp(-5 + 10 * random());
      trials.push({ params: { model: 'svm', C }, loss: Math.abs(Math.log(C)) / 5 + 0.1 * random() });
    } else {
      const depth = 1 + Math.floor(random() * 20);
      trials.push({ params: { model: 'tree', depth }, loss: 0.5 + 0.5 * random() });
    }
  }
  const result = computeImportances({ space, trials });
  assert.equal(result.items.length, 3);
  assert.equal(result.items[0]?.param, 'C', JSON.stringify(result.items));
});

test('10,000 trials: the same answer at the scale of a long study', () => {
  const random = rng(17);
  const trials = sample(random, 10_000, (p) => (p.x - 0.3) ** 2);
  const result = computeImportances({ space: SPACE, trials });
  assert.equal(result.items[0]?.param, 'x');
  assert.match(result.note ?? '', /best 1000 of 10000 trials/);
});
