// The fork server and the local executor's forked workers: a real server from the project's
// .venv, real hyperopt domains, real process groups. Nothing here is simulated.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RunnerError } from '../../core/src/errors';
import type { Slot, TrialJob } from '../../core/src/executor';
import { ForkServer } from '../../core/src/python/forkServer';
import { pythonPath, runtimeSourceDir } from '../../core/src/runtimePath';
import { LocalExecutor } from '../../executors/src/local/localExecutor';

const root = join(__dirname, '..', '..');
const python = join(root, '.venv', 'bin', 'python');
const env = { ...process.env, PYTHONPATH: pythonPath(runtimeSourceDir(), join(__dirname, 'fixtures'), undefined) };
const noEvents = { slotsChanged: () => undefined, notice: () => undefined };

function fixture(name: string): { domain: string; specs: string[] } {
  return JSON.parse(execFileSync(python, [join(__dirname, 'fixtures', 'domains.py'), name], { env, encoding: 'utf8' }));
}

/** Processes (not zombies) whose environment carries the tag: whatever a test started, wherever it went. */
function tagged(tag: string): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry) && Number(entry) !== process.pid)
    .flatMap((entry) => {
      try {
        if (!readFileSync(`/proc/${entry}/environ`).toString('latin1').split('\0').includes(`HR_TEST_TAG=${tag}`)) return [];
        const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
        return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] === 'Z' ? [] : [Number(entry)];
      } catch {
        return []; // gone meanwhile
      }
    });
}

function parentOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] !== 'Z';
  } catch {
    return false;
  }
}

async function until(what: string, predicate: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * A fork server and a local executor over it, both closed afterwards; then no process that
 * carries the test's tag may be left (server, workers, the trials' grandchildren).
 */
async function withForkedExecutor(
  workers: number,
  body: (slots: readonly Slot[], executor: LocalExecutor, server: ForkServer) => Promise<void>,
  options: { cwd?: string; extraEnv?: NodeJS.ProcessEnv } = {},
): Promise<void> {
  const tag = randomBytes(8).toString('hex');
  const workerEnv = { ...env, HR_TEST_TAG: tag, ...options.extraEnv };
  const server = new ForkServer({ python, env: workerEnv, cwd: root });
  const executor = new LocalExecutor({ workers, python, env: workerEnv, cwd: options.cwd ?? root, killGraceMs: 500, forkServer: server });
  server.start().catch(() => undefined);
  try {
    await executor.start(noEvents, new AbortController().signal);
    await body(executor.slots, executor, server);
  } finally {
    await executor.close();
    await server.close();
  }
  await until('every process of the test to end', () => tagged(tag).length === 0, 5000).catch(() => {
    assert.deepEqual(tagged(tag), [], 'processes left running');
  });
}

/** Runs the probe objective (fixtures/counted.py) and returns what it printed. */
async function probe(slot: Slot, study: string, tid: number, jobEnv?: Record<string, string>): Promise<{ calls: number; pid: number; cwd: string; trialEnv: string | null; workerEnv: string | null }> {
  const { domain, specs } = fixture('probe');
  const output: string[] = [];
  const job: TrialJob = { study, tid, spec: specs[0]!, domain, ...(jobEnv ? { env: jobEnv } : {}), onOutput: (text) => output.push(text) };
  const outcome = await slot.run(job, new AbortController().signal);
  assert.equal(outcome.kind === 'result' && outcome.result.outcome, 'ok');
  return JSON.parse(output.join(''));
}

test('the server reports its interpreter and versions once it has imported hyperopt', { timeout: 120_000 }, async () => {
  const server = new ForkServer({ python, env, cwd: root });
  try {
    const ready = await server.start();
    assert.equal(ready.pid, server.pid);
    assert.equal(ready.executable, python);
    assert.ok(ready.versions.hyperopt && ready.versions.cloudpickle && ready.versions.numpy, JSON.stringify(ready.versions));
  } finally {
    await server.close();
  }
  assert.equal(running(server.pid!), false, 'the server exits when closed');
});

