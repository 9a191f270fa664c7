/**
 * The default path, as a user who follows the README gets it: `hyperopt-runner run` in a
 * workspace, tracking on (the embedded MLflow server), a fresh command each time; beside it the
 * same studies with `--no-tracking` and the serial script under `python`. Writes the "Default
 * path" section of docs/benchmarks.md. Run: npm run bench (it runs before the engine section).
 *
 * Warm figures come from a workspace that has run a study before; cold ones from a workspace that
 * never ran one (no store, no tracking server).
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { writeBenchmarkSection } from './report';

const root = join(__dirname, '..');
const python = join(root, '.venv', 'bin', 'python');
const cli = join(root, 'bin', 'hyperopt-runner.js');
const scripts = join(__dirname, 'scripts');

interface Measured {
  code: number;
  wall: number;
  cpu: number;
  first: number | null;
  stdout: string;
  stderr: string;
  /** fmin's own wall time, printed by the workload. */
  fmin: number;
  /** CPU seconds the workspace's tracking server processes used meanwhile (they outlive the command). */
  serverCpu: number;
}

function benchEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, HYPEROPT_RUNNER_PYTHON: python, OMP_NUM_THREADS: '1' };
  delete env.MLFLOW_TRACKING_URI;
  delete env.HYPEROPT_RUNNER_DEBUG;
  return env;
}

function newWorkspace(): string {
  const dir = mkdtempSync(join(tmpdir(), 'hr-bench-ws-'));
  for (const script of ['sleep.py', 'noop.py']) copyFileSync(join(scripts, script), join(dir, script));
  return dir;
}

/** CPU seconds (user + system) of the live processes whose command line names this workspace's state folder. */
function trackingCpu(workspace: string): number {
  const needle = join(workspace, '.hyperopt-runner');
  const tick = 100; // USER_HZ on Linux
  let total = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (!cmdline.includes(needle) && !cmdline.includes(`${workspace}\0`)) continue;
      if (!/mlflow|uvicorn|tracking-server|gunicorn/.test(cmdline)) continue;
      const fields = readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ')[1]!.split(' ');
      total += (Number(fields[11]) + Number(fields[12])) / tick;
    } catch {
      // gone meanwhile
    }
  }
  return total;
}

function measure(command: string[], cwd: string, env: NodeJS.ProcessEnv, workspace?: string): Measured {
  const mark = join(tmpdir(), `hr-bench-first-${process.pid}`);
  const serverBefore = workspace ? trackingCpu(workspace) : 0;
  const out = spawnSync(python, [join(scripts, 'measure.py'), mark, '--', ...command], { cwd, env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (out.status !== 0) throw new Error(`measure.py failed: ${out.stderr}`);
  const result = JSON.parse(out.stdout) as Omit<Measured, 'fmin' | 'serverCpu'>;
  if (result.code !== 0) throw new Error(`${command.join(' ')} exited with ${result.code}:\n${result.stderr.slice(-3000)}`);
  const line = result.stdout.split('\n').find((l) => l.startsWith('FMIN_SECONDS'));
  if (!line) throw new Error(`no FMIN_SECONDS in the output of ${command.join(' ')}`);
  const serverCpu = workspace ? Math.max(0, trackingCpu(workspace) - serverBefore) : 0;
  return { ...result, fmin: Number(line.split(' ')[1]), serverCpu };
}

function serial(workspace: string, script: string, args: string[]): Measured {
  return measure([python, join(workspace, script), ...args], workspace, benchEnv());
}

function runner(workspace: string, script: string, args: string[], executor: string, tracked: boolean): Measured {
  const command = [cli, 'run', join(workspace, script), '--executor', executor, '--quiet', ...(tracked ? [] : ['--no-tracking']), '--', ...args];
  return measure(command, workspace, benchEnv(), workspace);
}

/** Ends the workspace's tracking server (it outlives commands by design) and removes the folder. */
function dispose(workspace: string): void {
  spawnSync(cli, ['tracking', 'stop'], { cwd: workspace, env: benchEnv(), encoding: 'utf8' });
  // A build without that command stops its server with the command itself; anything left is ended here.
  const needle = join(workspace, '.hyperopt-runner');
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(needle)) process.kill(Number(entry), 'SIGKILL');
    } catch {
      // gone
    }
  }
  rmSync(workspace, { recursive: true, force: true });
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function cell(values: number[], digits: number, unit = ''): string {
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  return `${median(values).toFixed(digits)}${unit} (${lo.toFixed(digits)}-${hi.toFixed(digits)})`;
}

