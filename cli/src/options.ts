/** Command-line parsing for the CLI; every invalid value becomes a RunnerError with a one-line message. */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { delimiter, dirname, isAbsolute, join, resolve } from 'node:path';
import { parseExecutorSpec, type ExecutorSpec } from '../../core/src/executorSpec';
import { RunnerError } from '../../core/src/errors';
import { withSshSettings } from '../../executors/src/ssh';

export interface CommonOptions {
  python: string;
  journalDir: string;
}

export interface RunOptions extends CommonOptions {
  script: string;
  scriptArgs: string[];
  executors: ExecutorSpec[];
  timeout: number | null;
  trialTimeout: number | null;
  parallelism: number | null;
  summaryJson: string | null;
  quiet: boolean;
  trackingUri: string | null;
  noTracking: boolean;
}

interface Flag {
  readonly name: string;
  readonly takesValue: boolean;
  readonly repeat?: boolean;
}

/** Splits argv into known flags and positionals; script arguments follow `--`. */
export function parseFlags(argv: readonly string[], flags: readonly Flag[]): { values: Map<string, string[]>; positionals: string[]; rest: string[] } {
  const values = new Map<string, string[]>();
  const positionals: string[] = [];
  const dashdash = argv.indexOf('--');
  const own = dashdash === -1 ? argv : argv.slice(0, dashdash);
  const rest = dashdash === -1 ? [] : argv.slice(dashdash + 1);
  for (let i = 0; i < own.length; i++) {
    const arg = own[i]!;
    if (!arg.startsWith('--')) {
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
    const flag = flags.find((f) => f.name === name);
    if (!flag) {
      const reason = arg.endsWith('.py')
        ? `unknown option; a script whose name starts with dashes runs as ./${arg} or after --`
        : 'unknown option; see `hyperopt-runner --help`';
      throw new RunnerError('invalid_option', { option: arg, value: '', reason });
    }
    let value = 'true';
    if (flag.takesValue) {
      if (eq !== -1) value = arg.slice(eq + 1);
      else if (i + 1 < own.length) value = own[++i]!;
      else throw new RunnerError('invalid_option', { option: `--${name}`, value: '', reason: 'it needs a value' });
    }
    const list = values.get(name) ?? [];
    if (list.length > 0 && !flag.repeat) throw new RunnerError('invalid_option', { option: `--${name}`, value, reason: 'given more than once' });
    list.push(value);
    values.set(name, list);
  }
  return { values, positionals, rest };
}

function seconds(option: string, value: string | undefined): number | null {
  if (value === undefined) return null;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new RunnerError('invalid_option', { option, value, reason: 'expected a positive number of seconds' });
  return n;
}

function which(command: string, env: NodeJS.ProcessEnv): string | undefined {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    const candidate = join(dir, command);
    if (dir && existsSync(candidate)) return candidate;
  }
  return undefined;
}

/** --python, else HYPEROPT_RUNNER_PYTHON, else the workspace's .venv, else python3 on PATH. */
export function resolvePython(flag: string | undefined, env: NodeJS.ProcessEnv, workspace: string): string {
  const chosen = flag ?? env.HYPEROPT_RUNNER_PYTHON;
  if (chosen) {
    const path = chosen.includes('/') || chosen.includes('\\') ? resolve(workspace, chosen) : which(chosen, env);
    if (!path || !existsSync(path)) throw new RunnerError('interpreter_not_found', { python: chosen });
    return path;
  }
  const venv = process.platform === 'win32' ? join(workspace, '.venv', 'Scripts', 'python.exe') : join(workspace, '.venv', 'bin', 'python');
  if (existsSync(venv)) return venv;
  const fallback = which(process.platform === 'win32' ? 'python.exe' : 'python3', env);
  if (!fallback) throw new RunnerError('interpreter_not_found', { python: 'python3' });
  return fallback;
}

