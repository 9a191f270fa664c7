/**
 * The chaos soak: one tracked study of many short trials (bench/scripts/soak_study.py) on
 * local:4 plus two loopback SSH hosts with 2 slots each, run the way the README runs a study (the
 * workspace's own tracking server, a fresh command), while a chaos driver with a fixed seed
 * SIGKILLs workers, drops and restores SSH hosts, kills the tracking server twice, SIGKILLs the CLI
 * once and runs `resume`, and stops the study near the end. Afterwards it checks what a user relies
 * on: every trial the journal has finished is in fmin's final Trials once and has its MLflow child
 * run with its loss, no trial ran again after finishing, and nothing of the run is left running.
 * Used by `npm run soak` (bench/soak.ts) and, in a short version, by test/ssh/soak.test.ts.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MlflowClient, type MlflowRun } from '../core/src/mlflow/client';
import { listTrackingRecords } from '../core/src/mlflow/serverRecord';
import { descendants, processTable, PYTHON, ROOT, type SshFixture } from '../test/ssh/fixture';
import { seededRandom as seeded } from '../test/seededRandom';

const CLI = join(ROOT, 'bin', 'hyperopt-runner.js');
const STUDY_SCRIPT = join(__dirname, 'scripts', 'soak_study.py');
const HOSTS = ['h1', 'h2'] as const;

export interface SoakOptions {
  /** Finished trials at which the study is stopped. */
  readonly stopAt: number;
  /** fmin's max_evals, above stopAt so that the Stop ends the study. */
  readonly maxEvals: number;
  /** A factor on the objectives' durations. */
  readonly durationScale: number;
  /** Without chaos: the same study, stopped at the same count, for the throughput baseline. */
  readonly chaos: boolean;
  readonly seed: number;
  /** Random pause between two worker kills, ms. */
  readonly workerKillEveryMs: readonly [number, number];
  readonly maxWorkerKills: number;
  /** How long a dropped host refuses connections, ms. */
  readonly hostDownMs: number;
  readonly log?: (line: string) => void;
  /** Copy the workspace (journal, logs, MLflow store) here before it is removed, to look into a failure. */
  readonly keepWorkspace?: string;
  /** How long the runs' background writing may take after the last command, ms (default 15 min). */
  readonly writeWaitMs?: number;
}

export interface SoakReport {
  readonly chaos: boolean;
  readonly wallS: number;
  readonly finished: number;
  readonly ok: number;
  readonly failed: number;
  readonly trialsPerMinute: number;
  readonly faults: Record<string, number>;
  /** Attempts re-queued after their worker or host was lost, and how many of those trials then finished. */
  readonly requeued: number;
  readonly requeuedThenFinished: number;
  /** Attempts in flight when the CLI was killed, closed as lost (their trials are not re-run). */
  readonly lostAttempts: number;
  /** Finished in the journal but missing from fmin's Trials, from MLflow, or with another loss there. */
  readonly lost: number;
  readonly lostDetails: string[];
  /** Trials started again after their end, or listed twice in fmin's Trials. */
  readonly ranTwice: number;
  readonly processesLeft: string[];
  readonly peakRssMb: number;
  /** From the last command's exit until MLflow had every run (the parent ended), s. */
  readonly runsWrittenAfterS: number;
  /** What the commands exited with: the run, the resume (chaos only), sync. */
  readonly exitCodes: Record<string, number | null>;
}


const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function taggedPids(tag: string): number[] {
  const needle = `HR_SOAK_TAG=${tag}`;
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (!readFileSync(`/proc/${entry}/environ`, 'latin1').split('\0').includes(needle)) continue;
      if (readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ')[1]?.startsWith('Z')) continue;
      found.push(Number(entry));
    } catch {
      // Gone while we looked.
    }
  }
  return found;
}

function rssMb(pids: readonly number[]): number {
  let pages = 0;
  for (const pid of pids) {
    try {
      pages += Number(readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ')[1]);
    } catch {
      // Gone.
    }
  }
  return (pages * 4096) / 2 ** 20;
}

function killTree(pid: number): void {
  const victims = [pid, ...descendants(pid, processTable())];
  for (const victim of victims) {
    try {
      process.kill(victim, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
}

function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
  } catch {
    return '';
  }
}

type Record_ = { k: string; tid?: number; state?: string; summary?: { status: string; loss: unknown }; study?: { id: string }; mlflowRunId?: string; parentRunId?: string; experimentId?: string };

function readJournal(dir: string): { path: string; records: Record_[] } | undefined {
  if (!existsSync(dir)) return undefined;
  const file = readdirSync(dir).find((f) => f.endsWith('.jsonl'));
  if (!file) return undefined;
  const path = join(dir, file);
  const records = readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => line.endsWith('}'))
    .map((line) => JSON.parse(line) as Record_);
  return { path, records };
}

function finishedCount(records: readonly Record_[]): number {
  const ended = new Set<number>();
  for (const r of records) if (r.k === 'end' && r.state !== 'cancel') ended.add(r.tid!);
  return ended.size;
}

interface Command {
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  output(): string;
}

function startCommand(args: readonly string[], cwd: string, env: NodeJS.ProcessEnv): Command {
  const child = spawn('node', [CLI, ...args], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (text: string): void => {
    // The tail is what explains a failure; the middle is trial output.
    output = (output + text).slice(-200_000);
  };
  child.stdout!.setEncoding('utf8').on('data', keep);
  child.stderr!.setEncoding('utf8').on('data', keep);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => setImmediate(() => resolve(code))));
  return { child, exited, output: () => output };
}

