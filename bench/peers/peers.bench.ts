/**
 * Side-by-side benchmark: the same hyperopt studies on serial Trials(), SparkTrials in
 * local[N] mode, this project's local executor, its SSH executor on loopback hosts, and Ray
 * Tune with HyperOptSearch. Creates its own venv (bench/peers/.venv), writes the raw results to
 * docs/benchmarks-peers.json, a chart to docs/benchmarks-peers.svg and the "Peers" section of
 * docs/benchmarks.md.
 *
 * Run: npm run bench:peers
 *   BENCH_QUICK=1      small sizes and one round, to check that every runner works
 *   BENCH_ROUNDS=N     rounds (default 3; 1 in quick mode)
 *   BENCH_RUNNERS=...  a subset, e.g. serial,local,spark (default: all five)
 *   BENCH_NO_DOCS=1    print and keep the results in bench/peers/last-results.json only
 *   BENCH_RENDER=FILE  measure nothing: write the chart and the docs section again from FILE
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSshFixture, type SshFixture } from '../../test/ssh/fixture';
import { writeBenchmarkSection } from '../report';
import { ProcessWatch, type MemoryPeaks } from './procs';
import { renderChart, renderSection } from './render';
import { ensureBuild, ensureSshd, ensureVenv, HERE, machine, PYTHON, ROOT, versions, warmImports } from './setup';

export type RunnerId = 'serial' | 'spark' | 'local' | 'ssh' | 'ray';
export const RUNNER_IDS: RunnerId[] = ['serial', 'spark', 'local', 'ssh', 'ray'];
export type CaseId = 'noop' | 'sleep' | 'gbm-serial' | 'gbm2' | 'gbm4' | 'cancel';

export interface Case {
  id: CaseId;
  workload: 'noop' | 'sleep1' | 'gbm' | 'sleep30';
  n: number;
  parallelism: number;
  /** Stops the study after this many seconds (fmin timeout, Tune time budget). */
  cap?: number;
  runners: RunnerId[];
  kind: 'study' | 'cancel';
}

export interface RunRecord {
  runner: RunnerId;
  case: CaseId;
  round: number;
  seed: number;
  ok: boolean;
  error?: string;
  fminSeconds?: number;
  setupSeconds?: number;
  /** From spawning the command to its exit. */
  e2eSeconds?: number;
  done?: number;
  bestLoss?: number | null;
  cancelMs?: number | null;
  memory?: MemoryPeaks;
  /** Processes of the run still alive 10 s after the command exited (then killed). */
  leftover?: string[];
}

const QUICK = process.env.BENCH_QUICK === '1';
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? (QUICK ? 1 : 3));
const SELECTED = (process.env.BENCH_RUNNERS?.split(',').map((r) => r.trim()) ?? RUNNER_IDS).filter((r): r is RunnerId => RUNNER_IDS.includes(r as RunnerId));
const NO_DOCS = process.env.BENCH_NO_DOCS === '1';
const WORKLOAD = join(HERE, 'workload.py');
const CLI = join(ROOT, 'bin', 'hyperopt-runner.js');
const STUDY_LIMIT_MS = 600_000;
const CANCEL_LIMIT_MS = 60_000;

const parallel: RunnerId[] = ['spark', 'local', 'ssh', 'ray'];
const all: RunnerId[] = ['serial', ...parallel];