/** --journal-dir, else HYPEROPT_RUNNER_JOURNAL_DIR, else the workspace's; a file there (or above it) is refused. */
export function journalDirOption(flag: string | undefined, env: NodeJS.ProcessEnv, workspace: string): string {
  const fromEnv = env.HYPEROPT_RUNNER_JOURNAL_DIR;
  const dir = flag ? resolve(workspace, flag) : fromEnv ? resolve(workspace, fromEnv) : join(workspace, '.hyperopt-runner', 'journal');
  // The nearest part of the path that exists must be a folder: the journal's folders are made below it.
  for (let at = dir; ; at = dirname(at)) {
    if (existsSync(at)) {
      if (!statSync(at).isDirectory()) throw new RunnerError('journal_dir_not_folder', { path: dir, file: at });
      return dir;
    }
    if (dirname(at) === at) return dir;
  }
}

/** A script must exist and be Python source: a .py file or a file with a python shebang. */
export function checkScript(script: string, cwd: string): string {
  const path = isAbsolute(script) ? script : resolve(cwd, script);
  if (!existsSync(path) || !statSync(path).isFile()) throw new RunnerError('script_not_found', { path: script, cwd });
  if (!path.endsWith('.py')) {
    const head = readFileSync(path, { encoding: 'utf8', flag: 'r' }).slice(0, 128);
    if (!/^#!.*python/.test(head)) throw new RunnerError('script_not_python', { path: script });
  }
  return path;
}

export const RUN_FLAGS: readonly Flag[] = [
  { name: 'executor', takesValue: true, repeat: true },
  { name: 'timeout', takesValue: true },
  { name: 'trial-timeout', takesValue: true },
  { name: 'parallelism', takesValue: true },
  { name: 'summary-json', takesValue: true },
  { name: 'python', takesValue: true },
  { name: 'journal-dir', takesValue: true },
  { name: 'quiet', takesValue: false },
  { name: 'tracking-uri', takesValue: true },
  { name: 'no-tracking', takesValue: false },
  { name: 'hosts-file', takesValue: true },
  { name: 'accept-new-host-keys', takesValue: false },
];

export function parseRunOptions(argv: readonly string[], env: NodeJS.ProcessEnv, cwd: string): RunOptions {
  const { values, positionals, rest } = parseFlags(argv, RUN_FLAGS);
  // With no script before `--`, the first word after it is the script (`run -- --study.py ARGS`).
  const scriptFirst = positionals.length > 0;
  const [script, ...extra] = scriptFirst ? positionals : rest;
  if (!script) throw new RunnerError('invalid_option', { option: 'run', value: '', reason: 'name the script to run: hyperopt-runner run SCRIPT.py' });
  const scriptPath = checkScript(script, cwd);
  const hostsFile = values.get('hosts-file')?.[0];
  const executors = withSshSettings((values.get('executor') ?? ['local']).map(parseExecutorSpec), {
    hostsFile: hostsFile ? resolve(cwd, hostsFile) : undefined,
    acceptNewHostKeys: values.has('accept-new-host-keys'),
    codeDir: dirname(scriptPath),
  });
  const parallelismText = values.get('parallelism')?.[0];
  let parallelism: number | null = null;
  if (parallelismText !== undefined) {
    parallelism = Number(parallelismText);
    if (!Number.isInteger(parallelism) || parallelism < 1) {
      throw new RunnerError('invalid_option', { option: '--parallelism', value: parallelismText, reason: 'expected a whole number >= 1' });
    }
  }
  const summary = values.get('summary-json')?.[0];
  return {
    script: scriptPath,
    scriptArgs: scriptFirst ? [...extra, ...rest] : extra,
    executors,
    timeout: seconds('--timeout', values.get('timeout')?.[0]),
    trialTimeout: seconds('--trial-timeout', values.get('trial-timeout')?.[0]),
    parallelism,
    summaryJson: summary ? resolve(cwd, summary) : null,
    python: resolvePython(values.get('python')?.[0], env, cwd),
    journalDir: journalDirOption(values.get('journal-dir')?.[0], env, cwd),
    quiet: values.has('quiet'),
    trackingUri: values.get('tracking-uri')?.[0] ?? null,
    noTracking: values.has('no-tracking'),
  };
}
