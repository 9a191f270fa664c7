/**
 * Side-by-side benchmark: the same hyperopt studies on serial Trials(), SparkTrials in
 * local[N] mode, this project's local executor, its SSH executor on loopback hosts, and Ray
 * Tune with HyperOptSearch. Creates its own venv (bench/peers/.venv), writes the raw results to
 * docs/benchmarks-peers.json, a chart to docs/benchmarks-peers.svg and the "Peers" section of
 * docs/benchmarks.md.
 *
 * The Python-side runners (serial, SparkTrials, Ray Tune) run a round's studies in one process
 * each: one Spark session or Ray instance per round, shared by its studies, the cancel measure
 * last. Ours run one `hyperopt-runner run` per study, as its users do. Every study stops at its
 * cap (fmin's timeout, Tune's time budget) and every process at a hard limit, which together
 * bound the command's time whatever a runner's per-trial cost.
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
import { acquireTrackingServer, stopTrackingServer, type TrackingServerLease } from '../../core/src/mlflow/serverLease';
import { defaultStoreUri } from '../../core/src/mlflow/supervisor';
import { writeBenchmarkSection } from '../report';
import { ProcessWatch, type MemoryPeaks } from './procs';
import { renderChart, renderSection } from './render';
import { ensureBuild, ensureSshd, ensureVenv, HERE, hyperoptImportSeconds, idleShare, machine, PYTHON, ROOT, versions, warmImports } from './setup';

export type RunnerId = 'serial' | 'spark' | 'local' | 'tracked' | 'ssh' | 'ray';
export const RUNNER_IDS: RunnerId[] = ['serial', 'spark', 'local', 'tracked', 'ssh', 'ray'];
/** Our runners: one `hyperopt-runner run` per study. `tracked` is `local` as the README gives it, tracking on. */
type OurRunner = 'local' | 'tracked' | 'ssh';
export type CaseId = 'noop' | 'sleep' | 'gbm-serial' | 'gbm2' | 'gbm4' | 'cancel';

