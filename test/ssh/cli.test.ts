// The real CLI (dist/cli.js, built by scripts/setup.sh) running studies on SSH hosts served by
// real sshd instances on loopback (see fixture.ts).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MlflowClient } from '../../core/src/mlflow/client';
import { listTrackingRecords } from '../../core/src/mlflow/serverRecord';
import { fixturePids, PYTHON, ROOT, startSshFixture, waitFor, type SshFixture } from './fixture';

const CLI = join(ROOT, 'bin', 'hyperopt-runner.js');
const SCRIPTS = join(__dirname, 'scripts');
const SAMPLES = join(ROOT, 'samples');

let fx: SshFixture;
let hostsFile: string;

before(async () => {
  if (!existsSync(join(ROOT, 'dist', 'cli.js'))) execFileSync('npm', ['run', '--silent', 'build'], { cwd: ROOT, stdio: 'inherit' });
  fx = await startSshFixture(3);
  hostsFile = fx.writeHostsFile({}, 'hosts.json');
});

after(async () => {
  await fx?.stop();
});

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
  summary: Array<{ study: string; state: string; trials: { total: number; ok: number; failed: number; cancelled: number }; argmin: Record<string, number> | null; parallelism: number; journal: string }>;
}

let runs = 0;

function cli(args: string[], options: { cwd?: string } = {}): { child: ChildProcess; done: Promise<Result>; summaryPath: string; journalDir: string } {
  runs += 1;
  const journalDir = join(fx.root, `journal-${runs}`);
  const summaryPath = join(fx.root, `summary-${runs}.json`);
  // MLflow tracking is another part's business: these runs keep it off.
  const full = args[0] === 'run' ? [...args.slice(0, 2), '--journal-dir', journalDir, '--summary-json', summaryPath, '--no-tracking', ...args.slice(2)] : args;
  const child = spawn('node', [CLI, ...full], {
    cwd: options.cwd ?? ROOT,
    env: { ...fx.env, HYPEROPT_RUNNER_PYTHON: PYTHON },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (t: string) => (stdout += t));
  child.stderr!.setEncoding('utf8').on('data', (t: string) => (stderr += t));
  const done = new Promise<Result>((resolve) =>
    child.on('exit', (code) => {
      // Let the pipes drain.
      setImmediate(() =>
        resolve({ code, stdout, stderr, summary: existsSync(summaryPath) ? (JSON.parse(readFileSync(summaryPath, 'utf8')) as Result['summary']) : [] }),
      );
    }),
  );
  return { child, done, summaryPath, journalDir };
}

function records(journal: string): Array<Record<string, unknown>> {
  return readFileSync(journal, 'utf8')
    .split('\n')
    .filter((l) => l)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

function startSlots(journalDir: string): string[] {
  const files = existsSync(journalDir) ? readdirSync(journalDir).filter((f) => f.endsWith('.jsonl')) : [];
  return files.flatMap((f) => records(join(journalDir, f)).filter((r) => r.k === 'start').map((r) => String(r.slot)));
}

test('a sample study on three hosts x two slots completes with hyperopt semantics; the runtime is uploaded once; a sibling module is importable remotely', async () => {
  const first = cli(['run', join(SAMPLES, 'quickstart.py'), '--executor', 'ssh:h1,h2,h3', '--hosts-file', hostsFile]);
  const result = await first.done;
  assert.equal(result.code, 0, result.stderr.slice(-3000));
  assert.match(result.stdout, /best point: \{'x': /);
  assert.equal(result.summary.length, 1);
  const study = result.summary[0]!;
  assert.equal(study.state, 'max_evals');
  assert.deepEqual(study.trials, { total: 40, ok: 40, failed: 0, cancelled: 0 });
  assert.deepEqual(Object.keys(study.argmin ?? {}).sort(), ['x', 'y']);
  assert.equal(study.parallelism, 6);
  const hosts = new Set(startSlots(first.journalDir).map((s) => s.split('/')[0]));
  assert.deepEqual([...hosts].sort(), ['h1', 'h2', 'h3']);
  assert.deepEqual(fixturePids(fx), [], 'no worker left on any host');
  const marker = join(fx.host('h1').cacheDir, 'runtime');
  const versions = readdirSync(marker);
  assert.equal(versions.length, 1);
  const stamp = statSync(join(marker, versions[0]!, '.complete')).mtimeMs;
  assert.deepEqual(readdirSync(join(fx.host('h1').cacheDir, 'runs')), [], "the run's folder is gone");

  // The objective lives in a sibling module: cloudpickle pickles it by reference, so the
  // script's folder is shipped. From a folder of its own, so nothing else could provide it.
  const folder = mkdtempSync(join(fx.root, 'sibling-'));
  copyFileSync(join(SAMPLES, 'sibling_objective.py'), join(folder, 'sibling_objective.py'));
  copyFileSync(join(SAMPLES, 'objectives.py'), join(folder, 'objectives.py'));
  const second = await cli(['run', join(folder, 'sibling_objective.py'), '--executor', 'ssh:h1,h2', '--hosts-file', hostsFile], { cwd: folder }).done;
  assert.equal(second.code, 0, second.stderr.slice(-3000));
  assert.deepEqual(second.summary[0]!.trials, { total: 30, ok: 30, failed: 0, cancelled: 0 });
  assert.equal(statSync(join(marker, versions[0]!, '.complete')).mtimeMs, stamp, 'the cached runtime was not uploaded again');
  assert.deepEqual(readdirSync(marker), versions);
});

test('parallelism 1 with a fixed seed on an SSH host gives the serial sequence', async () => {
  const serial = execFileSync(PYTHON, [join(SCRIPTS, 'seeded.py'), '12'], { encoding: 'utf8', env: { ...process.env, PYTHONPATH: '' } });
  const result = await cli(['run', join(SCRIPTS, 'seeded.py'), '--executor', 'ssh:h2', '--hosts-file', hostsFile, '--parallelism', '1', '--', '12']).done;
  assert.equal(result.code, 0, result.stderr.slice(-3000));
  const sequence = (text: string): unknown => JSON.parse(text.split('\n').find((l) => l.startsWith('SEQUENCE '))!.slice('SEQUENCE '.length));
  assert.deepEqual(sequence(result.stdout), sequence(serial));
});

test('one host and its processes killed mid-study: its trials are re-queued, it is retired once, and the study completes', async () => {
  const lossy = fx.writeHostsFile({ reconnect: { initialDelayMs: 200, maxDelayMs: 400, maxFailures: 3 } }, 'hosts-lossy.json');
  const run = cli(['run', join(SCRIPTS, 'sleepy.py'), '--executor', 'ssh:h1,h2,h3', '--hosts-file', lossy, '--', '24', '0.6']);
  await waitFor(() => startSlots(run.journalDir).filter((s) => s.startsWith('h2/')).length >= 3, 60_000, 'trials started on h2');
  await new Promise((resolve) => setTimeout(resolve, 200));
  fx.killHost('h2');
  const result = await run.done;
  await fx.restartHost('h2');
  assert.equal(result.code, 0, result.stderr.slice(-3000));
  const study = result.summary[0]!;
  assert.equal(study.state, 'max_evals');
  assert.deepEqual(study.trials, { total: 24, ok: 24, failed: 0, cancelled: 0 });
  const journal = records(study.journal);
  const requeued = journal.filter((r) => r.k === 'requeue');
  assert.ok(requeued.length >= 1 && requeued.every((r) => String(r.slot).startsWith('h2/')), JSON.stringify(requeued));
  assert.match(result.stderr, /h2: connection lost/);
  assert.equal((result.stderr.match(/h2 retired after/g) ?? []).length, 1, result.stderr);
  assert.match(result.stdout, /FMIN_RETURNED/);
  assert.deepEqual(fixturePids(fx), []);
});

test('Cancel (two Ctrl+C) mid-study: within 2 s no worker process remains on any host', async () => {
  const run = cli(['run', join(SCRIPTS, 'sleepy.py'), '--executor', 'ssh:h1,h2,h3', '--hosts-file', hostsFile, '--', '30', '20']);
  await waitFor(() => startSlots(run.journalDir).length >= 6, 60_000, 'six trials running');
  await waitFor(() => fx.hosts.every((h) => fx.workerPids(h.name).length === 2), 10_000, 'two workers on every host');
  run.child.kill('SIGINT');
  await new Promise((resolve) => setTimeout(resolve, 300));
  run.child.kill('SIGINT');
  const cancelledAt = Date.now();
  const trace: string[] = [];
  await waitFor(
    () => {
      const left = fixturePids(fx);
      trace.push(`${Date.now() - cancelledAt} ms: ${left.length} left, cli ${run.child.exitCode === null ? 'running' : 'exited'}`);
      return left.length === 0;
    },
    2000,
    'every worker on every host to be gone',
  ).catch((error: Error) => {
    throw new Error(`${error.message}\n${trace.filter((_, i) => i % 8 === 0).join('\n')}`, { cause: error });
  });
  const result = await run.done;
  const took = Date.now() - cancelledAt;
  assert.ok(took < 5000, `the CLI ended ${took} ms after the second Ctrl+C`);
  const study = result.summary[0]!;
  assert.equal(study.state, 'cancelled');
  assert.ok(study.trials.cancelled >= 6, JSON.stringify(study.trials));
  assert.deepEqual(fixturePids(fx), []);
});

test('mixed executors: ssh and local slots take trials of one study', async () => {
  const run = cli(['run', join(SCRIPTS, 'sleepy.py'), '--executor', 'ssh:h3', '--executor', 'local:2', '--hosts-file', hostsFile, '--', '16', '0.3']);
  const result = await run.done;
  assert.equal(result.code, 0, result.stderr.slice(-3000));
  assert.deepEqual(result.summary[0]!.trials, { total: 16, ok: 16, failed: 0, cancelled: 0 });
  assert.equal(result.summary[0]!.parallelism, 4);
  const slots = startSlots(run.journalDir);
  assert.ok(slots.some((s) => s.startsWith('h3/')), slots.join(' '));
  assert.ok(slots.some((s) => s.startsWith('local/')), slots.join(' '));
  assert.match(result.stderr, /on h3\/\d/);
  assert.match(result.stderr, /on local/);
});

test("the workspace's tracking server through the forward: remote objectives log with its token; without it the port refuses", async () => {
  const workspace = mkdtempSync(join(fx.root, 'tracked-'));
  copyFileSync(join(SCRIPTS, 'tracked_remote.py'), join(workspace, 'study.py'));
  const env = { ...fx.env, HYPEROPT_RUNNER_PYTHON: PYTHON };
  delete env.MLFLOW_TRACKING_URI;
  try {
    const summaryPath = join(workspace, 'summary.json');
    const child = spawn('node', [CLI, 'run', 'study.py', '--executor', 'ssh:h1', '--hosts-file', hostsFile, '--summary-json', summaryPath, '--', '6'], { cwd: workspace, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (t: string) => (stderr += t));
    child.stdout!.resume();
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    assert.equal(code, 0, stderr.slice(-3000));
    const [study] = JSON.parse(readFileSync(summaryPath, 'utf8')) as Result['summary'];
    assert.deepEqual(study!.trials, { total: 6, ok: 6, failed: 0, cancelled: 0 });
    const [found] = listTrackingRecords(workspace);
    assert.ok(found, 'the workspace has its tracking server');
    const mlflow = new MlflowClient({ trackingUri: `http://127.0.0.1:${found.record.port}`, auth: { kind: 'bearer', token: found.record.apiToken }, requestTimeoutMs: 60_000 });
    // What the command left unwritten at its end, the workspace's server writes in the background.
    let logged = await mlflow.searchAllRuns({ experimentIds: ['0'], filter: 'metrics.custom >= 0' });
    for (const deadline = Date.now() + 120_000; logged.length < 6 && Date.now() < deadline; ) {
      await new Promise((r) => setTimeout(r, 250));
      logged = await mlflow.searchAllRuns({ experimentIds: ['0'], filter: 'metrics.custom >= 0' });
    }
    assert.equal(logged.length, 6, "every remote trial's own metric is in its run");
    for (const run of logged) {
      assert.equal(run.data.tags['hyperopt_runner.slot']?.startsWith('h1/'), true, JSON.stringify(run.data.tags));
      assert.equal(run.data.metrics.anonymous_status, 401, 'a request on the host without the token is refused');
    }
  } finally {
    execFileSync('node', [CLI, 'tracking', 'stop', '--workspace', workspace], { env, stdio: 'ignore' });
  }
});

test('host keys from the command line: an unknown host stops the run before any trial; --accept-new-host-keys records it; a changed key is refused', async () => {
  const dir = join(fx.root, 'cli-keys');
  mkdirSync(dir);
  const knownHosts = join(dir, 'known_hosts');
  const h3 = fx.host('h3');
  writeFileSync(knownHosts, readFileSync(fx.knownHosts, 'utf8').split('\n').filter((l) => !l.startsWith(`[${h3.address}]`)).join('\n'));
  const config = join(dir, 'ssh_config');
  writeFileSync(config, readFileSync(fx.sshConfig, 'utf8').replace(fx.knownHosts, knownHosts));
  const hosts = join(dir, 'hosts.json');
  const base = JSON.parse(readFileSync(hostsFile, 'utf8')) as Record<string, unknown>;
  writeFileSync(hosts, JSON.stringify({ ...base, sshConfig: config }));
  const print = execFileSync('ssh-keygen', ['-l', '-f', join(h3.dir, 'ssh_host_ed25519_key.pub')], { encoding: 'utf8' }).split(' ')[1]!;

  const refused = cli(['run', join(SCRIPTS, 'sleepy.py'), '--executor', 'ssh:h3', '--hosts-file', hosts, '--', '4', '0']);
  const result = await refused.done;
  assert.equal(result.code, 2);
  const line = result.stderr.trim().split('\n').pop()!;
  assert.match(line, /^hyperopt-runner: error: h3 \(root@127\.0\.0\.4:\d+\): unknown host key ssh-ed25519 /);
  assert.ok(line.includes(print) && line.includes('--accept-new-host-keys'), line);
  assert.deepEqual(startSlots(refused.journalDir), [], 'no trial was dispatched');

  const check = await cli(['hosts', 'check', 'h1', 'h3', '--hosts-file', hosts]).done;
  assert.equal(check.code, 1);
  assert.match(check.stdout, /h1 {2}root@127\.0\.0\.2:\d+\n {2}reachable {6}yes/);
  assert.match(check.stdout, /error: h3 .*unknown host key/);

  const accepted = await cli(['hosts', 'check', 'h3', '--hosts-file', hosts, '--accept-new-host-keys']).done;
  assert.equal(accepted.code, 0, accepted.stdout + accepted.stderr);
  assert.match(accepted.stderr, /recorded the new host key ssh-ed25519/);
  assert.ok(readFileSync(knownHosts, 'utf8').includes(h3.hostKey));
  assert.match(accepted.stdout, /interpreter {4}.*Python 3\.\d+\.\d+ \(driver 3\.\d+\.\d+\)/);
  assert.match(accepted.stdout, /round trip {5}\d/);
  assert.match(accepted.stdout, /=> ready/);

  // The host's key changes: refused, with or without the flag.
  writeFileSync(knownHosts, readFileSync(knownHosts, 'utf8').replace(h3.hostKey, fx.host('h1').hostKey));
  const changed = await cli(['hosts', 'check', 'h3', '--hosts-file', hosts, '--accept-new-host-keys', '--json']).done;
  assert.equal(changed.code, 1);
  const report = JSON.parse(changed.stdout) as Array<{ errors: string[]; reachable: boolean; authenticated: boolean }>;
  assert.match(report[0]!.errors[0]!, /HOST KEY CHANGED/);
  assert.equal(report[0]!.authenticated, false);
});

test('hosts check finds an interpreter without hyperopt; run stops with a one-line error naming the host', async () => {
  const bare = fx.writeHostsFile({ hosts: { h2: { python: '/usr/bin/python3' } } }, 'hosts-bare.json');
  const check = await cli(['hosts', 'check', 'h2', '--hosts-file', bare]).done;
  assert.equal(check.code, 1);
  assert.match(check.stdout, /hyperopt {7}not installed/);
  assert.match(check.stdout, /=> NOT READY/);
  const run = cli(['run', join(SCRIPTS, 'sleepy.py'), '--executor', 'ssh:h2', '--hosts-file', bare, '--', '4', '0']);
  const result = await run.done;
  assert.equal(result.code, 2);
  assert.match(result.stderr.trim().split('\n').pop()!, /^hyperopt-runner: error: h2 \(root@127\.0\.0\.3:\d+\): hyperopt is not installed \(interpreter: \/usr\/bin\/python3\)/);
  assert.deepEqual(startSlots(run.journalDir), []);
  assert.deepEqual(fixturePids(fx), []);
});