export async function runSoak(fx: SshFixture, options: SoakOptions): Promise<SoakReport> {
  const log = options.log ?? (() => undefined);
  const random = seeded(options.seed);
  const tag = `soak-${process.pid}-${Date.now()}`;
  const workspace = mkdtempSync(join(fx.root, 'soak-'));
  copyFileSync(STUDY_SCRIPT, join(workspace, 'study.py'));
  const pidDir = join(workspace, 'pids');
  mkdirSync(pidDir);
  const trialsOut = join(workspace, 'final-trials.json');
  // Reconnects keep trying through a drop of several seconds instead of retiring the host.
  const hostsFile = fx.writeHostsFile({ reconnect: { initialDelayMs: 300, maxDelayMs: 1500, maxFailures: 40 } }, `soak-hosts-${Date.now()}.json`);
  const env: NodeJS.ProcessEnv = { ...fx.env, HYPEROPT_RUNNER_PYTHON: PYTHON, HR_SOAK_TAG: tag };
  delete env.MLFLOW_TRACKING_URI;
  const journalDir = join(workspace, '.hyperopt-runner', 'journal');
  const faults: Record<string, number> = { 'worker SIGKILL': 0, 'SSH host dropped': 0, 'tracking server killed': 0, 'CLI SIGKILL + resume': 0, Stop: 0 };
  const exitCodes: Record<string, number | null> = {};
  let peakRss = 0;
  let cliDown = false;
  const started = Date.now();

  const sampler = setInterval(() => {
    const pids = [...taggedPids(tag), ...HOSTS.flatMap((h) => fx.workerPids(h))];
    peakRss = Math.max(peakRss, rssMb([...new Set(pids)]));
  }, 1000);

  const trackingPids = (): Set<number> => {
    const pids = new Set<number>();
    for (const { record } of listTrackingRecords(workspace)) {
      pids.add(record.pid);
      for (const pid of descendants(record.pid, processTable())) pids.add(pid);
    }
    return pids;
  };

  const finished = (): number => finishedCount(readJournal(journalDir)?.records ?? []);
  const untilFinished = async (count: number, command: Command): Promise<boolean> => {
    let exited = false;
    void command.exited.then(() => (exited = true));
    while (!exited && finished() < count) await sleep(250);
    return !exited;
  };

  const killWorker = (): void => {
    const live = readdirSync(pidDir)
      .map(Number)
      .filter((pid) => commandLine(pid).includes('hyperopt_runner'));
    if (live.length === 0) return;
    const victim = live[Math.floor(random() * live.length)]!;
    try {
      process.kill(victim, 'SIGKILL');
      faults['worker SIGKILL']! += 1;
      log(`chaos: SIGKILL worker ${victim}`);
    } catch {
      // It ended meanwhile.
    }
  };
  // Worker kills run beside the schedule below, at seeded intervals, never while the CLI is down;
  // the schedule kills one itself, so that a fast machine's short study still sees one.
  let chaosOn = options.chaos;
  const workerKiller = (async () => {
    while (chaosOn && faults['worker SIGKILL']! < options.maxWorkerKills) {
      const [low, high] = options.workerKillEveryMs;
      await sleep(low + random() * (high - low));
      if (chaosOn && !cliDown) killWorker();
    }
  })();

  const dropHost = async (name: string): Promise<void> => {
    fx.killHost(name);
    faults['SSH host dropped']! += 1;
    log(`chaos: ${name} dropped (sshd, its sessions and workers killed; its port refuses)`);
    await sleep(options.hostDownMs);
    await fx.restartHost(name);
    log(`chaos: ${name} back`);
  };
  const killTracking = (): void => {
    const records = listTrackingRecords(workspace);
    for (const { record } of records) killTree(record.pid);
    if (records.length > 0) faults['tracking server killed']! += 1;
    log(`chaos: tracking server killed (${records.map((r) => r.record.pid).join(', ') || 'none running'})`);
  };

  const runArgs = ['run', 'study.py', '--executor', 'local:4', '--executor', `ssh:${HOSTS.join(',')}`, '--hosts-file', hostsFile, '--quiet', '--'];
  const scriptArgs = [pidDir, trialsOut, String(options.maxEvals), String(options.durationScale)];
  let command = startCommand([...runArgs, ...scriptArgs], workspace, env);
  const hostDrops: Array<Promise<void>> = [];
  const at = (fraction: number): number => Math.max(1, Math.floor(options.stopAt * fraction));

  if (options.chaos) {
    if (await untilFinished(at(0.08), command)) killWorker();
    if (await untilFinished(at(0.15), command)) hostDrops.push(dropHost('h2'));
    if (await untilFinished(at(0.3), command)) killTracking();
    if (await untilFinished(at(0.45), command)) {
      cliDown = true;
      command.child.kill('SIGKILL');
      exitCodes.run = await command.exited;
      faults['CLI SIGKILL + resume']! += 1;
      log(`chaos: CLI SIGKILLed at ${finished()} finished trials`);
      // The driver and the workers go with their coordinator (the tracking server outlives it).
      const deadline = Date.now() + 30_000;
      const orphans = (): number[] => {
        const tracking = trackingPids();
        return [...taggedPids(tag).filter((pid) => !tracking.has(pid)), ...HOSTS.flatMap((h) => fx.workerPids(h))];
      };
      while (orphans().length > 0 && Date.now() < deadline) await sleep(100);
      if (orphans().length > 0) log(`after the CLI's kill, still running: ${orphans().map(commandLine).join(' | ')}`);
      await Promise.all(hostDrops.splice(0));
      const study = readJournal(journalDir)!.records.find((r) => r.k === 'study')!.study!.id;
      command = startCommand(['resume', study, '--hosts-file', hostsFile, '--quiet'], workspace, env);
      cliDown = false;
    }
    if (await untilFinished(at(0.65), command)) killTracking();
    if (await untilFinished(at(0.75), command)) hostDrops.push(dropHost('h1'));
  }
  if (await untilFinished(options.stopAt, command)) {
    // The CLI's Stop (Ctrl+C once): no new trials, running ones finish.
    command.child.kill('SIGINT');
    faults.Stop! += 1;
    log(`Stop at ${finished()} finished trials`);
  }
  const last = await command.exited;
  exitCodes[options.chaos ? 'resume' : 'run'] = last;
  const wallS = (Date.now() - started) / 1000;
  chaosOn = false;
  await workerKiller;
  await Promise.all(hostDrops);
  if (last !== 0) log(`the last command exited with ${last}:\n${command.output().slice(-4000)}`);

  // What a user runs to have every run written, then the checks.
  const sync = spawnSync('node', [CLI, 'sync'], { cwd: workspace, env, encoding: 'utf8', timeout: 300_000 });
  exitCodes.sync = sync.status;
  if (sync.status !== 0) log(`sync: ${sync.stdout}${sync.stderr}`);

  const journal = readJournal(journalDir)!;
  const records = journal.records;
  const ends = new Map<number, Record_>();
  const lostDetails: string[] = [];
  let ranTwice = 0;
  for (const r of records) {
    if (r.k === 'end' && r.state !== 'cancel') {
      if (ends.has(r.tid!)) ranTwice += 1;
      ends.set(r.tid!, r);
    }
    if (r.k === 'start' && ends.has(r.tid!)) ranTwice += 1;
  }
  const requeuedTids = new Set(records.filter((r) => r.k === 'requeue').map((r) => r.tid!));
  const lostAttempts = records.filter((r) => r.k === 'end' && r.state === 'cancel').length;

  const rows = existsSync(trialsOut) ? (JSON.parse(readFileSync(trialsOut, 'utf8')) as Array<{ tid: number; state: number; status: string; loss: number | null }>) : [];
  if (!existsSync(trialsOut)) lostDetails.push("fmin's final Trials were not written");
  const rowsByTid = new Map<number, typeof rows>();
  for (const row of rows) rowsByTid.set(row.tid, [...(rowsByTid.get(row.tid) ?? []), row]);
  for (const listed of rowsByTid.values()) if (listed.length > 1) ranTwice += listed.length - 1;

  const studyId = records.find((r) => r.k === 'study')!.study!.id;
  let runsWrittenAfterS = Number.NaN;
  const kids = new Map<number, MlflowRun[]>();
  const server = listTrackingRecords(workspace)[0]?.record;
  if (server) {
    const mlflow = new MlflowClient({ trackingUri: `http://127.0.0.1:${server.port}`, auth: { kind: 'bearer', token: server.apiToken }, requestTimeoutMs: 60_000 });
    // The workspace's server writes in the background what the commands handed it (MLflow's server
    // takes a few hundred ms per trial): its last write ends the parent, journalled as `parentEnded`.
    const writtenBy = Date.now() + (options.writeWaitMs ?? 900_000);
    while (!readJournal(journalDir)!.records.some((r) => r.k === 'parentEnded') && Date.now() < writtenBy) await sleep(1000);
    runsWrittenAfterS = (Date.now() - started) / 1000 - wallS;
    for (const deadline = Date.now() + 30_000; ; ) {
      const experiments = (await mlflow.searchAllExperiments({})).map((e) => e.experimentId);
      const parents = await mlflow.searchAllRuns({ experimentIds: experiments, filter: `tags.\`hyperopt_runner.study_id\` = '${studyId}'` });
      kids.clear();
      if (parents.length > 1) lostDetails.push(`the study has ${parents.length} parent runs`);
      if (parents.length === 1) {
        const runs = await mlflow.searchAllRuns({ experimentIds: experiments, filter: `tags.mlflow.parentRunId = '${parents[0]!.info.runId}'` });
        for (const run of runs) {
          const tid = Number(run.data.tags['hyperopt_runner.tid']);
          kids.set(tid, [...(kids.get(tid) ?? []), run]);
        }
      }
      const complete = [...ends.keys()].every((tid) => kids.get(tid)?.some((k) => k.info.status !== 'RUNNING'));
      if (complete || parents.length > 1 || Date.now() > deadline) break;
      await sleep(1000);
    }
  } else {
    const status = spawnSync('node', [CLI, 'tracking', 'status'], { cwd: workspace, env, encoding: 'utf8' });
    lostDetails.push(`the workspace has no tracking server after sync: ${status.stdout.trim()} ${status.stderr.trim()}`);
  }

  let ok = 0;
  let failed = 0;
  for (const [tid, end] of ends) {
    const isOk = end.state === 'done' && end.summary?.status === 'ok';
    if (isOk) ok += 1;
    else failed += 1;
    const listed = (rowsByTid.get(tid) ?? []).filter((row) => row.state === 2 || row.state === 3);
    if (listed.length === 0) {
      const row = rowsByTid.get(tid)?.[0];
      lostDetails.push(`trial ${tid}: finished in the journal (${end.state} ${end.summary?.status ?? ''}), not in fmin's Trials (${row ? `state ${row.state} ${row.status}` : 'absent'})`);
    }
    else if (isOk && listed[0]!.loss !== end.summary!.loss) lostDetails.push(`trial ${tid}: loss ${String(end.summary!.loss)} in the journal, ${String(listed[0]!.loss)} in fmin's Trials`);
    const runs = kids.get(tid) ?? [];
    if (runs.length !== 1) lostDetails.push(`trial ${tid}: ${runs.length} MLflow child runs`);
    const run = runs[0];
    if (run && isOk && run.data.metrics.loss !== end.summary!.loss) lostDetails.push(`trial ${tid}: MLflow loss ${String(run.data.metrics.loss)}, journal ${String(end.summary!.loss)}`);
    if (run && run.info.status === 'RUNNING') lostDetails.push(`trial ${tid}: its MLflow run is still RUNNING`);
  }
  for (const tid of rowsByTid.keys()) {
    const done = (rowsByTid.get(tid) ?? []).some((row) => row.state === 2);
    if (done && !ends.has(tid)) lostDetails.push(`trial ${tid}: in fmin's Trials, not finished in the journal`);
  }

  if (options.keepWorkspace) cpSync(workspace, options.keepWorkspace, { recursive: true, filter: (source) => !source.endsWith('.sock') });
  spawnSync('node', [CLI, 'tracking', 'stop', '--workspace', workspace], { env, stdio: 'ignore', timeout: 60_000 });
  clearInterval(sampler);
  const left = (): number[] => [...taggedPids(tag), ...HOSTS.flatMap((h) => fx.workerPids(h))];
  for (const deadline = Date.now() + 15_000; left().length > 0 && Date.now() < deadline; ) await sleep(200);
  const processesLeft = left().map((pid) => `${pid} ${commandLine(pid)}`);

  const count = ends.size;
  return {
    chaos: options.chaos,
    wallS,
    finished: count,
    ok,
    failed,
    trialsPerMinute: (count / wallS) * 60,
    faults,
    requeued: records.filter((r) => r.k === 'requeue').length,
    requeuedThenFinished: [...requeuedTids].filter((tid) => ends.has(tid)).length,
    lostAttempts,
    lost: lostDetails.length,
    lostDetails: lostDetails.slice(0, 50),
    ranTwice,
    processesLeft,
    peakRssMb: peakRss,
    runsWrittenAfterS,
    exitCodes,
  };
}
