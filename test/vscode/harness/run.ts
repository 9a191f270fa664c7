// Runs an extension's test suite in a real VS Code (code-server + headless Chromium), offline.
//
//   node --import tsx test/vscode/harness/run.ts --extension DIR --tests DIR/out/test/index.js \
//     [--workspace DIR] [--env NAME=VALUE]... [--timeout SECONDS] [--screenshot] [--verbose]
//
// Needs `bash scripts/setup-vscode.sh` once. Exits with the extension host's exit code.
import { cpSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { openSession } from './session';
import type { Session } from './session';
import { RESULTS_DIR } from './ui';

export interface RunOptions {
  /** The extension folder (its package.json), loaded in development mode. */
  extensionPath: string;
  /** The suite entry: a CommonJS module exporting `run()` (see suite.ts). */
  testsPath: string;
  /** The folder the window opens; default: the extension folder. */
  workspaceFolder?: string;
  /** Environment variables for the extension host. */
  env?: Record<string, string>;
  /** Overall limit from starting code-server to the suite's end (ms, default 180 s). */
  timeoutMs?: number;
  /** Save a screenshot at the end even when the suite passes (always saved on failure). */
  screenshot?: boolean;
  /** Name for the screenshot and log folder in test-results/ (default: the extension folder's name). */
  name?: string;
  /** Where extension host lines go as they arrive; default stdout. `null` keeps them quiet. */
  onLog?: ((line: string) => void) | null;
  /** Print the workbench's and code-server's own logs too (to stderr). */
  verbose?: boolean;
}

export interface RunResult {
  /** The extension host's exit code: 0 when every test passed; 124 on timeout. */
  exitCode: number;
  /** From the suite's closing `N passed, N failed` line; 0 and 0 when it never printed one. */
  passed: number;
  failed: number;
  /** Every line the extension host's console printed. */
  log: string[];
  /** The workbench's own log (useful when the host never started). */
  workbenchLog: string[];
  /** Screenshot saved for this run, if any. */
  screenshotPath?: string;
  durationMs: number;
}

export const TIMEOUT_EXIT_CODE = 124;
const SUMMARY = /^(?:\w+: )?(\d+) passed, (\d+) failed(?:, \d+ skipped)?$/;

/** Reads the last `N passed, N failed` line of a log. */
export function parseSummary(log: readonly string[]): { passed: number; failed: number } | undefined {
  for (let i = log.length - 1; i >= 0; i--) {
    const match = SUMMARY.exec((log[i] ?? '').trim());
    if (match) return { passed: Number(match[1]), failed: Number(match[2]) };
  }
  return undefined;
}

export async function runExtensionTests(options: RunOptions): Promise<RunResult> {
  const started = Date.now();
  const extensionPath = resolve(options.extensionPath);
  const testsPath = resolve(options.testsPath);
  for (const [what, path] of [
    ['extension package.json', join(extensionPath, 'package.json')],
    ['tests entry', testsPath],
  ] as const) {
    if (!existsSync(path)) throw new Error(`${what} not found: ${path} (build the extension first)`);
  }
  const name = (options.name ?? basename(extensionPath)).replace(/[^\w.-]+/g, '-');
  const print = options.onLog === undefined ? (line: string) => process.stdout.write(`${line}\n`) : (options.onLog ?? undefined);
  const timeoutMs = options.timeoutMs ?? 180_000;

  let session: Session | undefined;
  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(new Error(`timed out after ${timeoutMs / 1000} s`)), timeoutMs);
  const timedOut = new Promise<number>((r) => {
    deadline.signal.addEventListener('abort', () => r(TIMEOUT_EXIT_CODE), { once: true });
  });
  try {
    try {
      session = await openSession({
        workspaceFolder: options.workspaceFolder ?? extensionPath,
        extensionPath,
        testsPath,
        env: options.env,
        signal: deadline.signal,
        onLog: print,
        onWorkbenchLog: options.verbose ? (line) => process.stderr.write(`${line}\n`) : undefined,
        onServerOutput: options.verbose ? (line) => process.stderr.write(`[code-server] ${line}\n`) : undefined,
      });
    } catch (error) {
      if (!deadline.signal.aborted) throw error;
      print?.(`VS Code did not open within ${timeoutMs / 1000} s`);
      return { exitCode: TIMEOUT_EXIT_CODE, passed: 0, failed: 0, log: [], workbenchLog: [], durationMs: Date.now() - started };
    }
    const exitCode = await Promise.race([session.exited, timedOut]);
    if (exitCode === TIMEOUT_EXIT_CODE) print?.(`the suite did not finish within ${timeoutMs / 1000} s`);

    let screenshotPath: string | undefined;
    if (options.screenshot || exitCode !== 0) {
      screenshotPath = await session.workbench.screenshot(`vscode-${name}`).catch(() => undefined);
    }
    if (exitCode !== 0) {
      const saved = saveLogs(session, name);
      if (saved) print?.(`logs of the workbench and code-server: ${saved}`);
    }
    const summary = parseSummary(session.log);
    return {
      exitCode,
      passed: summary?.passed ?? 0,
      failed: summary?.failed ?? 0,
      log: session.log,
      workbenchLog: session.workbenchLog,
      screenshotPath,
      durationMs: Date.now() - started,
    };
  } finally {
    clearTimeout(timer);
    await session?.close();
  }
}

