/**
 * Every `hyperoptRunner.*` setting is read and validated here and nowhere else. Reading never
 * throws: an invalid value falls back to its default and is reported as a problem with a message
 * that names the setting, the value and what is expected.
 */
import { isAbsolute, join, resolve } from 'node:path';
import { parseExecutorSpec, type ExecutorSpec } from '../../../core/src/executorSpec';
import { messageOf } from '../../../core/src/errors';
import { STATE_DIR } from '../../../core/src/mlflow/supervisor';

export const SECTION = 'hyperoptRunner';

/** Reads one raw value (VS Code's `WorkspaceConfiguration.get`, or a plain object in tests). */
export type SettingReader = (key: string) => unknown;

export interface Settings {
  /** Executor choices as written (`local`, `local:4`, `ssh:a,b`), each valid. */
  executors: string[];
  sshHostsFile: string | undefined;
  acceptNewHostKeys: boolean;
  studyTimeout: number | null;
  trialTimeout: number | null;
  parallelism: number | null;
  /** null: not tracked; '': the embedded server; else a tracking URI. */
  trackingUri: string | null;
  journalDirectory: string;
  /** Interpreter path set by the user, absolute; undefined when not set. */
  python: string | undefined;
  serviceIdleTimeout: number;
  runsPageSize: number;
}

export interface SettingProblem {
  key: string;
  message: string;
}

export interface ReadResult {
  settings: Settings;
  problems: SettingProblem[];
}

const DEFAULTS = {
  executors: ['local'],
  serviceIdleTimeout: 300,
  runsPageSize: 50,
};

function describe(value: unknown): string {
  return typeof value === 'string' ? `'${value}'` : JSON.stringify(value);
}

/** Reads and validates every setting; `workspace` resolves relative paths. */
export function readSettings(get: SettingReader, workspace: string): ReadResult {
  const problems: SettingProblem[] = [];
  const problem = (key: string, value: unknown, expected: string): void => {
    problems.push({ key: `${SECTION}.${key}`, message: `${SECTION}.${key}: ${describe(value)} is not valid: ${expected}` });
  };

  const executors: string[] = [];
  const rawExecutors = get('executors');
  if (rawExecutors === undefined || rawExecutors === null) executors.push(...DEFAULTS.executors);
  else if (!Array.isArray(rawExecutors)) problem('executors', rawExecutors, 'expected a list such as ["local:4", "ssh:gpu1,gpu2"]');
  else {
    rawExecutors.forEach((entry, index) => {
      if (typeof entry !== 'string') {
        problem(`executors[${index}]`, entry, 'expected a string such as "local:4" or "ssh:gpu1,gpu2"');
        return;
      }
      try {
        parseExecutorSpec(entry);
        executors.push(entry.trim());
      } catch (error) {
        problems.push({ key: `${SECTION}.executors`, message: `${SECTION}.executors[${index}]: ${messageOf(error)}` });
      }
    });
  }
  if (executors.length === 0 && problems.length === 0) problem('executors', rawExecutors, 'name at least one executor, for example "local"');
  if (executors.length === 0) executors.push(...DEFAULTS.executors);

  const seconds = (key: string): number | null => {
    const value = get(key);
    if (value === undefined || value === null || value === 0 || value === '') return null;
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
      problem(key, value, 'expected a positive number of seconds, or empty for none');
      return null;
    }
    return value;
  };
  const path = (key: string): string | undefined => {
    const value = get(key);
    if (value === undefined || value === null || value === '') return undefined;
    if (typeof value !== 'string' || value.includes('\0')) {
      problem(key, value, 'expected a path');
      return undefined;
    }
    const expanded = value.replace(/^~(?=$|[\\/])/, process.env.HOME ?? '~').replace(/\$\{workspaceFolder\}/g, workspace);
    return isAbsolute(expanded) ? expanded : resolve(workspace, expanded);
  };

  const studyTimeout = seconds('studyTimeout');
  const trialTimeout = seconds('trialTimeout');

  let parallelism: number | null = null;
  const rawParallelism = get('parallelism');
  if (rawParallelism !== undefined && rawParallelism !== null) {
    if (typeof rawParallelism === 'number' && Number.isInteger(rawParallelism) && rawParallelism >= 1 && rawParallelism <= 4096) parallelism = rawParallelism;
    else problem('parallelism', rawParallelism, 'expected a whole number from 1 to 4096, or empty for one trial per executor slot');
  }

  let trackingUri: string | null = '';
  const tracking = get('tracking');
  if (tracking === false) trackingUri = null;
  else if (tracking !== undefined && tracking !== true) problem('tracking', tracking, 'expected true or false');
  const rawUri = get('trackingUri');
  if (trackingUri !== null && typeof rawUri === 'string' && rawUri.trim() !== '') {
    const uri = rawUri.trim();
    if (/^https?:\/\/[^\s/]+/i.test(uri) || /^(sqlite|file):/i.test(uri) || !/^[A-Za-z][A-Za-z0-9+.-]+:/.test(uri)) trackingUri = uri;
    else problem('trackingUri', rawUri, 'expected an http(s):// tracking server, a sqlite:/// or file: store, or empty for the embedded server');
  } else if (rawUri !== undefined && rawUri !== null && typeof rawUri !== 'string') {
    problem('trackingUri', rawUri, 'expected a URI string');
  }

  const journalDirectory = path('journalDirectory') ?? join(workspace, STATE_DIR, 'journal');
  const python = path('python');
  const sshHostsFile = path('sshHostsFile');

  const acceptRaw = get('acceptNewHostKeys');
  let acceptNewHostKeys = false;
  if (acceptRaw === true) acceptNewHostKeys = true;
  else if (acceptRaw !== undefined && acceptRaw !== null && acceptRaw !== false) problem('acceptNewHostKeys', acceptRaw, 'expected true or false');

  const bounded = (key: string, min: number, max: number, fallback: number, integer: boolean): number => {
    const value = get(key);
    if (value === undefined || value === null) return fallback;
    if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max || (integer && !Number.isInteger(value))) {
      problem(key, value, `expected ${integer ? 'a whole number' : 'a number'} from ${min} to ${max}`);
      return fallback;
    }
    return value;
  };

  return {
    settings: {
      executors,
      sshHostsFile,
      acceptNewHostKeys,
      studyTimeout,
      trialTimeout,
      parallelism,
      trackingUri,
      journalDirectory,
      python,
      serviceIdleTimeout: bounded('serviceIdleTimeout', 10, 7 * 24 * 3600, DEFAULTS.serviceIdleTimeout, false),
      runsPageSize: bounded('runsPageSize', 5, 1000, DEFAULTS.runsPageSize, true),
    },
    problems,
  };
}

/** Parsed executor specifications of a choice (each entry already validated by readSettings). */
export function executorSpecs(choice: readonly string[]): ExecutorSpec[] {
  return choice.map(parseExecutorSpec);
}
