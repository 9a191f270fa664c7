import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { appendFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { bestTrial, countTrials, currentOwner, endedAtItsEnd, JournalWriter, listStudies, ownerGone, readJournal } from '../../core/src/journal/journal';
import type { StudyInfo } from '../../core/src/journal/records';
import { RunnerError } from '../../core/src/errors';
import { needsSync, unsyncedTrials } from '../../core/src/mlflow/sync';
import { tempDir } from './helpers/tempDir';

const info: StudyInfo = {
  id: 's1', runId: 'r1', ordinal: 0, script: '/w/train.py', args: [], cwd: '/w', python: '/usr/bin/python3', executors: ['local:2'],
  callSite: { file: '/w/train.py', line: 10 }, maxEvals: 4, parallelism: 2, timeout: null, trialTimeout: null, lossThreshold: null,
  algo: 'tpe.suggest', maxQueueLen: 1, space: [{ label: 'x', dist: 'uniform', args: { low: 0, high: 1 } }], createdAt: 1,
};

function writeStudy(dir: string): string {
  const path = join(dir, 's1.jsonl');
  const w = new JournalWriter(path);
  w.append({ k: 'study', v: 1, study: info });
  for (const tid of [0, 1, 2, 3]) w.append({ k: 'trial', tid, vals: { x: [tid / 10] }, params: { x: tid / 10 }, at: 2 });
  w.append({ k: 'start', tid: 0, slot: 'local/0', attempt: 1, at: 3 });
  w.append({ k: 'end', tid: 0, state: 'done', summary: { status: 'ok', loss: 0.5 }, result: 'AA==', endedAt: 4 });
  w.append({ k: 'end', tid: 1, state: 'done', summary: { status: 'ok', loss: 'NaN' }, result: 'AA==', endedAt: 4 });
  w.append({ k: 'end', tid: 2, state: 'error', error: { type: 'ValueError', message: 'bad' }, endedAt: 5 });
  w.append({ k: 'start', tid: 3, slot: 'local/1', attempt: 1, at: 3 });
  w.close();
  return path;
}

test('a journal reads back trials, states and the best trial (NaN never best)', () => {
  const dir = tempDir('hr-journal-');
  const study = readJournal(writeStudy(dir));
  assert.equal(study.info.id, 's1');
  assert.equal(study.state, 'running');
  const counts = countTrials(study.trials.values());
  assert.deepEqual(counts, { total: 4, done: 2, ok: 2, failed: 1, cancelled: 0, running: 1, queued: 0 });
  assert.equal(bestTrial(study.trials.values())?.tid, 0);
});

test('a final line cut short by a crash is ignored; earlier records survive', () => {
  const dir = tempDir('hr-journal-');
  const path = writeStudy(dir);
  appendFileSync(path, '{"k":"end","tid":3,"state":"do');
  const study = readJournal(path);
  assert.equal(study.trials.get(3)?.state, 'running');
  assert.equal(study.trials.get(0)?.state, 'done');
});

test('a corrupt journal is reported with its path, and listing skips it', () => {
  const dir = tempDir('hr-journal-');
  writeStudy(dir);
  const bad = join(dir, 'bad.jsonl');
  writeFileSync(bad, 'garbage\nmore garbage\n');
  assert.throws(() => readJournal(bad), (e: unknown) => e instanceof RunnerError && e.code === 'journal_corrupt' && e.message.includes(bad));
  const { studies, unreadable } = listStudies(dir);
  assert.deepEqual(studies.map((s) => s.info.id), ['s1']);
  assert.deepEqual(unreadable, [bad]);
});

test('a trial run counts as complete only once a complete tracked record follows its end; journals from before tracked stay readable', () => {
  const dir = tempDir('hr-journal-');
  const path = join(dir, 's1.jsonl');
  const w = new JournalWriter(path);
  w.append({ k: 'study', v: 1, study: info });
  w.append({ k: 'tracking', uri: 'http://127.0.0.1:5000', experimentId: '0', parentRunId: 'p', at: 1 });
  for (const tid of [0, 1, 2, 3, 4]) w.append({ k: 'trial', tid, vals: { x: [tid / 10] }, params: { x: tid / 10 }, at: 2 });
  const end = (tid: number, run: Record<string, unknown>): void =>
    w.append({ k: 'end', tid, state: 'done', summary: { status: 'ok', loss: tid }, result: 'AA==', endedAt: 4, ...run });
  end(0, { mlflowRunId: 'r0', mlflowIncomplete: true });
  w.append({ k: 'tracked', tid: 0, mlflowRunId: 'r0', complete: true, at: 5 });
  // The worker died before writing the run: no tracked record.
  end(1, { mlflowRunId: 'r1', mlflowIncomplete: true });
  // The worker's logger failed: tracked says incomplete.
  end(2, { mlflowRunId: 'r2', mlflowIncomplete: true });
  w.append({ k: 'tracked', tid: 2, mlflowRunId: 'r2', complete: false, error: 'ConnectionError: refused', at: 5 });
  // Written before tracked existed: a run id without mlflowIncomplete was complete.
  end(3, { mlflowRunId: 'r3' });
  // The run could not be created at all.
  end(4, {});
  w.close();
  const study = readJournal(path);
  assert.deepEqual(
    [...study.trials.values()].map((t) => [t.tid, t.mlflowRunId, Boolean(t.mlflowIncomplete)]),
    [[0, 'r0', false], [1, 'r1', true], [2, 'r2', true], [3, 'r3', false], [4, undefined, false]],
  );
  assert.equal(unsyncedTrials(study), 3);
  appendFileSync(path, JSON.stringify({ k: 'synced', tid: 1, mlflowRunId: 'r1', at: 6 }) + '\n');
  assert.equal(unsyncedTrials(readJournal(path)), 2);
});

test("a run named by its `run` record when it was created is the trial's run, whether its end came before or after; the parent's end is recorded", () => {
  const dir = tempDir('hr-journal-');
  const path = join(dir, 's1.jsonl');
  const w = new JournalWriter(path);
  w.append({ k: 'study', v: 1, study: info });
  w.append({ k: 'tracking', uri: 'http://127.0.0.1:5000', experimentId: '0', parentRunId: 'p', owned: true, at: 1 });
  for (const tid of [0, 1, 2]) w.append({ k: 'trial', tid, vals: { x: [tid / 10] }, params: { x: tid / 10 }, at: 2 });
  const end = (tid: number, run: Record<string, unknown>): void =>
    w.append({ k: 'end', tid, state: 'done', summary: { status: 'ok', loss: tid }, result: 'AA==', endedAt: 4, ...run });
  // Created before the trial ended; its writes then done.
  w.append({ k: 'run', tid: 0, mlflowRunId: 'r0', at: 3 });
  end(0, { mlflowRunId: 'r0', mlflowIncomplete: true });
  w.append({ k: 'tracked', tid: 0, mlflowRunId: 'r0', complete: true, at: 5 });
  // Created only after the trial ended (its end record could not name it), never completed.
  end(1, { mlflowIncomplete: true });
  w.append({ k: 'run', tid: 1, mlflowRunId: 'r1', at: 5 });
  // Created before its end; the coordinator went away before the rest was written.
  w.append({ k: 'run', tid: 2, mlflowRunId: 'r2', at: 3 });
  end(2, { mlflowIncomplete: true });
  w.append({ k: 'state', state: 'ended', reason: 'max_evals', at: 6 });
  w.close();
  const study = readJournal(path);
  assert.deepEqual(
    [...study.trials.values()].map((t) => [t.tid, t.mlflowRunId, Boolean(t.mlflowIncomplete)]),
    [[0, 'r0', false], [1, 'r1', true], [2, 'r2', true]],
  );
  assert.equal(unsyncedTrials(study), 2, 'the sync completes r1 and r2, it creates no run');
  assert.equal(needsSync(study), true);
  appendFileSync(path, [1, 2].map((tid) => JSON.stringify({ k: 'synced', tid, mlflowRunId: `r${tid}`, at: 7 })).join('\n') + '\n');
  assert.equal(needsSync(readJournal(path)), true, "the runner's parent still needs its end");
  appendFileSync(path, JSON.stringify({ k: 'parentEnded', at: 8 }) + '\n');
  assert.equal(needsSync(readJournal(path)), false);
});

test("a journal's last bytes tell an ended study from one that is not, or was resumed since, whatever its length", () => {
  const dir = tempDir('hr-journal-');
  const path = writeStudy(dir);
  assert.equal(endedAtItsEnd(path), false, 'running');
  const w = new JournalWriter(path);
  w.append({ k: 'state', state: 'ended', reason: 'max_evals', at: 6 });
  // What a sync appends after the end does not hide it.
  for (let i = 0; i < 50; i++) w.append({ k: 'synced', tid: i % 4, mlflowRunId: `run${i}`, at: 7 });
  w.close();
  assert.equal(endedAtItsEnd(path), true);
  assert.equal(readJournal(path).state, 'ended');
  const resumed = new JournalWriter(path);
  resumed.append({ k: 'resumed', runId: 'r2', at: 8 });
  resumed.close();
  assert.equal(endedAtItsEnd(path), false, 'resumed after its end');
  assert.equal(endedAtItsEnd(join(dir, 'absent.jsonl')), false);
  // A long study: only the end is read, and it still says ended.
  const long = join(dir, 'long.jsonl');
  const lw = new JournalWriter(long);
  lw.append({ k: 'study', v: 1, study: info });
  for (let tid = 0; tid < 3000; tid++) lw.append({ k: 'trial', tid, vals: { x: [tid / 3000] }, params: { x: tid / 3000 }, at: 2 });
  lw.append({ k: 'state', state: 'ended', reason: 'max_evals', at: 9 });
  lw.close();
  assert.equal(endedAtItsEnd(long), true);
});

test('a study not ended is interrupted once its owner on this host is gone; another host or an older journal cannot tell', () => {
  const dir = tempDir('hr-journal-');
  const dead = spawnSync(process.execPath, ['-e', '']).pid!; // exited and reaped
  const opened = (owner?: { pid: number; host: string }, resumedBy?: { pid: number; host: string }) => {
    const path = join(dir, 's1.jsonl');
    const w = new JournalWriter(path);
    w.append({ k: 'study', v: 1, study: info, ...(owner ? { owner } : {}) });
    if (resumedBy) w.append({ k: 'resumed', runId: 'r2', owner: resumedBy, at: 2 });
    w.close();
    const study = readJournal(path);
    writeFileSync(path, '');
    return study;
  };
  assert.deepEqual(currentOwner(), { pid: process.pid, host: hostname() });
  assert.equal(ownerGone(opened({ pid: dead, host: hostname() })), true);
  assert.equal(ownerGone(opened(currentOwner())), false);
  assert.equal(ownerGone(opened({ pid: dead, host: `not-${hostname()}` })), false);
  assert.equal(ownerGone(opened()), false);
  // A resume hands the study to its own process.
  assert.equal(ownerGone(opened({ pid: dead, host: hostname() }, currentOwner())), false);
  assert.equal(ownerGone(opened(currentOwner(), { pid: dead, host: hostname() })), true);
});
