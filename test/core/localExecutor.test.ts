// Real Python workers from the project's .venv; nothing here is simulated.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InfrastructureError, RunnerError } from '../../core/src/errors';
import { pythonPath, runtimeSourceDir } from '../../core/src/runtimePath';
import { LocalExecutor } from '../../executors/src/local/localExecutor';
import { STUDY_ENDING, type Slot } from '../../core/src/executor';

const root = join(__dirname, '..', '..');
const python = join(root, '.venv', 'bin', 'python');
const env = { ...process.env, PYTHONPATH: pythonPath(runtimeSourceDir(), join(__dirname, 'fixtures'), undefined) };

const tempDirs: string[] = [];
function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}
after(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

function fixture(name: string): { domain: string; specs: string[] } {
  return JSON.parse(execFileSync(python, [join(__dirname, 'fixtures', 'domains.py'), name], { env, encoding: 'utf8' }));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const noEvents = { slotsChanged: () => undefined, notice: () => undefined };

async function withExecutor(workers: number, body: (slots: readonly Slot[], executor: LocalExecutor) => Promise<void>, extraEnv: NodeJS.ProcessEnv = {}): Promise<void> {
  const executor = new LocalExecutor({ workers, python, env: { ...env, ...extraEnv }, cwd: root, killGraceMs: 500 });
  await executor.start(noEvents, new AbortController().signal);
  try {
    await body(executor.slots, executor);
  } finally {
    await executor.close();
  }
  for (const hello of executor.workerInfo) assert.equal(alive(hello.pid), false, `worker ${hello.pid} gone after close`);
}

test('warm workers evaluate trials; printed output is attributed to its trial only', async () => {
  const { domain, specs } = fixture('quick');
  await withExecutor(2, async (slots) => {
    assert.equal(slots.length, 2);
    const output: string[] = [];
    const outcome = await slots[0]!.run({ study: 's', tid: 1, spec: specs[1]!, domain, onOutput: (t) => output.push(t) }, new AbortController().signal);
    assert.equal(outcome.kind, 'result');
    if (outcome.kind !== 'result') return;
    assert.equal(outcome.result.outcome, 'ok');
    assert.deepEqual(outcome.result.summary, { status: 'ok', loss: 0.0625 });
    assert.equal(output.join(''), 'evaluating 0.5\n');
    // The same worker serves the next trial without loading the domain again.
    const again = await slots[0]!.run({ study: 's', tid: 2, spec: specs[0]!, domain }, new AbortController().signal);
    assert.equal(again.kind === 'result' && again.result.summary?.loss, 0);
  });
});

test('aborting a trial kills its whole process group, grandchildren included, and the slot recovers', async () => {
  const sleeper = fixture('sleeper');
  const quick = fixture('quick');
  const pidfile = join(tempDir('hr-exec-'), 'pids');
  await withExecutor(1, async (slots) => {
    const abort = new AbortController();
    let grandchild = 0;
    let worker = 0;
    const running = slots[0]!.run(
      {
        study: 'sleepy', tid: 7, spec: sleeper.specs[0]!, domain: sleeper.domain,
        onOutput: (text) => {
          if (text.includes('grandchild')) {
            [worker, grandchild] = readFileSync(pidfile, 'utf8').split(' ').map(Number) as [number, number];
            abort.abort();
          }
        },
      },
      abort.signal,
    );
    const outcome = await running;
    assert.equal(outcome.kind, 'aborted');
    assert.ok(worker > 0 && grandchild > 0);
    assert.equal(alive(worker), false, 'worker killed');
    // The grandchild may be a zombie for a moment while init reaps it; ask /proc for its state.
    const state = (() => { try { return readFileSync(`/proc/${grandchild}/stat`, 'utf8').split(' ')[2]; } catch { return 'gone'; } })();
    assert.ok(state === 'gone' || state === 'Z', `grandchild state ${state}`);
    const next = await slots[0]!.run({ study: 'q', tid: 8, spec: quick.specs[0]!, domain: quick.domain }, new AbortController().signal);
    assert.equal(next.kind, 'result');
  }, { HR_TEST_PIDFILE: pidfile });
});

/** Live worker processes whose parent is this test process. */
function workerChildren(): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .flatMap((entry) => {
      try {
        const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
        const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        if (Number(ppid) !== process.pid || state === 'Z') return [];
        return readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes('hyperopt_runner.worker') ? [Number(entry)] : [];
      } catch {
        return []; // gone meanwhile
      }
    });
}

test('a trial killed because its study ends leaves its slot to start a worker when needed; one killed for its own limit gets a warm replacement', async () => {
  const sleeper = fixture('sleeper');
  const pidfile = join(tempDir('hr-exec-'), 'pids');
  await withExecutor(2, async (slots, executor) => {
    const first = executor.workerInfo.map((hello) => hello.pid);
    const killed = async (slot: Slot, tid: number, reason?: string): Promise<void> => {
      const abort = new AbortController();
      const job = { study: 'sleepy', tid, spec: sleeper.specs[0]!, domain: sleeper.domain, onOutput: (text: string) => text.includes('grandchild') && abort.abort(reason) };
      assert.equal((await slot.run(job, abort.signal)).kind, 'aborted');
    };
    await Promise.all([killed(slots[0]!, 1, STUDY_ENDING), killed(slots[1]!, 2)]);
    // Both kills are done, so a replacement of either has been spawned by now; wait for the one
    // that should exist to say hello.
    const deadline = Date.now() + 60_000;
    let fresh: number[] = [];
    while (fresh.length === 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      fresh = executor.workerInfo.map((hello) => hello.pid).filter((pid) => !first.includes(pid));
    }
    assert.equal(fresh.length, 1, 'the slot whose trial hit its own limit has a new worker');
    assert.deepEqual(workerChildren(), fresh, 'no worker was started for the slot whose study ended');
    // That slot still serves the next study: its worker starts with the next trial.
    const quick = fixture('quick');
    const next = await slots[0]!.run({ study: 'q', tid: 3, spec: quick.specs[0]!, domain: quick.domain }, new AbortController().signal);
    assert.equal(next.kind === 'result' && next.result.outcome, 'ok');
  }, { HR_TEST_PIDFILE: pidfile });
});

test('a worker killed under a trial is an infrastructure failure; the slot gets a fresh worker', async () => {
  const sleeper = fixture('sleeper');
  const quick = fixture('quick');
  const pidfile = join(tempDir('hr-exec-'), 'pids');
  await withExecutor(1, async (slots) => {
    const running = slots[0]!.run(
      {
        study: 'sleepy', tid: 3, spec: sleeper.specs[0]!, domain: sleeper.domain,
        onOutput: (text) => {
          if (text.includes('grandchild')) process.kill(Number(readFileSync(pidfile, 'utf8').split(' ')[0]), 'SIGKILL');
        },
      },
      new AbortController().signal,
    );
    await assert.rejects(running, (e: unknown) => e instanceof InfrastructureError && /SIGKILL/.test(e.message));
    const next = await slots[0]!.run({ study: 'q', tid: 4, spec: quick.specs[2]!, domain: quick.domain }, new AbortController().signal);
    assert.equal(next.kind === 'result' && next.result.outcome, 'ok');
  }, { HR_TEST_PIDFILE: pidfile });
});

test('an interpreter whose workers die before their first message fails with their stderr', async () => {
  const dir = tempDir('hr-badpy-');
  const fake = join(dir, 'python');
  writeFileSync(fake, '#!/bin/sh\necho "libpython3.99.so: cannot open shared object file" >&2\nexit 127\n');
  chmodSync(fake, 0o755);
  const executor = new LocalExecutor({ workers: 2, python: fake, env, cwd: root });
  await assert.rejects(executor.start(noEvents, new AbortController().signal), (e: unknown) => {
    assert.ok(e instanceof RunnerError);
    assert.equal(e.code, 'worker_start_failed');
    assert.match(e.message, /exit code 127.*libpython3\.99\.so/);
    return true;
  });
  await executor.close();
});