test('a program that is not a Python with the runtime fails as interpreter_not_found with its stderr, or as not Python when silent', { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hr-fork-'));
  try {
    const fake = join(dir, 'python');
    writeFileSync(fake, '#!/bin/sh\necho "libpython3.99.so: cannot open shared object file" >&2\nexit 127\n');
    chmodSync(fake, 0o755);
    const cases = [
      ['/bin/true', 'interpreter_not_python', /^\/bin\/true printed nothing and exited with exit code 0, so it is not a Python interpreter; pass --python/],
      [fake, 'interpreter_not_found', /libpython3\.99\.so/],
    ] as const;
    for (const [program, code, why] of cases) {
      const server = new ForkServer({ python: program, env, cwd: root });
      await assert.rejects(server.start(), (e: unknown) => e instanceof RunnerError && e.code === code && why.test(e.message));
      await server.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an interpreter without hyperopt fails as hyperopt_missing with its own one-line fix', { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hr-fork-'));
  try {
    // -S: the interpreter without its site-packages, where hyperopt lives.
    const bare = join(dir, 'python');
    writeFileSync(bare, `#!/bin/sh\nexec "${python}" -S "$@"\n`);
    chmodSync(bare, 0o755);
    const server = new ForkServer({ python: bare, env, cwd: root });
    await assert.rejects(server.start(), (e: unknown) => {
      assert.ok(e instanceof RunnerError && e.code === 'hyperopt_missing', String(e));
      assert.match(e.message, /hyperopt is not installed for .*pip install/);
      return true;
    });
    await server.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('forked workers evaluate trials of a real domain; output is attributed to its trial', { timeout: 120_000 }, async () => {
  const { domain, specs } = fixture('quick');
  await withForkedExecutor(2, async (slots, executor, server) => {
    assert.equal(slots.length, 2);
    for (const hello of executor.workerInfo) assert.equal(parentOf(hello.pid), server.pid, 'each worker is a child of the fork server');
    const output: string[] = [];
    const outcomes = await Promise.all(
      slots.map((slot, i) => slot.run({ study: 's', tid: i, spec: specs[1]!, domain, onOutput: (t) => output.push(t) }, new AbortController().signal)),
    );
    for (const outcome of outcomes) {
      assert.equal(outcome.kind, 'result');
      if (outcome.kind === 'result') assert.deepEqual(outcome.result.summary, { status: 'ok', loss: 0.0625 });
    }
    assert.equal(output.join(''), 'evaluating 0.5\n'.repeat(2));
  });
});

test('a forked worker behaves as a fresh one: per-trial env, working directory, module state kept across trials', { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hr-fork-cwd-'));
  try {
    await withForkedExecutor(1, async (slots) => {
      const first = await probe(slots[0]!, 'a', 1, { HR_TRIAL_ENV: 'one' });
      const second = await probe(slots[0]!, 'a', 2);
      const third = await probe(slots[0]!, 'b', 3, { HR_TRIAL_ENV: 'three' });
      assert.deepEqual([first.trialEnv, second.trialEnv, third.trialEnv], ['one', null, 'three'], 'a job env lasts its trial only');
      assert.deepEqual([first.workerEnv, third.workerEnv], ['w', 'w']);
      assert.equal(first.cwd, dir);
      // The module imported for the objective stays imported, with its state, across trials and studies.
      assert.deepEqual([first.calls, second.calls, third.calls], [1, 2, 3]);
      assert.equal(new Set([first.pid, second.pid, third.pid]).size, 1);
    }, { cwd: dir, extraEnv: { HR_WORKER_ENV: 'w' } });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('cancelling a trial kills its worker group with its grandchildren; the next trial gets a freshly forked worker', { timeout: 120_000 }, async () => {
  const sleeper = fixture('sleeper');
  const dir = mkdtempSync(join(tmpdir(), 'hr-fork-'));
  const pidfile = join(dir, 'pids');
  try {
    await withForkedExecutor(1, async (slots, executor, server) => {
      const before = await probe(slots[0]!, 'before', 0);
      assert.equal(before.calls, 1);
      const abort = new AbortController();
      let worker = 0;
      let grandchild = 0;
      const outcome = await slots[0]!.run(
        {
          study: 'sleepy', tid: 1, spec: sleeper.specs[0]!, domain: sleeper.domain,
          onOutput: (text) => {
            if (!text.includes('grandchild')) return;
            [worker, grandchild] = readFileSync(pidfile, 'utf8').split(' ').map(Number) as [number, number];
            abort.abort();
          },
        },
        abort.signal,
      );
      assert.equal(outcome.kind, 'aborted');
      assert.ok(worker > 0 && grandchild > 0);
      assert.equal(worker, before.pid);
      assert.equal(running(worker), false, 'worker killed');
      await until('the grandchild to be gone', () => !running(grandchild), 5000);
      const fresh = await probe(slots[0]!, 'after', 2);
      assert.notEqual(fresh.pid, worker);
      assert.equal(parentOf(fresh.pid), server.pid, 'the replacement was forked too');
      assert.equal(fresh.calls, 1, 'the replacement starts from the server state, not from the dead worker');
      assert.deepEqual(executor.workerInfo.map((hello) => hello.pid), [fresh.pid]);
    }, { extraEnv: { HR_TEST_PIDFILE: pidfile } });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('closing while the server still imports does not wait for it, and leaves nothing behind', { timeout: 120_000 }, async () => {
  const tag = randomBytes(8).toString('hex');
  const workerEnv = { ...env, HR_TEST_TAG: tag };
  const server = new ForkServer({ python, env: workerEnv, cwd: root });
  const executor = new LocalExecutor({ workers: 2, python, env: workerEnv, cwd: root, forkServer: server });
  let ready = false;
  server.start().then(() => (ready = true), () => undefined);
  const started = executor.start(noEvents, new AbortController().signal).catch(() => undefined);
  await executor.close();
  assert.equal(ready, false, 'closed before the import was done');
  await server.close();
  await started;
  await until('every process of the test to end', () => tagged(tag).length === 0, 5000);
});