export const CASES: Case[] = QUICK
  ? [
      { id: 'noop', workload: 'noop', n: 30, parallelism: 2, cap: 30, runners: all, kind: 'study' },
      { id: 'sleep', workload: 'sleep1', n: 8, parallelism: 4, cap: 40, runners: parallel, kind: 'study' },
      { id: 'gbm-serial', workload: 'gbm', n: 8, parallelism: 1, cap: 75, runners: ['serial'], kind: 'study' },
      { id: 'gbm2', workload: 'gbm', n: 8, parallelism: 2, cap: 75, runners: parallel, kind: 'study' },
      { id: 'gbm4', workload: 'gbm', n: 8, parallelism: 4, cap: 75, runners: parallel, kind: 'study' },
      { id: 'cancel', workload: 'sleep30', n: 8, parallelism: 2, runners: all, kind: 'cancel' },
    ]
  : [
      // Each study stops at its cap (fmin's timeout, Tune's time budget), which keeps the whole
      // command near 30 minutes on 2 cores whatever a runner's per-trial cost; a runner cut short
      // is measured on the trials it finished.
      { id: 'noop', workload: 'noop', n: 500, parallelism: 4, cap: 30, runners: all, kind: 'study' },
      { id: 'sleep', workload: 'sleep1', n: 64, parallelism: 8, cap: 40, runners: parallel, kind: 'study' },
      { id: 'gbm-serial', workload: 'gbm', n: 100, parallelism: 1, cap: 75, runners: ['serial'], kind: 'study' },
      { id: 'gbm2', workload: 'gbm', n: 100, parallelism: 2, cap: 75, runners: parallel, kind: 'study' },
      { id: 'gbm4', workload: 'gbm', n: 100, parallelism: 4, cap: 75, runners: parallel, kind: 'study' },
      { id: 'cancel', workload: 'sleep30', n: 40, parallelism: 4, runners: all, kind: 'cancel' },
    ];

const log = (line: string): void => console.log(`[peers] ${line}`);

let fixture: SshFixture | undefined;
const hostsFiles = new Map<number, string>();
/** Journals, Ray's session and Tune's storage for the runs; made when measuring starts. */
let scratch = '';

function hostsFile(parallelism: number): string {
  let path = hostsFiles.get(parallelism);
  if (!path) {
    // Two loopback hosts, half the slots on each.
    path = fixture!.writeHostsFile({ defaults: { python: PYTHON, slots: Math.max(1, Math.ceil(parallelism / 2)) } }, `hosts-${parallelism}.json`);
    hostsFiles.set(parallelism, path);
  }
  return path;
}

function command(runner: RunnerId, c: Case, seed: number, markDir: string): { argv: string[]; env: NodeJS.ProcessEnv } {
  const p = runner === 'serial' ? 1 : c.parallelism;
  const scriptArgs = [c.workload, String(c.n), String(p), String(seed), c.cap === undefined ? '-' : String(c.cap), markDir || '-'];
  const base: NodeJS.ProcessEnv = { ...(runner === 'ssh' ? fixture!.env : process.env), PYTHONUNBUFFERED: '1', OMP_NUM_THREADS: '1' };
  switch (runner) {
    case 'serial':
      return { argv: [PYTHON, WORKLOAD, 'hyperopt', ...scriptArgs], env: base };
    case 'spark':
      return { argv: [PYTHON, WORKLOAD, 'spark', ...scriptArgs], env: { ...base, SPARK_LOCAL_IP: '127.0.0.1' } };
    case 'ray':
      return { argv: [PYTHON, WORKLOAD, 'ray', ...scriptArgs], env: { ...base, RAY_USAGE_STATS_ENABLED: '0', PEERS_SCRATCH: scratch } };
    case 'local':
    case 'ssh': {
      const journal = mkdtempSync(join(scratch, 'journal-'));
      const executor = runner === 'local' ? ['--executor', `local:${p}`] : ['--executor', 'ssh:h1,h2', '--hosts-file', hostsFile(p)];
      return {
        argv: ['node', CLI, 'run', WORKLOAD, ...executor, '--python', PYTHON, '--no-tracking', '--quiet', '--journal-dir', journal, '--', 'hyperopt', ...scriptArgs],
        env: base,
      };
    }
  }
}

let current: Launched | undefined;

interface Launched {
  child: ChildProcess;
  watch: ProcessWatch;
  output: () => string;
  exited: Promise<number | null>;
  started: number;
}