export interface Case {
  id: CaseId;
  workload: 'noop' | 'sleep1' | 'gbm' | 'sleep30';
  n: number;
  parallelism: number;
  /** Stops the study after this many seconds (fmin timeout, Tune time budget). */
  cap?: number;
  /** Why the cap is what it is, for the report. */
  capReason?: string;
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
  /**
   * From spawning the command to its exit; for a study inside a shared process, that process's
   * start-up (spawn to the first study's end, less that study) plus this study's own span.
   */
  e2eSeconds?: number;
  /** The study ran in a process shared with the round's other studies of this runner. */
  shared?: boolean;
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
const CANCEL_LIMIT_MS = 60_000;
/** How long the cancel study gets to have its trials running. */
const CANCEL_START_MS = 120_000;
/** Past its cap, a study (or a shared process, past the sum of its studies' caps) gets this long to start and stop before it is killed. */
const LIMIT_ALLOWANCE_S = 120;
/** Runners that run a round's studies in one process. */
export const SHARED_PROCESS: RunnerId[] = ['serial', 'spark', 'ray'];

const parallel: RunnerId[] = ['spark', 'local', 'tracked', 'ssh', 'ray'];
const all: RunnerId[] = ['serial', ...parallel];

export const CASES: Case[] = QUICK
  ? [
      { id: 'noop', workload: 'noop', n: 30, parallelism: 2, cap: 15, runners: all, kind: 'study' },
      { id: 'sleep', workload: 'sleep1', n: 8, parallelism: 4, cap: 20, runners: parallel, kind: 'study' },
      { id: 'gbm-serial', workload: 'gbm', n: 8, parallelism: 1, cap: 25, runners: ['serial'], kind: 'study' },
      { id: 'gbm2', workload: 'gbm', n: 8, parallelism: 2, cap: 25, runners: parallel, kind: 'study' },
      { id: 'gbm4', workload: 'gbm', n: 8, parallelism: 4, cap: 25, runners: parallel, kind: 'study' },
      { id: 'cancel', workload: 'sleep30', n: 8, parallelism: 2, runners: all, kind: 'cancel' },
    ]
  : [
      // Each study stops at its cap, a runner cut short is measured on the trials it finished
      // (trials/s, efficiency and speedup per trial done). Three rounds of all five runners then
      // fit in about 20 minutes on a busy 2-core machine.
      { id: 'noop', workload: 'noop', n: 500, parallelism: 4, cap: 12, runners: all, kind: 'study', capReason: 'serial Trials() needs about 3 s for 500 no-op trials; 12 s leaves four times that for the machinery, and a runner slower than 42 trials/s is measured on the trials it finished' },
      { id: 'sleep', workload: 'sleep1', n: 64, parallelism: 8, cap: 20, runners: parallel, kind: 'study', capReason: 'the ideal is 8 s; a runner still busy at 20 s is below 0.4 efficiency whatever it does next' },
      { id: 'gbm-serial', workload: 'gbm', n: 100, parallelism: 1, cap: 60, runners: ['serial'], kind: 'study', capReason: 'the reference for the speedups; it finishes well inside 60 s' },
      { id: 'gbm2', workload: 'gbm', n: 100, parallelism: 2, cap: 20, runners: parallel, kind: 'study', capReason: 'our local executor needs 8 s on an idle machine and about 15 s on a busy one; a runner slower than 5 trials/s is measured on the trials it finished' },
      { id: 'gbm4', workload: 'gbm', n: 100, parallelism: 4, cap: 20, runners: parallel, kind: 'study', capReason: 'as at parallelism 2' },
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

function runnerEnv(runner: RunnerId): NodeJS.ProcessEnv {
  const base: NodeJS.ProcessEnv = { ...(runner === 'ssh' ? fixture!.env : process.env), PYTHONUNBUFFERED: '1', OMP_NUM_THREADS: '1' };
  if (runner === 'spark') return { ...base, SPARK_LOCAL_IP: '127.0.0.1' };
  if (runner === 'ray') return { ...base, RAY_USAGE_STATS_ENABLED: '0', PEERS_SCRATCH: scratch };
  return base;
}

/**
 * The workspace the tracked runner's commands run in: its tracking server (the default, over its
 * store) is started once before the first round and leased by the benchmark until the end, as a
 * user's second and later runs find it.
 */
let trackedWorkspace = '';
let trackingLease: TrackingServerLease | undefined;

/** Starts the tracked runner's tracking server (unmeasured: a user's first run pays this once). */
async function startTracking(): Promise<void> {
  trackedWorkspace = mkdtempSync(join(scratch, 'workspace-'));
  trackingLease = await acquireTrackingServer({
    workspace: trackedWorkspace,
    storeUri: defaultStoreUri(trackedWorkspace),
    python: PYTHON,
    cli: { node: process.execPath, args: [CLI] },
    notice: log,
  });
  await trackingLease.ready();
}

async function stopTracking(): Promise<void> {
  const lease = trackingLease;
  trackingLease = undefined;
  if (!lease) return;
  lease.release();
  await stopTrackingServer(lease.record);
}

/** One `hyperopt-runner run` of one study (our executors). */
function studyCommand(runner: OurRunner, c: Case, seed: number, markDir: string): string[] {
  const p = c.parallelism;
  const scriptArgs = [c.workload, String(c.n), String(p), String(seed), c.cap === undefined ? '-' : String(c.cap), markDir || '-'];
  const journal = mkdtempSync(join(scratch, 'journal-'));
  const executor = runner === 'ssh' ? ['--executor', 'ssh:h1,h2', '--hosts-file', hostsFile(p)] : ['--executor', `local:${p}`];
  const tracking = runner === 'tracked' ? [] : ['--no-tracking'];
  return [CLI, 'run', WORKLOAD, ...executor, '--python', PYTHON, ...tracking, '--quiet', '--journal-dir', journal, '--', 'hyperopt', ...scriptArgs];
}

/** One python process that runs the round's studies of a Python-side runner in order. */
function sessionCommand(runner: RunnerId, cases: Case[], seed: number, markDir: string): string[] {
  const list = cases.map((c) => ({ id: c.id, workload: c.workload, n: c.n, p: runner === 'serial' ? 1 : c.parallelism, cap: c.cap ?? null }));
  const mode = runner === 'serial' ? 'hyperopt' : runner;
  return [PYTHON, WORKLOAD, mode, '--session', JSON.stringify(list), String(seed), markDir || '-'];
}

let current: Launched | undefined;

interface Launched {
  child: ChildProcess;
  watch: ProcessWatch;
  output: () => string;
  exited: Promise<number | null>;
  started: number;
}

function launch(runner: RunnerId, argv: string[], onLine?: (line: string) => void): Launched {
  const tag = randomBytes(6).toString('hex');
  const roots = runner === 'ssh' ? fixture!.hosts.map((h) => h.process?.pid).filter((pid): pid is number => pid !== undefined) : [];
  const watch = new ProcessWatch(tag, roots);
  const started = performance.now();
  // A process group of its own, as a terminal gives a command: Ctrl+C is sent to the group.
  const cwd = runner === 'tracked' ? trackedWorkspace : ROOT;
  const child = spawn(argv[0]!, argv.slice(1), { env: { ...runnerEnv(runner), HR_BENCH_TAG: tag }, detached: true, stdio: ['ignore', 'pipe', 'pipe'], cwd });
  let output = '';
  let partial = '';
  const keep = (text: string): void => {
    output = (output + text).slice(-200_000);
  };
  child.stdout!.setEncoding('utf8').on('data', (text: string) => {
    keep(text);
    if (!onLine) return;
    const lines = (partial + text).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) onLine(line);
  });
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

interface StudyLine {
  case: CaseId;
  fmin_seconds: number;
  setup_seconds: number;
  done: number;
  best_loss: number | null;
}

function parseResult(output: string): StudyLine | undefined {
  const line = output.split('\n').reverse().find((l) => l.startsWith('PEERS_RESULT '));
  return line ? (JSON.parse(line.slice('PEERS_RESULT '.length)) as StudyLine) : undefined;
}

function tail(output: string, lines = 25): string {
  return output.trim().split('\n').slice(-lines).join('\n');
}

function limitMs(cases: Case[]): number {
  return (cases.reduce((sum, c) => sum + (c.cap ?? 0), 0) + LIMIT_ALLOWANCE_S) * 1000;
}

async function study(runner: OurRunner, c: Case, round: number, seed: number): Promise<RunRecord> {
  const run = launch(runner, studyCommand(runner, c, seed, ''));
  const limit = limitMs([c]);
  let killed = false;
  const timer = setTimeout(() => {
    killed = true;
    signalGroup(run.child, 'SIGKILL');
  }, limit);
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
  if (!record.ok) record.error = `exit ${code}${killed ? ` (killed at the limit of ${limit / 1000} s)` : ''}: ${tail(run.output())}`;
  return record;
}

/**
 * Waits until P trials of the cancel study are running, presses Ctrl+C twice and measures until
 * the last process of the run is gone.
 */
async function measureCancel(run: Launched, p: number, markDir: string): Promise<{ cancelMs: number | null; error?: string; canceledAt?: number }> {
  const startDeadline = performance.now() + CANCEL_START_MS;
  let exitedEarly = false;
  void run.exited.then(() => (exitedEarly = true));
  while (readdirSync(markDir).length < p && performance.now() < startDeadline && !exitedEarly) await sleep(50);
  if (readdirSync(markDir).length < p) return { cancelMs: null, error: `the study did not start ${p} trials: ${tail(run.output())}` };
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
  while (performance.now() - t0 < CANCEL_LIMIT_MS) {
    if (run.watch.livePids().length === 0) {
      run.watch.scan();
      if (run.watch.livePids().length === 0) return { cancelMs: performance.now() - t0, canceledAt: t0 };
    }
    await sleep(5);
  }
  const error = `processes still running ${CANCEL_LIMIT_MS / 1000} s after Ctrl+C: ${run.watch.describe(run.watch.livePids()).join('; ')}`;
  killAll(run.watch.livePids());
  return { cancelMs: null, error, canceledAt: t0 };
}

async function cancel(runner: OurRunner, c: Case, round: number, seed: number): Promise<RunRecord> {
  const markDir = mkdtempSync(join(scratch, 'marks-'));
  const run = launch(runner, studyCommand(runner, c, seed, markDir));
  const measured = await measureCancel(run, c.parallelism, markDir);
  const record: RunRecord = { runner, case: c.id, round, seed, ok: measured.cancelMs !== null, cancelMs: measured.cancelMs };
  if (measured.error) record.error = measured.error;
  if (!record.ok) signalGroup(run.child, 'SIGKILL');
  await run.exited;
  record.e2eSeconds = (performance.now() - run.started) / 1000;
  record.leftover = await settle(run);
  record.memory = run.watch.peaks();
  return record;
}

/**
 * The round's studies of a Python-side runner in one process: each study's memory peaks are
 * taken from its PEERS_BEGIN line to its PEERS_RESULT line; the cancel study comes last and
 * ends the process.
 */
async function session(runner: RunnerId, cases: Case[], round: number, seed: number): Promise<RunRecord[]> {
  const markDir = mkdtempSync(join(scratch, 'marks-'));
  const records: RunRecord[] = [];
  const cancelCase = cases.find((c) => c.kind === 'cancel');
  let begun: { id: CaseId; at: number } | undefined;
  let startupSeconds: number | undefined;
  let cancelBegun: () => void = () => undefined;
  const cancelStarted = new Promise<boolean>((resolve) => (cancelBegun = () => resolve(true)));
  // Lines arrive from the child's output, so after `run` below is set.
  const onLine = (line: string): void => {
    const at = performance.now();
    const space = line.indexOf(' ');
    const kind = line.slice(0, space);
    if (!kind.startsWith('PEERS_')) return;
    const payload = JSON.parse(line.slice(space + 1)) as StudyLine & { error?: string; trace?: string };
    if (kind === 'PEERS_BEGIN') {
      begun = { id: payload.case, at };
      run.watch.resetPeaks();
      if (payload.case === cancelCase?.id) cancelBegun();
    } else if (kind === 'PEERS_RESULT' && payload.case !== cancelCase?.id) {
      // The cancel study's record is the measure below (Tune returns from fit on the first Ctrl+C).
      startupSeconds ??= (at - run.started) / 1000 - payload.fmin_seconds;
      const span = begun ? (at - begun.at) / 1000 : 0;
      run.watch.scan();
      records.push({
        runner, case: payload.case, round, seed, ok: true, shared: true,
        fminSeconds: payload.fmin_seconds, setupSeconds: payload.setup_seconds, done: payload.done, bestLoss: payload.best_loss,
        e2eSeconds: startupSeconds + span, memory: run.watch.peaks(), leftover: [],
      });
    } else if (kind === 'PEERS_ERROR') {
      records.push({ runner, case: payload.case, round, seed, ok: false, shared: true, error: `${payload.error}\n${payload.trace ?? ''}` });
    }
  };
  const run = launch(runner, sessionCommand(runner, cases, seed, markDir), onLine);
  const launched = run;
  const limit = limitMs(cases) + (cancelCase ? CANCEL_LIMIT_MS : 0);
  let killed = false;
  const timer = setTimeout(() => {
    killed = true;
    signalGroup(launched.child, 'SIGKILL');
  }, limit);
  if (cancelCase && (await Promise.race([cancelStarted, launched.exited.then(() => false)]))) {
    const p = runner === 'serial' ? 1 : cancelCase.parallelism;
    const measured = await measureCancel(launched, p, markDir);
    const record: RunRecord = { runner, case: cancelCase.id, round, seed, ok: measured.cancelMs !== null, shared: true, cancelMs: measured.cancelMs };
    if (measured.error) record.error = measured.error;
    if (!record.ok) signalGroup(launched.child, 'SIGKILL');
    await launched.exited;
    record.e2eSeconds = begun ? (performance.now() - begun.at) / 1000 : undefined;
    record.memory = launched.watch.peaks();
    records.push(record);
  }
  const code = await launched.exited;
  clearTimeout(timer);
  const leftover = await settle(launched);
  if (records.length > 0) records[records.length - 1]!.leftover = leftover;
  // Studies that never reported: the process died, or the limit killed it.
  for (const c of cases) {
    if (records.some((r) => r.case === c.id)) continue;
    const why = killed ? `killed at the limit of ${limit / 1000} s for the round's studies (the sum of their caps plus ${LIMIT_ALLOWANCE_S} s)` : `the process exited (${code}) before this study`;
    records.push({ runner, case: c.id, round, seed, ok: false, shared: true, error: `${why}: ${tail(launched.output())}` });
  }
  return records;
}

function summaryLine(r: RunRecord): string {
  if (!r.ok) return `${r.runner} ${r.case} round ${r.round}: FAILED ${r.error?.split('\n').slice(-3).join(' | ')}`;
  if (r.cancelMs !== undefined) return `${r.runner} ${r.case} round ${r.round}: last process gone ${r.cancelMs?.toFixed(0)} ms after Ctrl+C`;
  const m = r.memory;
  return `${r.runner} ${r.case} round ${r.round}: ${r.done} trials, fmin ${r.fminSeconds?.toFixed(2)} s, setup ${r.setupSeconds?.toFixed(1)} s, end to end ${r.e2eSeconds?.toFixed(1)} s, best ${r.bestLoss?.toFixed(4)}, driver ${m?.driverMb?.toFixed(0)} MB, coordinator ${m?.coordinatorMb?.toFixed(0)} MB${r.leftover?.length ? `, LEFT ${r.leftover.length} processes` : ''}`;
}

/** Where the command's time went, in seconds. */
export interface Budget {
  venv: number;
  build: number;
  sshd: number;
  warmUp: number;
  /** Every process of the runner, from spawn until its processes were gone, over all rounds. */
  runners: Partial<Record<RunnerId, number>>;
  /** The limit one runner's round may take before it is killed, per runner. */
  roundLimits: Partial<Record<RunnerId, number>>;
}

export interface Results {
  quick: boolean;
  date: string;
  command: string;
  rounds: number;
  totalSeconds: number;
  venvSeconds: number;
  /** One `import hyperopt` in the benchmark's venv, warm cache (each worker pays it). */
  hyperoptImportSeconds?: number;
  budget?: Budget;
  /** Runners whose round ran in one process (one Spark session, one Ray instance). */
  sharedProcess?: RunnerId[];
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

function casesOf(runner: RunnerId): Case[] {
  return CASES.filter((c) => c.runners.includes(runner));
}

function roundLimitSeconds(runner: RunnerId): number {
  const cases = casesOf(runner);
  if (SHARED_PROCESS.includes(runner)) return (limitMs(cases) + CANCEL_LIMIT_MS) / 1000;
  return cases.reduce((sum, c) => sum + limitMs([c]) / 1000 + (c.kind === 'cancel' ? (CANCEL_LIMIT_MS + CANCEL_START_MS) / 1000 : 0), 0);
}

async function runRound(runner: RunnerId, round: number, seed: number): Promise<RunRecord[]> {
  if (SHARED_PROCESS.includes(runner)) return session(runner, casesOf(runner), round, seed);
  const records: RunRecord[] = [];
  for (const c of casesOf(runner)) {
    const ours = runner as OurRunner;
    records.push(c.kind === 'study' ? await study(ours, c, round, seed) : await cancel(ours, c, round, seed));
  }
  return records;
}

function minutes(seconds: number): string {
  return `${(seconds / 60).toFixed(1)} min`;
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
  let mark = performance.now();
  ensureBuild(log);
  const budget: Budget = { venv: venvSeconds, build: (performance.now() - mark) / 1000, sshd: 0, warmUp: 0, runners: {}, roundLimits: {} };
  const unavailable: Partial<Record<RunnerId, string>> = {};
  mark = performance.now();
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
  budget.sshd = (performance.now() - mark) / 1000;
  const facts = machine();
  const found = versions();
  if (found.ray.startsWith('not importable')) unavailable.ray = `ray ${found.ray}`;
  if (found.pyspark.startsWith('not importable')) unavailable.spark = `pyspark ${found.pyspark}`;
  log(`${facts.cores} cores, ${facts.cpu}, ${facts.memoryGiB} GiB, load ${facts.loadAtStart.join(' ')}; ${QUICK ? 'QUICK mode, ' : ''}${ROUNDS} round(s); runners ${SELECTED.join(', ')}`);
  mark = performance.now();
  warmImports();

  // The SSH hosts get the runtime uploaded by a small unmeasured study, as any first run there
  // does. The other runners start from the page cache filled above.
  const warm: Case = { id: 'noop', workload: 'noop', n: 4, parallelism: 2, runners: all, kind: 'study' };
  if (SELECTED.includes('ssh') && !unavailable.ssh) {
    const r = await study('ssh', warm, 0, 1);
    log(`warm-up ssh: ${r.ok ? `ok in ${r.e2eSeconds?.toFixed(1)} s` : 'FAILED'}`);
    if (!r.ok) unavailable.ssh = r.error ?? 'failed';
  }
  if (SELECTED.includes('tracked')) {
    try {
      await startTracking();
      const r = await study('tracked', warm, 0, 1);
      log(`warm-up tracked: ${r.ok ? `ok in ${r.e2eSeconds?.toFixed(1)} s` : 'FAILED'}`);
      if (!r.ok) unavailable.tracked = r.error ?? 'failed';
    } catch (error) {
      unavailable.tracked = `the tracking server did not start: ${(error as Error).message}`;
    }
  }
  const importSeconds = hyperoptImportSeconds();
  budget.warmUp = (performance.now() - mark) / 1000;
  for (const runner of SELECTED) budget.roundLimits[runner] = roundLimitSeconds(runner);
  facts.idleBefore = await idleShare(5000);
  log(`import hyperopt: ${importSeconds} s; CPU idle ${facts.idleBefore === undefined ? '?' : `${Math.round(facts.idleBefore * 100)} %`} over the 5 s before the first round`);

  const runs: RunRecord[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    const seed = 1000 + round;
    // The runners take turns, starting one further along each round, so no runner always runs
    // right after the same neighbour.
    const order = SELECTED.map((_, i) => SELECTED[(i + round - 1) % SELECTED.length]!);
    for (const runner of order) {
      if (unavailable[runner]) continue;
      const started = performance.now();
      const records = await runRound(runner, round, seed);
      budget.runners[runner] = (budget.runners[runner] ?? 0) + (performance.now() - started) / 1000;
      runs.push(...records);
      for (const record of records) log(summaryLine(record));
      // A runner that gets nothing done in its first round (Ray or Spark not starting here) is
      // reported with that error rather than failing the same way in every round.
      if (round === 1 && records.every((r) => !r.ok)) unavailable[runner] = records[0]?.error ?? 'no study ran';
    }
  }
  await fixture?.stop();
  await stopTracking();
  rmSync(scratch, { recursive: true, force: true });

  const results: Results = {
    quick: QUICK,
    date: new Date().toISOString(),
    command: `${QUICK ? 'BENCH_QUICK=1 ' : ''}${process.env.BENCH_ROUNDS ? `BENCH_ROUNDS=${ROUNDS} ` : ''}${process.env.BENCH_RUNNERS ? `BENCH_RUNNERS=${SELECTED.join(',')} ` : ''}npm run bench:peers`,
    rounds: ROUNDS,
    totalSeconds: (performance.now() - t0) / 1000,
    venvSeconds,
    hyperoptImportSeconds: importSeconds,
    budget,
    sharedProcess: SHARED_PROCESS,
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
  const perRunner = SELECTED.map((r) => `${r} ${budget.runners[r] === undefined ? 'did not run' : minutes(budget.runners[r]!)}`).join(', ');
  log(`time: ${minutes(results.totalSeconds)} in all; venv ${minutes(budget.venv)}, build ${minutes(budget.build)}, sshd ${minutes(budget.sshd)}, warm-up ${minutes(budget.warmUp)}; ${perRunner}`);

  // Loud failure, after the results are written: a broken runner fails the command.
  const broken = runs.filter((r) => !r.ok);
  const missing = (Object.entries(unavailable) as Array<[RunnerId, string]>).filter(([runner, why]) => !(runner === 'ray' && why.startsWith('ray not importable')));
  if (broken.length > 0 || missing.length > 0) {
    for (const [runner, why] of missing) console.error(`[peers] FAILED: ${runner} did not run: ${why.split('\n').slice(-3).join(' | ')}`);
    for (const r of broken) console.error(`[peers] FAILED: ${r.runner} ${r.case} round ${r.round}: ${r.error?.split('\n').slice(-3).join(' | ')}`);
    console.error(`[peers] ${broken.length} run(s) failed${missing.length ? `, ${missing.length} runner(s) did not run` : ''}; what was measured is written above`);
    process.exitCode = 1;
  }
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
      void Promise.allSettled([fixture?.stop(), stopTracking()]).finally(() => {
        if (scratch) rmSync(scratch, { recursive: true, force: true });
        process.exit(130);
      });
    });
  }
  main().catch(async (error: unknown) => {
    console.error(error);
    await fixture?.stop();
    await stopTracking();
    process.exit(1);
  });
}