/**
 * For a failed run: the workbench's log, code-server's output and its log folder (extension host,
 * remote agent) into test-results/vscode-NAME-logs/.
 */
function saveLogs(session: Session, name: string): string | undefined {
  try {
    const target = join(RESULTS_DIR, `vscode-${name}-logs`);
    rmSync(target, { recursive: true, force: true });
    mkdirSync(target, { recursive: true });
    writeFileSync(join(target, 'workbench.log'), `${session.workbenchLog.join('\n')}\n`);
    writeFileSync(join(target, 'code-server.log'), `${session.codeServer.output().join('\n')}\n`);
    const logs = join(session.codeServer.dirs.userData, 'logs');
    if (existsSync(logs)) cpSync(logs, join(target, 'server'), { recursive: true });
    return target;
  } catch {
    return undefined; // diagnostics only
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      extension: { type: 'string' },
      tests: { type: 'string' },
      workspace: { type: 'string' },
      env: { type: 'string', multiple: true },
      timeout: { type: 'string' },
      screenshot: { type: 'boolean' },
      verbose: { type: 'boolean' },
      name: { type: 'string' },
    },
  });
  if (!values.extension || !values.tests) {
    process.stderr.write(
      'usage: node --import tsx test/vscode/harness/run.ts --extension DIR --tests FILE [--workspace DIR] ' +
        '[--env NAME=VALUE]... [--timeout SECONDS] [--screenshot] [--verbose] [--name NAME]\n',
    );
    process.exit(2);
  }
  const env: Record<string, string> = {};
  for (const pair of values.env ?? []) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new Error(`--env wants NAME=VALUE, got '${pair}'`);
    env[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  const result = await runExtensionTests({
    extensionPath: values.extension,
    testsPath: values.tests,
    workspaceFolder: values.workspace,
    env,
    timeoutMs: values.timeout ? Number(values.timeout) * 1000 : undefined,
    screenshot: values.screenshot,
    verbose: values.verbose,
    name: values.name,
  });
  const shot = result.screenshotPath ? `; screenshot ${result.screenshotPath}` : '';
  process.stderr.write(`vscode tests: exit code ${result.exitCode} after ${(result.durationMs / 1000).toFixed(1)} s${shot}\n`);
  process.exitCode = result.exitCode;
}

if (resolve(process.argv[1] ?? '') === __filename) {
  main().catch((error: unknown) => {
    process.stderr.write(`vscode tests: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  });
}