function launch(runner: RunnerId, c: Case, seed: number, markDir: string): Launched {
  const tag = randomBytes(6).toString('hex');
  const roots = runner === 'ssh' ? fixture!.hosts.map((h) => h.process?.pid).filter((pid): pid is number => pid !== undefined) : [];
  const watch = new ProcessWatch(tag, roots);
  const { argv, env } = command(runner, c, seed, markDir);
  const started = performance.now();
  // A process group of its own, as a terminal gives a command: Ctrl+C is sent to the group.
  const child = spawn(argv[0]!, argv.slice(1), { env: { ...env, HR_BENCH_TAG: tag }, detached: true, stdio: ['ignore', 'pipe', 'pipe'], cwd: ROOT });
  let output = '';
  const keep = (text: string): void => {
    output = (output + text).slice(-200_000);
  };
  child.stdout!.setEncoding('utf8').on('data', keep);
  child.stderr!.setEncoding('utf8').on('data', keep);
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  watch.start(100);
  current = { child, watch, output: () => output, exited, started };
  return current;
}

function killAll(pids: number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Gone.
    }
  }
}

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid!, signal);
  } catch {
    // The group is gone.
  }
}

async function settle(run: Launched): Promise<string[]> {
  // The command has exited; what it started should go with it.
  const deadline = performance.now() + 10_000;
  run.watch.scan();
  while (run.watch.livePids().length > 0 && performance.now() < deadline) {
    await sleep(100);
    run.watch.scan();
  }
  run.watch.stop();
  const left = run.watch.livePids();
  const described = run.watch.describe(left);
  killAll(left);
  return described;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function parseResult(output: string): { fmin_seconds: number; setup_seconds: number; done: number; best_loss: number | null } | undefined {
  const line = output.split('\n').reverse().find((l) => l.startsWith('PEERS_RESULT '));
  return line ? (JSON.parse(line.slice('PEERS_RESULT '.length)) as { fmin_seconds: number; setup_seconds: number; done: number; best_loss: number | null }) : undefined;
}

function tail(output: string, lines = 25): string {
  return output.trim().split('\n').slice(-lines).join('\n');
}

async function study(runner: RunnerId, c: Case, round: number, seed: number): Promise<RunRecord> {
  const run = launch(runner, c, seed, '');
  const timer = setTimeout(() => signalGroup(run.child, 'SIGKILL'), STUDY_LIMIT_MS);
  const code = await run.exited;
  clearTimeout(timer);
  const e2eSeconds = (performance.now() - run.started) / 1000;
  const leftover = await settle(run);
  const result = parseResult(run.output());
  const record: RunRecord = { runner, case: c.id, round, seed, ok: code === 0 && result !== undefined, e2eSeconds, memory: run.watch.peaks(), leftover };
  if (result) {
    record.fminSeconds = result.fmin_seconds;
    record.setupSeconds = result.setup_seconds;
    record.done = result.done;
    record.bestLoss = result.best_loss;
  }
  if (!record.ok) record.error = `exit ${code}${code === null ? ' (killed after the time limit)' : ''}: ${tail(run.output())}`;
  return record;
}

async function cancel(runner: RunnerId, c: Case, round: number, seed: number): Promise<RunRecord> {
  const markDir = mkdtempSync(join(scratch, 'marks-'));
  const run = launch(runner, c, seed, markDir);
  const p = runner === 'serial' ? 1 : c.parallelism;
  const record: RunRecord = { runner, case: c.id, round, seed, ok: false };
  const startDeadline = performance.now() + 300_000;
  let exitedEarly = false;
  void run.exited.then(() => (exitedEarly = true));
  while (readdirSync(markDir).length < p && performance.now() < startDeadline && !exitedEarly) await sleep(50);
  if (readdirSync(markDir).length < p) {
    record.error = `the study did not start ${p} trials: ${tail(run.output())}`;
    signalGroup(run.child, 'SIGKILL');
    await run.exited;
    record.leftover = await settle(run);
    return record;
  }
  await sleep(500);
  run.watch.scan();
  const t0 = performance.now();
  // The user's gesture: Ctrl+C twice in the terminal, for every runner. Ours stops on the first
  // and cancels on the second; Ray Tune stops gracefully on the first and exits on the second;
  // serial hyperopt and SparkTrials raise KeyboardInterrupt on the first.
  signalGroup(run.child, 'SIGINT');
  await sleep(50);
  signalGroup(run.child, 'SIGINT');
  // Measurement loop: the benchmark samples the process table.
  let gone: number | undefined;
  while (performance.now() - t0 < CANCEL_LIMIT_MS) {
    if (run.watch.livePids().length === 0) {
      run.watch.scan();
      if (run.watch.livePids().length === 0) {
        gone = performance.now() - t0;
        break;
      }
    }
    await sleep(5);
  }
  record.cancelMs = gone ?? null;
  record.ok = gone !== undefined;
  if (gone === undefined) {
    record.error = `processes still running ${CANCEL_LIMIT_MS / 1000} s after Ctrl+C: ${run.watch.describe(run.watch.livePids()).join('; ')}`;
    killAll(run.watch.livePids());
    signalGroup(run.child, 'SIGKILL');
  }
  await run.exited;
  record.e2eSeconds = (performance.now() - run.started) / 1000;
  record.leftover = await settle(run);
  record.memory = run.watch.peaks();
  return record;
}

function summaryLine(r: RunRecord): string {
  if (!r.ok) return `${r.runner} ${r.case} round ${r.round}: FAILED ${r.error?.split('\n').slice(-3).join(' | ')}`;
  if (r.cancelMs !== undefined) return `${r.runner} ${r.case} round ${r.round}: last process gone ${r.cancelMs?.toFixed(0)} ms after Ctrl+C`;
  const m = r.memory;
  return `${r.runner} ${r.case} round ${r.round}: ${r.done} trials, fmin ${r.fminSeconds?.toFixed(2)} s, setup ${r.setupSeconds?.toFixed(1)} s, end to end ${r.e2eSeconds?.toFixed(1)} s, best ${r.bestLoss?.toFixed(4)}, driver ${m?.driverMb?.toFixed(0)} MB, coordinator ${m?.coordinatorMb?.toFixed(0)} MB${r.leftover?.length ? `, LEFT ${r.leftover.length} processes` : ''}`;
}

export interface Results {
  quick: boolean;
  date: string;
  command: string;
  rounds: number;
  totalSeconds: number;
  venvSeconds: number;
  machine: ReturnType<typeof machine> & { loadAtEnd: number[] };
  versions: ReturnType<typeof versions>;
  cases: Case[];
  runners: RunnerId[];
  /** Runners that could not run at all, with the reason. */
  unavailable: Partial<Record<RunnerId, string>>;
  runs: RunRecord[];
}

function writeDocs(results: Results): void {
  const docs = join(ROOT, 'docs');
  mkdirSync(docs, { recursive: true });
  writeFileSync(join(docs, 'benchmarks-peers.svg'), renderChart(results));
  writeBenchmarkSection(join(docs, 'benchmarks.md'), 'Peers', renderSection(results));
}

async function main(): Promise<void> {
  if (process.env.BENCH_RENDER) {
    writeDocs(JSON.parse(readFileSync(process.env.BENCH_RENDER, 'utf8')) as Results);
    log('wrote docs/benchmarks-peers.svg and the Peers section of docs/benchmarks.md');
    return;
  }
  const t0 = performance.now();
  scratch = mkdtempSync(join(tmpdir(), 'peers-'));
  const venvSeconds = ensureVenv(log);
  ensureBuild(log);
  const unavailable: Partial<Record<RunnerId, string>> = {};
  if (SELECTED.includes('ssh')) {
    const missing = ensureSshd(log);
    if (missing) unavailable.ssh = missing;
    else {
      try {
        fixture = await startSshFixture(2);
      } catch (error) {
        unavailable.ssh = `the loopback sshd servers did not start: ${(error as Error).message}`;
      }
    }
  }
  const facts = machine();
  const found = versions();
  if (found.ray.startsWith('not importable')) unavailable.ray = `ray ${found.ray}`;
  if (found.pyspark.startsWith('not importable')) unavailable.spark = `pyspark ${found.pyspark}`;
  log(`${facts.cores} cores, ${facts.cpu}, ${facts.memoryGiB} GiB, load ${facts.loadAtStart.join(' ')}; ${QUICK ? 'QUICK mode, ' : ''}${ROUNDS} round(s); runners ${SELECTED.join(', ')}`);
  warmImports();

  // The SSH hosts get the runtime uploaded by a small unmeasured study, as any first run there
  // does. The other runners start from the page cache filled above.
  const warm: Case = { id: 'noop', workload: 'noop', n: 4, parallelism: 2, runners: all, kind: 'study' };
  if (SELECTED.includes('ssh') && !unavailable.ssh) {
    const r = await study('ssh', warm, 0, 1);
    log(`warm-up ssh: ${r.ok ? `ok in ${r.e2eSeconds?.toFixed(1)} s` : 'FAILED'}`);
    if (!r.ok) unavailable.ssh = r.error ?? 'failed';
  }

  const runs: RunRecord[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    const seed = 1000 + round;
    for (const c of CASES) {
      for (const runner of c.runners) {
        if (!SELECTED.includes(runner) || unavailable[runner]) continue;
        const record = c.kind === 'study' ? await study(runner, c, round, seed) : await cancel(runner, c, round, seed);
        runs.push(record);
        log(summaryLine(record));
        // A runner whose first two studies both fail (Ray or Spark not starting here) is reported
        // with that error rather than failing the same way in every case.
        const own = runs.filter((r) => r.runner === runner);
        if (own.length === 2 && own.every((r) => !r.ok)) unavailable[runner] = record.error ?? 'failed';
      }
    }
  }
  await fixture?.stop();
  rmSync(scratch, { recursive: true, force: true });

  const results: Results = {
    quick: QUICK,
    date: new Date().toISOString(),
    command: `${QUICK ? 'BENCH_QUICK=1 ' : ''}${process.env.BENCH_ROUNDS ? `BENCH_ROUNDS=${ROUNDS} ` : ''}${process.env.BENCH_RUNNERS ? `BENCH_RUNNERS=${SELECTED.join(',')} ` : ''}npm run bench:peers`,
    rounds: ROUNDS,
    totalSeconds: (performance.now() - t0) / 1000,
    venvSeconds,
    machine: { ...facts, loadAtEnd: loadavg().map((l) => Math.round(l * 100) / 100) },
    versions: found,
    cases: CASES,
    runners: SELECTED,
    unavailable,
    runs,
  };
  const json = `${JSON.stringify(results, null, 2)}\n`;
  if (NO_DOCS) {
    writeFileSync(join(HERE, 'last-results.json'), json);
    log(`results in ${join(HERE, 'last-results.json')}`);
  } else {
    mkdirSync(join(ROOT, 'docs'), { recursive: true });
    writeFileSync(join(ROOT, 'docs', 'benchmarks-peers.json'), json);
    writeDocs(results);
    log('wrote docs/benchmarks-peers.json, docs/benchmarks-peers.svg and the Peers section of docs/benchmarks.md');
  }
  log(`total ${(results.totalSeconds / 60).toFixed(1)} min`);
}

if (require.main === module) {
  // Ctrl+C on the benchmark ends the run in progress and the loopback sshd servers with it.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      if (current) {
        signalGroup(current.child, 'SIGKILL');
        current.watch.scan();
        killAll(current.watch.livePids());
      }
      void (fixture?.stop() ?? Promise.resolve()).finally(() => {
        if (scratch) rmSync(scratch, { recursive: true, force: true });
        process.exit(130);
      });
    });
  }
  main().catch(async (error: unknown) => {
    console.error(error);
    await fixture?.stop();
    process.exit(1);
  });
}
