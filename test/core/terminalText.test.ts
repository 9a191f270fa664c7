import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { JournalWriter } from '../../core/src/journal/journal';
import type { StudyInfo } from '../../core/src/journal/records';
import type { ExperimentNode, StudyNode, TrialNode } from '../../core/src/mlflow/runsModel';
import { printable } from '../../cli/src/progress';
import { runsText } from '../../cli/src/runsCommand';
import { studiesCommand } from '../../cli/src/studiesCommand';
import { tempDir } from './helpers/tempDir';

test('control characters are shown escaped; printable text, tabs aside, is kept', () => {
  assert.equal(printable('a\x1b[2Jb\rc\nd\te\x00\x7f\x9b'), 'a\\x1b[2Jb\\x0dc\\x0ad\\x09e\\x00\\x7f\\x9b');
  assert.equal(printable('loss 0.5 é ✓ [x]'), 'loss 0.5 é ✓ [x]');
});

test('runs prints the names and statuses from the tracking server escaped', () => {
  const experiment: ExperimentNode = { kind: 'experiment', id: 'e', parent: undefined, experimentId: '1', label: 'exp\x1b[2J', status: 'active' };
  const study: StudyNode = { kind: 'study', id: 's', parent: 'e', studyId: 'st\r', label: 'study\x1b]0;title\x07', status: 'FINISHED', bestLoss: 0.5, trialCount: 1, live: false };
  const trial: TrialNode = { kind: 'trial', id: 't', parent: 's', label: 'trial\rX', status: 'FINISHED', loss: 0.5, isBest: true, params: {}, live: false };
  assert.equal(
    runsText([{ experiment, studies: [{ study, trials: [trial] }] }]),
    'exp\\x1b[2J\n' +
      ' study\\x1b]0;title\\x07  FINISHED  1 trials  best 0.5000  (study st\\x0d)\n' +
      '  * trial\\x0dX  FINISHED  loss 0.5000\n',
  );
});

test('studies prints the call site from the journal escaped', () => {
  const dir = tempDir('hr-text-');
  const script = '/w/\x1b[2Jtrain\r.py';
  const info: StudyInfo = {
    id: 's1', runId: 'r1', ordinal: 0, script, args: [], cwd: '/w', python: '/usr/bin/python3', executors: ['local:2'],
    callSite: { file: script, line: 10 }, maxEvals: 4, parallelism: 2, timeout: null, trialTimeout: null, lossThreshold: null,
    algo: 'tpe.suggest', maxQueueLen: 1, space: [], createdAt: 1,
  };
  const w = new JournalWriter(join(dir, 's1.jsonl'));
  w.append({ k: 'study', v: 1, study: info });
  w.append({ k: 'state', state: 'ended', reason: 'max_evals', at: 2 });
  w.close();
  let out = '';
  const write = process.stdout.write;
  process.stdout.write = ((chunk: string) => ((out += chunk), true)) as typeof process.stdout.write;
  try {
    assert.equal(studiesCommand(['--journal-dir', dir], {}, dir), 0);
  } finally {
    process.stdout.write = write;
  }
  assert.equal(out, 's1  max_evals  0/0 ok  0 failed  best -  /w/\\x1b[2Jtrain\\x0d.py:10\n');
});
