/** The Peers section of docs/benchmarks.md and its chart, from the raw results only. */
import type { CaseId, Results, RunnerId, RunRecord } from './peers.bench';

export const LABELS: Record<RunnerId, string> = {
  serial: 'hyperopt Trials() (serial)',
  spark: 'hyperopt SparkTrials, local[N]',
  local: 'hyperopt-runner, local:N',
  tracked: 'hyperopt-runner, local:N, tracked (default)',
  ssh: 'hyperopt-runner, ssh (2 loopback hosts)',
  ray: 'Ray Tune + HyperOptSearch',
};

export interface Stats {
  median: number;
  min: number;
  max: number;
  n: number;
}

export function stats(values: Array<number | null | undefined>): Stats | undefined {
  const v = values.filter((x): x is number => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return undefined;
  const mid = Math.floor(v.length / 2);
  const median = v.length % 2 === 1 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
  return { median, min: v[0]!, max: v[v.length - 1]!, n: v.length };
}

function ok(results: Results, runner: RunnerId, id: CaseId): RunRecord[] {
  return results.runs.filter((r) => r.runner === runner && r.case === id && r.ok);
}

function attempted(results: Results, runner: RunnerId, id: CaseId): RunRecord[] {
  return results.runs.filter((r) => r.runner === runner && r.case === id);
}

function digits(value: number): number {
  const a = Math.abs(value);
  return a >= 100 ? 0 : a >= 10 ? 1 : a >= 1 ? 2 : 3;
}

function num(value: number, d = digits(value)): string {
  return value.toFixed(d);
}

/** "12.3 (11.9–13.0)" or "12.3" for one run. */
function fmt(s: Stats | undefined, d?: number): string {
  if (!s) return '—';
  const dd = d ?? digits(s.median);
  return s.n > 1 ? `${num(s.median, dd)} (${num(s.min, dd)}–${num(s.max, dd)})` : num(s.median, dd);
}

function ratio(value: Stats | undefined, reference: Stats | undefined): string {
  if (!value || !reference || reference.median === 0) return '—';
  const r = value.median / reference.median;
  return `${r >= 10 ? r.toFixed(0) : r >= 0.1 ? r.toFixed(2) : r.toPrecision(2)}×`;
}

function caseOf(results: Results, id: CaseId) {
  return results.cases.find((c) => c.id === id)!;
}

function runnersFor(results: Results, id: CaseId): RunnerId[] {
  return caseOf(results, id).runners.filter((r) => results.runners.includes(r));
}

function failures(results: Results, runner: RunnerId, id: CaseId): string {
  const bad = attempted(results, runner, id).filter((r) => !r.ok);
  return bad.length === 0 ? '' : ` (${bad.length} of ${attempted(results, runner, id).length} runs failed)`;
}

function missingRow(results: Results, runner: RunnerId, columns: number): string | undefined {
  const why = results.unavailable[runner];
  if (!why) return undefined;
  return `| ${LABELS[runner]} | did not run: see below |${' |'.repeat(columns - 2)}`;
}

export interface Derived {
  noop: Partial<Record<RunnerId, { rate?: Stats; msPerTrial?: Stats; fmin?: Stats; e2e?: Stats; done?: Stats }>>;
  sleep: Partial<Record<RunnerId, { fmin?: Stats; efficiency?: Stats; e2e?: Stats; e2eEfficiency?: Stats; done?: Stats }>>;
  gbm: Record<'gbm-serial' | 'gbm2' | 'gbm4', Partial<Record<RunnerId, { fmin?: Stats; e2e?: Stats; best?: Stats; speedup?: Stats; done?: Stats }>>>;
  cancel: Partial<Record<RunnerId, Stats | undefined>>;
  memory: Partial<Record<RunnerId, { driver?: Stats; coordinator?: Stats; workers?: Stats; processes: string[] }>>;
}

export function derive(results: Results): Derived {
  const d: Derived = { noop: {}, sleep: {}, gbm: { 'gbm-serial': {}, gbm2: {}, gbm4: {} }, cancel: {}, memory: {} };
  for (const runner of results.runners) {
    const noop = ok(results, runner, 'noop');
    if (noop.length > 0) {
      d.noop[runner] = {
        rate: stats(noop.map((r) => r.done! / r.fminSeconds!)),
        msPerTrial: stats(noop.map((r) => (1000 * r.fminSeconds!) / r.done!)),
        fmin: stats(noop.map((r) => r.fminSeconds)),
        e2e: stats(noop.map((r) => r.e2eSeconds)),
        done: stats(noop.map((r) => r.done)),
      };
    }
    // Ideal: the trials done, 1 s each, spread over every slot.
    const p = caseOf(results, 'sleep').parallelism;
    const sleep = ok(results, runner, 'sleep');
    if (sleep.length > 0) {
      d.sleep[runner] = {
        fmin: stats(sleep.map((r) => r.fminSeconds)),
        efficiency: stats(sleep.map((r) => r.done! / p / r.fminSeconds!)),
        e2e: stats(sleep.map((r) => r.e2eSeconds)),
        e2eEfficiency: stats(sleep.map((r) => r.done! / p / r.e2eSeconds!)),
        done: stats(sleep.map((r) => r.done)),
      };
    }
    for (const id of ['gbm-serial', 'gbm2', 'gbm4'] as const) {
      const gbm = ok(results, runner, id);
      if (gbm.length > 0) {
        d.gbm[id][runner] = { fmin: stats(gbm.map((r) => r.fminSeconds)), e2e: stats(gbm.map((r) => r.e2eSeconds)), best: stats(gbm.map((r) => r.bestLoss)), done: stats(gbm.map((r) => r.done)) };
      }
    }
    const cancel = ok(results, runner, 'cancel');
    if (cancel.length > 0) d.cancel[runner] = stats(cancel.map((r) => r.cancelMs));
    const memoryRuns = ok(results, runner, runner === 'serial' ? 'gbm-serial' : 'gbm4');
    if (memoryRuns.length > 0) {
      d.memory[runner] = {
        driver: stats(memoryRuns.map((r) => r.memory?.driverMb)),
        coordinator: stats(memoryRuns.map((r) => r.memory?.coordinatorMb)),
        workers: stats(memoryRuns.map((r) => r.memory?.workersMb)),
        processes: [...new Set(memoryRuns.flatMap((r) => r.memory?.coordinatorProcesses ?? []))].sort(),
      };
    }
  }
  // Speedup in trials per second, so that a study cut short by its cap still compares.
  const serialRate = stats(ok(results, 'serial', 'gbm-serial').map((r) => r.done! / r.fminSeconds!));
  for (const id of ['gbm2', 'gbm4'] as const) {
    for (const runner of results.runners) {
      const entry = d.gbm[id][runner];
      if (entry && serialRate) entry.speedup = stats(ok(results, runner, id).map((r) => r.done! / r.fminSeconds! / serialRate.median));
    }
  }
  return d;
}

function mb(s: Stats | undefined): string {
  return fmt(s, 0);
}

export function renderSection(results: Results): string[] {
  const d = derive(results);
  const m = results.machine;
  const v = results.versions;
  const noop = caseOf(results, 'noop');
  const sleepCase = caseOf(results, 'sleep');
  const gbm2 = caseOf(results, 'gbm2');
  const gbm4 = caseOf(results, 'gbm4');
  const cancelCase = caseOf(results, 'cancel');
  const busy = otherWork(results);
  const out: string[] = [];
  const shared = results.sharedProcess ?? [];
  const slots = Math.max(...results.cases.map((c) => c.parallelism));

  if (results.quick) {
    out.push(
      '> **Quick mode.** These figures come from `BENCH_QUICK=1` (small sizes, one round): they show that every runner works end to end, not how the runners compare. `npm run bench:peers` with no variable runs the full sizes below.',
      '',
    );
  }
  if (!results.quick && results.rounds < 3) {
    out.push(
      `> **${results.rounds} round${results.rounds === 1 ? '' : 's'} only.** The full sizes ran, but not the three rounds the command runs by default, so the cells have no spread and a single noisy run can decide a comparison.`,
      '',
    );
  }
  out.push(
    `Serial \`Trials()\`, \`SparkTrials\`, this project's local and SSH executors and Ray Tune run the same studies (same objective, space, \`max_evals\`, seed and parallelism), one after another on one machine, in ${results.rounds} round${results.rounds === 1 ? '' : 's'}; each cell is the median with the range over the rounds in brackets, and "vs local" divides by our local executor's median from the same command.`,
    '',
    `- **Command:** \`${results.command}\` (${(results.totalSeconds / 60).toFixed(1)} min in all on ${results.date.slice(0, 10)}, of which ${(results.venvSeconds / 60).toFixed(1)} min creating or checking \`bench/peers/.venv\`). Raw results: [benchmarks-peers.json](benchmarks-peers.json).`,
    ...timeLines(results),
    `- **Machine:** ${m.cores} cores (${m.cpu}), ${m.memoryGiB} GiB; ${m.idleBefore === undefined ? '' : `CPU ${Math.round(m.idleBefore * 100)} % idle over the 5 s before the first round; `}load average ${m.loadAtStart[0]} at the start and ${m.loadAtEnd[0]} at the end${m.idleBefore === undefined ? '' : ' (the benchmark\'s own by then)'}${busy ? ' — other work was running on the machine, so absolute times are inflated and noisy; the runners took turns, so the comparison within a round holds better than the absolute figures' : ''}.`,
    `- **Versions:** Python ${v.python}, hyperopt ${v.hyperopt}, cloudpickle ${v.cloudpickle}, numpy ${v.numpy}, scikit-learn ${v.sklearn}, pyspark ${v.pyspark} on ${v.java}, ray ${v.ray}, Node ${v.node}, ${v.openssh}, hyperopt-runner ${v.hyperoptRunner} (${v.commit}).`,
    '',
    (shared.length > 0
      ? `**How each runner ran.** Every study runs [bench/peers/workload.py](../bench/peers/workload.py) with TPE (20 random start-up trials) and the round's seed (\`rstate\` / \`random_state_seed\`). ${shared.map((r) => LABELS[r]).join(', ')} run each round's studies one after another in one Python process, as a notebook or a script that tunes several models does: one Spark session and one Ray instance per round, started once, sized for the largest parallelism (${slots}) and shared by the studies, with the cancel measure last; their "end to end" is that process's start-up (spawn until the first study ended, less the study) plus the study's own span, and leaves out the shut-down, which the cancel measure ends. Our executors run one \`hyperopt-runner run\` per study, as our users do, so their end to end includes starting and stopping the workers every time. `
      : "**How each runner ran.** Every study is a fresh run of [bench/peers/workload.py](../bench/peers/workload.py) with TPE (20 random start-up trials) and the round's seed (`rstate` / `random_state_seed`). ") +
      '*Serial*: the script under `python`. ' +
      `*SparkTrials*: \`SparkTrials(parallelism=N)\` on a \`local[${shared.includes('spark') ? slots : 'N'}]\` session (loopback only, UI off, Python worker reuse on) with \`max_queue_len=N\` — at its default of 1 SparkTrials starts at most one trial per second. ` +
      '*Local*: `hyperopt-runner run --executor local:N --python bench/peers/.venv/bin/python --no-tracking`, the script unmodified. ' +
      "*Tracked*: the same command without `--no-tracking`, as the README gives it: every study and trial logged to MLflow by the workspace's own tracking server, which the first command of the workspace starts and the later ones find running (started before the first round here, as a user's second run finds it); its CPU and memory are not the command's and are not counted. " +
      '*SSH*: the same with `--executor ssh:h1,h2`, two real `sshd` servers on 127.0.0.2–3 with N/2 slots each (the test fixture), the runtime already cached on the hosts. ' +
      `*Ray Tune*: a function trainable, \`HyperOptSearch(n_initial_points=20)\` behind a \`ConcurrencyLimiter(N)\` and \`max_concurrent_trials=N\`, \`ray.init(num_cpus=${shared.includes('ray') ? slots : 'N'}, include_dashboard=False)\`, \`reuse_actors=True\`. ` +
      'Before the first round every library is imported once (page cache) and the SSH hosts get the runtime from one small unmeasured study, as any first run there does. "Study" is the `fmin` (or `Tuner.fit`) call timed inside the script; "end to end" is the whole command, so it includes starting the JVM, Ray or the CLI\'s workers. `OMP_NUM_THREADS=1` for all.',
    '',
  );

  const ref = (runner: RunnerId) => (runner === 'local' ? '1.00×' : undefined);
  const serialMs = d.noop.serial?.msPerTrial;

  out.push(
    `### No-op objective, ${noop.n} trials, parallelism ${noop.parallelism}`,
    '',
    `The objective returns at once, so this is the cost of the machinery per trial. Studies stop after ${noop.cap} s (\`fmin(timeout=)\`, Tune's \`time_budget_s\`); a runner that did not finish ${noop.n} trials by then is measured on the trials it did.`,
    '',
    '| runner | trials done | study, s | trials/s | ms per trial | beyond serial, ms/trial | trials/s vs local | end to end, s |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
  );
  for (const runner of runnersFor(results, 'noop')) {
    const row = d.noop[runner];
    if (!row) {
      out.push(missingRow(results, runner, 8) ?? `| ${LABELS[runner]} | failed${failures(results, runner, 'noop')} | | | | | | |`);
      continue;
    }
    const beyond = row.msPerTrial && serialMs && runner !== 'serial' ? stats(ok(results, runner, 'noop').map((r) => (1000 * r.fminSeconds!) / r.done! - serialMs.median)) : undefined;
    out.push(
      `| ${LABELS[runner]}${failures(results, runner, 'noop')} | ${fmt(row.done, 0)} | ${fmt(row.fmin)} | ${fmt(row.rate)} | ${fmt(row.msPerTrial)} | ${runner === 'serial' ? '(the floor)' : fmt(beyond)} | ${ref(runner) ?? ratio(row.rate, d.noop.local?.rate)} | ${fmt(row.e2e)} |`,
    );
  }

  out.push(
    '',
    `### 1 s sleep objective, ${sleepCase.n} trials, parallelism ${sleepCase.parallelism}`,
    '',
    `Ideal wall time ${(sleepCase.n / sleepCase.parallelism).toFixed(0)} s; efficiency = (trials done × 1 s / ${sleepCase.parallelism}) / measured time. Studies stop after ${sleepCase.cap} s. Serial \`Trials()\` would take ${sleepCase.n} s by construction and is not run.`,
    '',
    '| runner | trials done | study, s | efficiency | end to end, s | end-to-end efficiency | study time vs local |',
    '| --- | --- | --- | --- | --- | --- | --- |',
  );
  for (const runner of runnersFor(results, 'sleep')) {
    const row = d.sleep[runner];
    if (!row) {
      out.push(missingRow(results, runner, 7) ?? `| ${LABELS[runner]} | failed${failures(results, runner, 'sleep')} | | | | | |`);
      continue;
    }
    out.push(`| ${LABELS[runner]}${failures(results, runner, 'sleep')} | ${fmt(row.done, 0)} | ${fmt(row.fmin)} | ${fmt(row.efficiency, 3)} | ${fmt(row.e2e)} | ${fmt(row.e2eEfficiency, 3)} | ${ref(runner) ?? ratio(row.fmin, d.sleep.local?.fmin)} |`);
  }

  out.push(
    '',
    `### A small real model: gradient boosting, ${gbm2.n} trials, parallelism ${gbm2.parallelism} and ${gbm4.parallelism}`,
    '',
    `scikit-learn's \`GradientBoostingClassifier\` on the breast cancer data set that ships with scikit-learn (fixed 70/30 split), searching \`n_estimators\` 10–60, \`learning_rate\` 0.01–1 (log), \`max_depth\` 1–3 and \`subsample\` 0.5–1; the loss is the validation log loss. Studies stop after ${gbm2.cap} s. The machine has ${m.cores} cores, so parallelism ${gbm4.parallelism} oversubscribes them: its speedup cannot pass ${m.cores}. Speedup is trials per second over serial \`Trials()\`'s; best loss is the lowest loss found (same seeds for every runner; lower is better) — over fewer trials where a runner was stopped by the cap.`,
    '',
    '| runner | parallelism | trials done | study, s | speedup over serial | end to end, s | best loss | study time vs local |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
  );
  const serialGbm = d.gbm['gbm-serial'].serial;
  if (results.runners.includes('serial')) {
    out.push(serialGbm ? `| ${LABELS.serial}${failures(results, 'serial', 'gbm-serial')} | 1 | ${fmt(serialGbm.done, 0)} | ${fmt(serialGbm.fmin)} | 1 | ${fmt(serialGbm.e2e)} | ${fmt(serialGbm.best, 4)} | ${ratio(serialGbm.fmin, d.gbm.gbm2.local?.fmin)} (vs local at ${gbm2.parallelism}) |` : `| ${LABELS.serial} | 1 | failed | | | | | |`);
  }
  for (const id of ['gbm2', 'gbm4'] as const) {
    const p = caseOf(results, id).parallelism;
    for (const runner of runnersFor(results, id)) {
      const row = d.gbm[id][runner];
      if (!row) {
        out.push(missingRow(results, runner, 8) ?? `| ${LABELS[runner]} | ${p} | failed${failures(results, runner, id)} | | | | | |`);
        continue;
      }
      out.push(`| ${LABELS[runner]}${failures(results, runner, id)} | ${p} | ${fmt(row.done, 0)} | ${fmt(row.fmin)} | ${fmt(row.speedup)} | ${fmt(row.e2e)} | ${fmt(row.best, 4)} | ${ref(runner) ?? ratio(row.fmin, d.gbm[id].local?.fmin)} |`);
    }
  }

  out.push(
    '',
    `### Cancel mid-study`,
    '',
    `${cancelCase.parallelism} trials of 30 s running (serial: one), then the user's Ctrl+C pressed twice: SIGINT to the command's process group, as a terminal sends it, twice 50 ms apart, for every runner. Serial hyperopt and SparkTrials raise KeyboardInterrupt on the first; hyperopt-runner stops on the first (running trials would finish) and cancels on the second; Ray Tune stops the experiment gracefully on the first and exits on the second. Measured from the first SIGINT until the last process of the run (driver, JVM, Ray daemons, workers, on the SSH hosts too) is gone, sampling the process table; the limit is ${CANCEL_LIMIT_S} s.`,
    '',
    '| runner | last process gone, ms | vs local |',
    '| --- | --- | --- |',
  );
  for (const runner of runnersFor(results, 'cancel')) {
    const row = d.cancel[runner];
    const failed = attempted(results, runner, 'cancel').filter((r) => !r.ok);
    if (!row) {
      out.push(missingRow(results, runner, 3) ?? `| ${LABELS[runner]} | ${failed.some((r) => r.cancelMs === null && r.error?.startsWith('processes still running')) ? `> ${CANCEL_LIMIT_S} s` : 'failed'}${failures(results, runner, 'cancel')} | |`);
      continue;
    }
    out.push(`| ${LABELS[runner]}${failures(results, runner, 'cancel')} | ${fmt(row, 0)} | ${ref(runner) ?? ratio(row, d.cancel.local)} |`);
  }

  out.push(
    '',
    `### Peak memory (gradient boosting study, parallelism ${gbm4.parallelism}; serial at 1)`,
    '',
    'Driver: the process that runs the script. Coordinator: the processes that schedule trials besides the driver — the `hyperopt-runner` CLI (Node) and the interpreter check it runs; Spark\'s JVM and its launcher; Ray\'s GCS server, raylet and Python daemons. Workers: the trial processes (on the SSH hosts: everything under their sshd, sessions included). Each figure is the largest sum, over the processes of that kind alive at one 100 ms sample, of their peak RSS (`VmHWM`). RSS counts shared pages in every process that maps them, so forked workers (Spark\'s) are counted high.' +
      (shared.length > 0 ? ' Where a process ran earlier studies of the round, its peak is set back to its current RSS when this study begins (`/proc/PID/clear_refs`), so the figure is this study\'s peak, on top of what the session already held.' : ''),
    '',
    '| runner | driver, MB | coordinator, MB | coordinator processes | workers, MB | driver + coordinator vs local |',
    '| --- | --- | --- | --- | --- | --- |',
  );
  const total = (runner: RunnerId): Stats | undefined => {
    const id = runner === 'serial' ? 'gbm-serial' : 'gbm4';
    return stats(ok(results, runner, id).map((r) => (r.memory?.driverMb ?? 0) + (r.memory?.coordinatorMb ?? 0)));
  };
  for (const runner of results.runners) {
    const row = d.memory[runner];
    if (!row) {
      out.push(missingRow(results, runner, 6) ?? `| ${LABELS[runner]} | — | | | | |`);
      continue;
    }
    out.push(`| ${LABELS[runner]} | ${mb(row.driver)} | ${row.coordinator ? mb(row.coordinator) : 'none'} | ${row.processes.length ? row.processes.map((p) => `\`${p}\``).join(', ') : '—'} | ${mb(row.workers)} | ${ref(runner) ?? ratio(total(runner), total('local'))} |`);
  }

  out.push('', '![Parallel efficiency per runner](benchmarks-peers.svg)', '');

  const problems: string[] = [];
  for (const [runner, why] of Object.entries(results.unavailable) as Array<[RunnerId, string]>) {
    problems.push(`- **${LABELS[runner]} did not run.** ${why.split('\n').slice(-6).join(' ').slice(0, 900)}`);
  }
  for (const r of results.runs.filter((x) => !x.ok)) {
    problems.push(`- ${LABELS[r.runner]}, ${r.case}, round ${r.round}: ${(r.error ?? '').split('\n').slice(-3).join(' ').slice(0, 400)}`);
  }
  const leftovers = results.runs.filter((r) => r.leftover && r.leftover.length > 0);
  for (const r of leftovers) problems.push(`- ${LABELS[r.runner]}, ${r.case}, round ${r.round}: ${r.leftover!.length} process(es) still alive 10 s after the command exited (killed by the benchmark): ${r.leftover!.slice(0, 3).join('; ')}`);
  if (problems.length > 0) out.push('### Failures and leftovers', '', ...problems, '');

  out.push('### Where we are behind, and why', '', ...behind(results, d), '');
  const peers: string[] = [];
  if (d.noop.spark || d.gbm.gbm2.spark) {
    peers.push(
      "- **SparkTrials** runs each trial as a Spark job of one task, and that task never reads its input partition, so Spark does not give the Python worker back for reuse (`spark.python.worker.reuse` needs the input read to its end): every trial forks a fresh worker from `pyspark.daemon`, which imports hyperopt — and through it scipy.stats — and the objective's modules again. On top of that, `fmin` and SparkTrials' dispatcher each poll once a second. Starting the JVM is the rest of its end-to-end time.",
    );
  }
  if (d.noop.ray || d.gbm.gbm2.ray) {
    peers.push(
      "- **Ray Tune** starts a local Ray instance (GCS server, raylet, dashboard agent, log monitor and workers; here once per round, shared by the round's studies), and each trial goes through Tune's trial bookkeeping: a trial object, scheduling on an actor (reused here), the result reported through Ray and written to the run's storage folder. On Ctrl+C it first stops the experiment gracefully; the second Ctrl+C ends the driver, and `ray.shutdown()` takes the daemons down.",
    );
  }
  if (peers.length > 0) out.push('### Where the peers spend their time', '', ...peers, '');
  return out;
}

const CANCEL_LIMIT_S = 60;

/** Where the command's time went, and why each study stops where it does. */
function timeLines(results: Results): string[] {
  const b = results.budget;
  if (!b) return [];
  const min = (s: number): string => `${(s / 60).toFixed(1)} min`;
  const runners = results.runners.filter((r) => b.runners[r] !== undefined).map((r) => `${LABELS[r]} ${min(b.runners[r]!)}`);
  const caps = results.cases.filter((c) => c.cap !== undefined).map((c) => `${c.id} ${c.cap} s${c.capReason ? ` (${c.capReason})` : ''}`);
  const limits = results.runners.filter((r) => b.roundLimits[r] !== undefined).map((r) => `${LABELS[r]} ${Math.round(b.roundLimits[r]!)} s`);
  return [
    `- **Time:** ${min(results.totalSeconds)} in all: the venv ${min(b.venv)}, the CLI bundle ${min(b.build)}, the loopback sshd servers ${min(b.sshd)}, imports and the SSH warm-up ${min(b.warmUp)}; then, over ${results.rounds} round${results.rounds === 1 ? '' : 's'}, ${runners.join(', ')}.`,
    `- **Caps and limits:** each study stops at its cap (\`fmin(timeout=)\`, Tune's \`time_budget_s\`): ${caps.join('; ')}. A runner stopped by a cap is measured on the trials it finished (trials/s, efficiency and speedup per trial done), and its "trials done" column says so. Past the caps, every process is killed at a hard limit: its studies' caps plus 120 s for starting and stopping, plus ${CANCEL_LIMIT_S} s where it runs the cancel measure (at most, per round: ${limits.join(', ')}) and the studies it did not finish are reported as failed with that reason.`,
  ];
}

/** Whether other work shared the machine: CPU idle before the rounds when measured, else the load average at the start. */
function otherWork(results: Results): boolean {
  const m = results.machine;
  return m.idleBefore !== undefined ? m.idleBefore < 0.8 : m.loadAtStart[0]! > m.cores * 0.5;
}

function times(a: number, b: number): string {
  return a / b >= 2 ? `${(a / b).toFixed(1)} times as much` : `${Math.round((a / b - 1) * 100)} % more`;
}

/** The findings where a peer, or the floor, beats our local executor, each with its cause. */
export function behind(results: Results, d: Derived): string[] {
  const lines: string[] = [];
  const serialMs = d.noop.serial?.msPerTrial?.median;
  const localMs = d.noop.local?.msPerTrial?.median;
  if (serialMs !== undefined && localMs !== undefined && localMs > serialMs) {
    lines.push(
      `- **Per-trial overhead on tiny objectives.** With a no-op objective serial \`Trials()\` runs ${num(serialMs)} ms per trial and our local executor ${num(localMs)} ms per trial at parallelism ${caseOf(results, 'noop').parallelism} — ${num(localMs - serialMs)} ms more, so parallel workers do not pay off for objectives shorter than a few milliseconds. Serial hyperopt calls the objective in its own process; we pickle the objective and the trial's arguments, pass them from the driver to the coordinator and on to a worker and the result back, and journal every trial before \`fmin\` sees it (the journal is what lets a study resume after a crash). TPE's own suggest time, which grows with the number of trials, is paid in the driver by every runner alike.`,
    );
  }
  const ssh = d.noop.ssh?.msPerTrial?.median;
  if (ssh !== undefined && localMs !== undefined && ssh > localMs * 1.1) {
    lines.push(`- **SSH adds per-trial cost.** On loopback hosts the SSH executor runs ${num(ssh)} ms per no-op trial against ${num(localMs)} ms locally (${times(ssh, localMs)}): each trial's arguments and result cross an SSH channel to the remote worker and back, encrypted, on top of the local path. On a real network the round-trip time adds to that; it matters only for objectives of a few tens of milliseconds or less.`);
  }
  // Time outside the study: starting and stopping everything around fmin.
  const serialOutside = stats(ok(results, 'serial', 'noop').map((r) => r.e2eSeconds! - r.fminSeconds!));
  const sleepP = caseOf(results, 'sleep').parallelism;
  const localOutside = stats(ok(results, 'local', 'sleep').map((r) => r.e2eSeconds! - r.fminSeconds!));
  if (serialOutside && localOutside && localOutside.median > serialOutside.median * 1.3) {
    const imported = results.hyperoptImportSeconds;
    const importCost = imported === undefined
      ? ''
      : ` One \`import hyperopt\` takes ${num(imported)} s of CPU in this venv (it imports scipy.stats, and pyspark when that is installed); the driver pays it, and so does the executor's fork server, once, before it forks the ${sleepP} workers (on Linux; elsewhere each worker pays it).`;
    lines.push(`- **Start-up and shut-down around the study.** With ${sleepP} workers the command spent ${num(localOutside.median)} s outside the \`fmin\` call (Node, the interpreter check, the driver and the workers importing hyperopt before the first trial, then stopping them), against ${num(serialOutside.median)} s for the serial script's own start-up, which is why the end-to-end efficiency of 1 s trials is ${d.sleep.local?.e2eEfficiency ? num(d.sleep.local.e2eEfficiency.median, 3) : '?'} where the study's is ${d.sleep.local?.efficiency ? num(d.sleep.local.efficiency.median, 3) : '?'}.${importCost} A short study pays this in full, a long one hardly notices it.`);
  }
  // The default path: the same studies with tracking on.
  for (const id of ['gbm2', 'gbm4'] as const) {
    const untracked = d.gbm[id].local?.fmin?.median;
    const tracked = d.gbm[id].tracked?.fmin?.median;
    if (untracked === undefined || tracked === undefined || tracked <= untracked * 1.1) continue;
    lines.push(`- **Tracking on a CPU-bound study.** With tracking on (the default) the model study at parallelism ${caseOf(results, id).parallelism} took ${num(tracked)} s against ${num(untracked)} s untracked (${times(tracked, untracked)}). Each trial's run is 3 requests to the workspace's MLflow server (create, one batch of params, loss and tags, end), and the server spends 10-15 ms of Python CPU on a request (bench:mlflow); on these ${results.machine.cores} cores that CPU, and the coordinator's for sending them, is taken from trials that already use every core. This benchmark does not measure the split apart. Sleeping or I/O-bound trials do not pay it (the default-path benchmark: 32 x 0.5 s within a few per cent), nor would a machine with a core to spare.`);
  }
  for (const id of ['gbm2', 'gbm4'] as const) {
    const speed = d.gbm[id].local?.speedup?.median;
    const p = caseOf(results, id).parallelism;
    if (speed !== undefined && speed < Math.min(p, results.machine.cores) * 0.75) {
      const others = (['spark', 'ray'] as const).filter((peer) => d.gbm[id][peer]?.speedup).map((peer) => `${LABELS[peer]} ${num(d.gbm[id][peer]!.speedup!.median)}`);
      const cores = results.machine.cores;
      const atCores = id === 'gbm4' ? d.gbm.gbm2.local?.speedup?.median : undefined;
      const cause = otherWork(results)
        ? `The machine's ${cores} cores were also running other work, so extra workers found little free CPU, and serial ran at a different moment than we did; with ${results.rounds} round${results.rounds === 1 ? '' : 's'} this run cannot tell that contention from our own per-trial cost, and an idle machine is needed to say how close parallelism ${Math.min(p, cores)} comes to ${Math.min(p, cores)}×.`
        : p > cores
          ? `${p} workers share ${cores} cores with the driver and the coordinator, so the ceiling is ${cores}×, each trial runs slower, and TPE's suggest in the driver, which every new trial waits for, competes with the workers for CPU${atCores === undefined ? '' : ` (at parallelism ${cores} the same study reached ${num(atCores)}×)`}. More workers than cores only pays for objectives that wait on something other than the CPU.`
          : `Part of every trial is serial — TPE's suggest in the driver and the result's way back through the coordinator and the journal — and the workers wait for it; these figures do not split that further.`;
      lines.push(`- **The model study at parallelism ${p} gained ${speed < 1 ? 'nothing' : 'little'} over serial** (speedup ${num(speed)}${others.length ? `; ${others.join(', ')}` : ''}). ${cause}`);
    }
  }
  for (const peer of ['spark', 'ray'] as const) {
    const rate = d.noop[peer]?.rate?.median;
    const localRate = d.noop.local?.rate?.median;
    if (rate !== undefined && localRate !== undefined && rate > localRate) {
      lines.push(`- **${LABELS[peer]} dispatches no-op trials faster** (${num(rate, 0)} against ${num(localRate, 0)} trials/s).`);
    }
    const eff = d.sleep[peer]?.efficiency?.median;
    const localEff = d.sleep.local?.efficiency?.median;
    if (eff !== undefined && localEff !== undefined && eff > localEff * 1.01) {
      lines.push(`- **${LABELS[peer]} has the better parallel efficiency on 1 s trials** (${num(eff, 3)} against our ${num(localEff, 3)}).`);
    }
    for (const id of ['gbm2', 'gbm4'] as const) {
      const theirs = d.gbm[id][peer]?.fmin?.median;
      const ours = d.gbm[id].local?.fmin?.median;
      if (theirs !== undefined && ours !== undefined && theirs < ours * 0.97) {
        lines.push(`- **${LABELS[peer]} finishes the gradient boosting study faster at parallelism ${caseOf(results, id).parallelism}** (${num(theirs)} s against ${num(ours)} s).`);
      }
    }
  }
  const lowerLoss: string[] = [];
  let separated = false;
  for (const id of ['gbm2', 'gbm4'] as const) {
    const ours = d.gbm[id].local?.best;
    if (!ours) continue;
    for (const peer of ['serial', 'spark', 'ray'] as const) {
      const theirs = (peer === 'serial' ? d.gbm['gbm-serial'].serial : d.gbm[id][peer])?.best;
      if (!theirs || theirs.median >= ours.median * 0.99) continue;
      // Ranges over the rounds that do not overlap: the difference is larger than the noise.
      const apart = theirs.max < ours.min;
      separated ||= apart;
      lowerLoss.push(`at parallelism ${caseOf(results, id).parallelism} ${LABELS[peer]} reached ${fmt(theirs, 4)} against our ${fmt(ours, 4)}${apart ? ', ranges apart' : ', ranges overlapping'}`);
    }
  }
  if (lowerLoss.length > 0) {
    lines.push(
      `- **Best loss of the model study** (median and range over ${results.rounds} round${results.rounds === 1 ? '' : 's'}): ${lowerLoss.join('; ')}. With N trials in flight, TPE suggests each new point without the results of the N − 1 still running, as every parallel hyperopt runner does, and which trials finish first depends on timing, so the same seed does not give the same trials. ${separated ? 'Where the ranges are apart the difference is larger than the variation between rounds here; more rounds would say whether it holds.' : 'The ranges overlap: within the variation between rounds.'}`,
    );
  }
  const localCancel = d.cancel.local?.median;
  const fasterCancel = (['serial', 'spark', 'ray'] as const).filter((peer) => {
    const theirs = d.cancel[peer]?.median;
    return theirs !== undefined && localCancel !== undefined && theirs < localCancel;
  });
  if (fasterCancel.length > 0 && localCancel !== undefined) {
    lines.push(`- **Cancel.** ${fasterCancel.map((peer) => `${LABELS[peer]}: ${num(d.cancel[peer]!.median, 0)} ms`).join('; ')}, against our ${num(localCancel, 0)} ms. A serial script dies of its KeyboardInterrupt with nothing else to stop. Ours, on the second Ctrl+C, kills every worker's process group, lets \`fmin\` return the trials that finished (so the script's own code after \`fmin\` still runs), then the script and the CLI exit: more processes to end, by design.`);
  }
  const localMem = d.memory.local;
  if (localMem && d.memory.serial?.driver && localMem.driver && localMem.driver.median > d.memory.serial.driver.median * 1.1) {
    lines.push(`- **Memory.** Our driver (${num(localMem.driver.median, 0)} MB) holds more than the serial script (${num(d.memory.serial.driver.median, 0)} MB): it imports the runtime and keeps the trials it receives, and the Node coordinator adds ${localMem.coordinator ? num(localMem.coordinator.median, 0) : '?'} MB, where serial hyperopt has no coordinator at all.`);
  }
  for (const peer of ['spark', 'ray'] as const) {
    const theirs = d.memory[peer];
    const sum = (x: typeof theirs): number | undefined => (x?.driver && x.coordinator ? x.driver.median + x.coordinator.median : undefined);
    const a = sum(theirs);
    const b = sum(localMem);
    if (a !== undefined && b !== undefined && a < b) lines.push(`- **${LABELS[peer]} uses less driver and coordinator memory** (${num(a, 0)} MB against ${num(b, 0)} MB).`);
  }
  if (lines.length === 0) lines.push('- Nothing measured here puts a peer ahead of our local executor.');
  return lines;
}

function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** A horizontal bar chart: parallel efficiency per runner, and the model study's speedup. */
export function renderChart(results: Results): string {
  const d = derive(results);
  const width = 820;
  const left = 270;
  const right = 60;
  const barH = 14;
  const plotW = width - left - right;
  const parts: string[] = [];
  let y = 0;
  const colors = ['#3b6ea8', '#9dbce0'];

  const panel = (title: string, note: string, max: number, ticks: number[], rows: Array<{ label: string; bars: Array<Stats | undefined> }>, legend: string[]): void => {
    y += 28;
    parts.push(`<text x="12" y="${y}" font-size="15" font-weight="bold">${escape(title)}</text>`);
    y += 18;
    parts.push(`<text x="12" y="${y}" font-size="12" fill="#555">${escape(note)}</text>`);
    y += 12;
    legend.forEach((text, i) => {
      const lx = left + i * 220;
      parts.push(`<rect x="${lx}" y="${y}" width="12" height="12" fill="${colors[i]}"/><text x="${lx + 18}" y="${y + 11}" font-size="12">${escape(text)}</text>`);
    });
    y += 22;
    const top = y;
    const x = (value: number): number => left + (Math.min(value, max) / max) * plotW;
    const grid = parts.length;
    for (const row of rows) {
      parts.push(`<text x="${left - 8}" y="${y + row.bars.length * barH / 2 + 4}" font-size="12" text-anchor="end">${escape(row.label)}</text>`);
      row.bars.forEach((s, i) => {
        const by = y + i * barH;
        if (!s) {
          parts.push(`<text x="${left + 4}" y="${by + barH - 3}" font-size="11" fill="#a00">no result</text>`);
          return;
        }
        parts.push(`<rect x="${left}" y="${by + 1}" width="${(x(s.median) - left).toFixed(1)}" height="${barH - 2}" fill="${colors[i]}"/>`);
        if (s.n > 1) parts.push(`<line x1="${x(s.min).toFixed(1)}" x2="${x(s.max).toFixed(1)}" y1="${by + barH / 2}" y2="${by + barH / 2}" stroke="#222" stroke-width="1.2"/>`);
        parts.push(`<text x="${(x(Math.max(s.median, s.max)) + 4).toFixed(1)}" y="${by + barH - 3}" font-size="11">${s.median.toFixed(2)}</text>`);
      });
      y += row.bars.length * barH + 10;
    }
    // Grid lines go under the bars.
    parts.splice(grid, 0, ...ticks.map((t) => `<line x1="${x(t).toFixed(1)}" x2="${x(t).toFixed(1)}" y1="${top - 4}" y2="${y - 6}" stroke="#ccc" stroke-dasharray="3,3"/>`));
    for (const t of ticks) parts.push(`<text x="${x(t).toFixed(1)}" y="${y + 8}" font-size="11" text-anchor="middle" fill="#555">${t}</text>`);
    y += 14;
  };

  const sleepCase = results.cases.find((c) => c.id === 'sleep')!;
  const parallel = results.runners.filter((r) => r !== 'serial');
  panel(
    `Parallel efficiency: ${sleepCase.n} trials of 1 s at parallelism ${sleepCase.parallelism}${results.quick ? ' (QUICK MODE)' : ''}`,
    `(trials done x 1 s / parallelism) / measured time; median of ${results.rounds} round(s), line = range; ${results.machine.cores} cores, ${results.machine.idleBefore === undefined ? `load average ${results.machine.loadAtStart[0]} at the start` : `CPU ${Math.round(results.machine.idleBefore * 100)} % idle before the first round`}`,
    1,
    [0, 0.25, 0.5, 0.75, 1],
    parallel.map((r) => ({ label: LABELS[r], bars: [d.sleep[r]?.efficiency, d.sleep[r]?.e2eEfficiency] })),
    ['study (fmin call)', 'end to end (incl. JVM / Ray / worker start)'],
  );
  const gbm2 = results.cases.find((c) => c.id === 'gbm2')!;
  const gbm4 = results.cases.find((c) => c.id === 'gbm4')!;
  const speedups = parallel.flatMap((r) => [d.gbm.gbm2[r]?.speedup?.max ?? 0, d.gbm.gbm4[r]?.speedup?.max ?? 0]);
  const maxSpeed = Math.max(2, Math.ceil(Math.max(...speedups) * 2) / 2);
  panel(
    `Gradient boosting, ${gbm2.n} trials: speedup of the study over serial Trials()`,
    `trials per second over serial Trials()'s; parallelism ${gbm2.parallelism} and ${gbm4.parallelism} on ${results.machine.cores} cores (ideal: ${Math.min(gbm2.parallelism, results.machine.cores)} and ${Math.min(gbm4.parallelism, results.machine.cores)})`,
    maxSpeed,
    Array.from({ length: Math.floor(maxSpeed / 0.5) + 1 }, (_, i) => i * 0.5),
    parallel.map((r) => ({ label: LABELS[r], bars: [d.gbm.gbm2[r]?.speedup, d.gbm.gbm4[r]?.speedup] })),
    [`parallelism ${gbm2.parallelism}`, `parallelism ${gbm4.parallelism}`],
  );
  const height = y + 10;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif">`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    ...parts,
    '</svg>',
    '',
  ].join('\n');
}