function verdict(met: boolean): string {
  return met ? 'met' : 'not met';
}

async function main(): Promise<void> {
  const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
  const loadBefore = loadavg();
  const started = Date.now();
  const warm = newWorkspace();
  const series = new Map<string, number[]>();
  const add = (key: string, value: number | null): void => {
    if (value === null) throw new Error(`no value for ${key}`);
    series.set(key, [...(series.get(key) ?? []), value]);
  };
  const get = (key: string): number[] => series.get(key) ?? [];
  try {
    // The warm workspace runs one unmeasured study first, as a user's second run would follow a first.
    runner(warm, 'sleep.py', ['2', '0.1'], 'local:2', true);
    for (let round = 1; round <= rounds; round++) {
      console.log(`round ${round}/${rounds}`);
      // 1. Time to the objective's first call, 8 trials, local:2.
      add('first.serial', serial(warm, 'sleep.py', ['8', '0.1']).first);
      add('first.untracked', runner(warm, 'sleep.py', ['8', '0.1'], 'local:2', false).first);
      add('first.tracked', runner(warm, 'sleep.py', ['8', '0.1'], 'local:2', true).first);
      const cold = newWorkspace();
      try {
        add('first.cold', runner(cold, 'sleep.py', ['8', '0.1'], 'local:2', true).first);
      } finally {
        dispose(cold);
      }
      // 2. Whole command, 16 x 1 s on local:4, and 64 x 1 s on local:8.
      add('whole16.serial', serial(warm, 'sleep.py', ['16', '1']).wall);
      add('whole16.untracked', runner(warm, 'sleep.py', ['16', '1'], 'local:4', false).wall);
      add('whole16.tracked', runner(warm, 'sleep.py', ['16', '1'], 'local:4', true).wall);
      add('whole64.untracked', runner(warm, 'sleep.py', ['64', '1'], 'local:8', false).wall);
      add('whole64.tracked', runner(warm, 'sleep.py', ['64', '1'], 'local:8', true).wall);
      // 3. fmin wall and CPU, 32 x 0.5 s on local:8; 500 no-op trials on local:4.
      for (const tracked of [false, true]) {
        const key = tracked ? 'tracked' : 'untracked';
        const half = runner(warm, 'sleep.py', ['32', '0.5'], 'local:8', tracked);
        add(`half.fmin.${key}`, half.fmin);
        add(`half.wall.${key}`, half.wall);
        add(`half.cpu.${key}`, half.cpu);
        add(`half.server.${key}`, half.serverCpu);
        const noop = runner(warm, 'noop.py', ['500', 'rand'], 'local:4', tracked);
        add(`noop.rate.${key}`, 500 / noop.fmin);
        add(`noop.wall.${key}`, noop.wall);
      }
    }
  } finally {
    dispose(warm);
  }

  const serialFirst = median(get('first.serial'));
  const ratio = (key: string): number => median(get(key)) / serialFirst;
  const speedup16 = median(get('whole16.serial')) / median(get('whole16.tracked'));
  const eff64 = 8 / median(get('whole64.tracked'));
  const fminGap = median(get('half.fmin.tracked')) / median(get('half.fmin.untracked')) - 1;
  const cpuGap = median(get('half.cpu.tracked')) / median(get('half.cpu.untracked')) - 1;
  const cpuGapWithServer = (median(get('half.cpu.tracked')) + median(get('half.server.tracked'))) / median(get('half.cpu.untracked')) - 1;
  const noopRate = median(get('noop.rate.tracked'));
  const minutes = (Date.now() - started) / 60_000;
  const versions = spawnSync(python, ['-c', 'import hyperopt, mlflow, sys; print("Python", sys.version.split()[0], "hyperopt", hyperopt.__version__, "mlflow", mlflow.__version__)'], { encoding: 'utf8' }).stdout.trim();
  const commit = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).stdout.trim();

  writeBenchmarkSection(join(root, 'docs', 'benchmarks.md'), 'Default path', [
    `Machine: ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown CPU'}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB; Node ${process.version}; ${versions}; commit ${commit}.`,
    `Command: \`npm run bench\` (${rounds} rounds; each cell is the median with the range in brackets). Date: ${new Date().toISOString().slice(0, 10)}; ${minutes.toFixed(1)} min. Load average ${loadBefore[0]!.toFixed(1)} before and ${loadavg()[0]!.toFixed(1)} after.`,
    '',
    'Every runner figure is a fresh `hyperopt-runner run SCRIPT --executor local:N` in a workspace folder, as the README gives it: *tracked* is the default (the embedded MLflow server over the workspace\'s store), *untracked* adds `--no-tracking`, *serial* is `python SCRIPT` with plain `fmin`. Times run from the command\'s start: "first call" to the objective\'s first call (the workload writes the time), "whole command" to its exit. *Warm*: the workspace ran a study before; *cold*: a new workspace, no store and no tracking server yet. CPU time is the command\'s whole process tree; the tracking server outlives commands, so its CPU time during the command is given apart. Workloads: [bench/scripts/sleep.py](../bench/scripts/sleep.py) (N trials of S seconds, `rand.suggest`), [bench/scripts/noop.py](../bench/scripts/noop.py).',
    '',
    '| what the user waits for | serial `python script.py` | runner, untracked | runner, tracked (default) | target |',
    '| --- | --- | --- | --- | --- |',
    `| command start to the objective's first call, 8 trials, local:2, warm | ${cell(get('first.serial'), 2, ' s')} | ${cell(get('first.untracked'), 2, ' s')} | ${cell(get('first.tracked'), 2, ' s')}: ${ratio('first.tracked').toFixed(2)}x serial | <= 1.5x: ${verdict(ratio('first.tracked') <= 1.5)} |`,
    `| the same, cold (the workspace's first run) | | | ${cell(get('first.cold'), 2, ' s')}: ${ratio('first.cold').toFixed(2)}x serial | <= 3x: ${verdict(ratio('first.cold') <= 3)} |`,
    `| whole command, 16 trials x 1 s, local:4 | ${cell(get('whole16.serial'), 2, ' s')} | ${cell(get('whole16.untracked'), 2, ' s')} | ${cell(get('whole16.tracked'), 2, ' s')}: speedup ${speedup16.toFixed(2)} | speedup >= 3.0: ${verdict(speedup16 >= 3)} |`,
    `| whole command, 64 trials x 1 s, local:8 (ideal 8 s) | | ${cell(get('whole64.untracked'), 2, ' s')}: efficiency ${(8 / median(get('whole64.untracked'))).toFixed(3)} | ${cell(get('whole64.tracked'), 2, ' s')}: efficiency ${eff64.toFixed(3)} | >= 0.8: ${verdict(eff64 >= 0.8)} |`,
    `| fmin wall, 32 trials x 0.5 s, local:8 (ideal 2.0 s) | | ${cell(get('half.fmin.untracked'), 2, ' s')} | ${cell(get('half.fmin.tracked'), 2, ' s')}: ${(fminGap * 100).toFixed(1)} % over untracked | within 5 %: ${verdict(fminGap <= 0.05)} |`,
    `| whole command of that study | | ${cell(get('half.wall.untracked'), 2, ' s')} | ${cell(get('half.wall.tracked'), 2, ' s')} | |`,
    `| CPU time of that command (its process tree) | | ${cell(get('half.cpu.untracked'), 2, ' s')} | ${cell(get('half.cpu.tracked'), 2, ' s')}: ${(cpuGap * 100).toFixed(0)} % over untracked | within 20 %: ${verdict(cpuGap <= 0.2)} |`,
    `| CPU time of the tracking server meanwhile | | | ${cell(get('half.server.tracked'), 2, ' s')}: with it, ${(cpuGapWithServer * 100).toFixed(0)} % over untracked | |`,
    `| 500 no-op trials, local:4: fmin's rate | | ${cell(get('noop.rate.untracked'), 0, ' trials/s')} | ${cell(get('noop.rate.tracked'), 0, ' trials/s')} | >= 150 trials/s: ${verdict(noopRate >= 150)} |`,
    `| whole command of that study | | ${cell(get('noop.wall.untracked'), 2, ' s')} | ${cell(get('noop.wall.tracked'), 2, ' s')} | |`,
    '',
    "The tracking server's CPU time is its daemon, the `mlflow server` launcher and its uvicorn worker, which writes the runs. Figures from before 2026-12-03 missed the worker (its command line did not name the workspace then; it names the socket in the state folder now), which is why they read about 0.1 s.",
  ]);
}

void main();
