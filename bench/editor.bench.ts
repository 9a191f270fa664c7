/**
 * Time to the first trial from the editor, measured as the CLI's is: from the click that starts
 * the run (picking local:2 after "Run with executor..." on the CodeLens over fmin) to the
 * objective's first call, in a real VS Code (code-server + headless Chromium), tracking on as by
 * default; beside it, in the same workspace and minutes, the CLI's own figure (command start to
 * the first call) and the serial script's. Writes "## Editor: time to the first trial" of
 * docs/benchmarks.md.
 *
 *   npm run bench:editor   (ROUNDS=N for the warm rounds, default 5)
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { openSession } from '../test/vscode/harness/session';
import { ATTEMPT_MS, retrying, STEP_MS } from '../test/vscode/harness/ui';
import { makeWorkspace, removeWorkspace } from '../test/vscode/extension/workspace';
import { writeBenchmarkSection } from './report';

const ROOT = resolve(__dirname, '..');
const PYTHON = join(ROOT, '.venv', 'bin', 'python');
const CLI = join(ROOT, 'bin', 'hyperopt-runner.js');
const SCRIPT = 'first_call.py';
const MARK = 'first-call.txt';

/** 8 trials of 0.1 s; the first call of the objective writes the time next to the script. */
const WORKLOAD = `"""Benchmark workload: 8 trials of 0.1 s; the objective's first call writes the time to ${MARK}."""
import os
import time

from hyperopt import fmin, hp, rand

MARK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "${MARK}")


def objective(x):
    try:
        fd = os.open(MARK, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        os.write(fd, repr(time.time()).encode())
        os.close(fd)
    except FileExistsError:
        pass
    time.sleep(0.1)
    return x


fmin(objective, hp.uniform("x", 0, 1), algo=rand.suggest, max_evals=8)
`;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function cell(values: number[]): string {
  return values.length === 1 ? `${values[0]!.toFixed(2)} s` : `${median(values).toFixed(2)} s (${Math.min(...values).toFixed(2)}-${Math.max(...values).toFixed(2)})`;
}

async function until<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = STEP_MS): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  // The benchmark watches files and the page; the product itself never polls.
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function firstCall(workspace: string): number | undefined {
  const path = join(workspace, MARK);
  if (!existsSync(path)) return undefined;
  const text = readFileSync(path, 'utf8');
  return text ? Number(text) * 1000 : undefined;
}

/** When the background service logged the latest run of the script (its request arrived). */
function serviceGotRun(workspace: string): number | undefined {
  const log = join(workspace, '.hyperopt-runner', 'service.log');
  if (!existsSync(log)) return undefined;
  const line = readFileSync(log, 'utf8').split('\n').reverse().find((l) => l.includes(`${SCRIPT} on local:2`));
  return line ? Date.parse(line.split(' ')[0]!) : undefined;
}

/** Studies of the workspace's journal that have ended. */
function endedStudies(workspace: string): number {
  const dir = join(workspace, '.hyperopt-runner', 'journal');
  if (!existsSync(dir)) return 0;
  return readdirSync(dir).filter((name) => name.endsWith('.jsonl') && readFileSync(join(dir, name), 'utf8').includes('"state":"ended"')).length;
}

/** Command start to the first call, for a command run in the workspace. */
function commandFirstCall(workspace: string, command: string[]): number {
  rmSync(join(workspace, MARK), { force: true });
  const started = Date.now();
  const out = spawnSync(command[0]!, command.slice(1), { cwd: workspace, env: { ...process.env, HYPEROPT_RUNNER_PYTHON: PYTHON }, encoding: 'utf8' });
  if (out.status !== 0) throw new Error(`${command.join(' ')} failed: ${out.stderr.slice(-2000)}`);
  const at = firstCall(workspace);
  if (at === undefined) throw new Error(`${command.join(' ')} never called the objective`);
  return (at - started) / 1000;
}

async function main(): Promise<void> {
  const rounds = Number(process.env.ROUNDS ?? 5);
  spawnSync(process.execPath, ['scripts/build.mjs'], { cwd: ROOT, stdio: 'inherit' });
  const loadBefore = loadavg()[0]!;
  // Tracking on, as a user has it by default (the test workspaces turn it off).
  const workspace = makeWorkspace({ 'hyperoptRunner.tracking': true });
  writeFileSync(join(workspace, SCRIPT), WORKLOAD);
  const editor: number[] = [];
  /** From the click to the service receiving the run (the editor's own part). */
  const toService: number[] = [];
  let first = Number.NaN;
  const cli: number[] = [];
  const serial: number[] = [];
  const session = await openSession({ workspaceFolder: workspace, extensionPath: ROOT });
  try {
    const page = session.page;
    await session.workbench.waitUntilReady(STEP_MS);
    await session.workbench.whenRestored();
    await session.workbench.openFile(SCRIPT);
    const lens = (title: string) => page.locator('.monaco-editor .codelens-decoration a', { hasText: title }).first();
    const row = page.locator('.quick-input-widget .monaco-list-row', { hasText: 'local:2' }).first();
    for (let round = 0; round <= rounds; round++) {
      rmSync(join(workspace, MARK), { force: true });
      await lens('Run with executor...').waitFor({ timeout: STEP_MS });
      let clicked = 0;
      await retrying(
        'picking local:2 from the CodeLens',
        async () => {
          await lens('Run with executor...').click({ timeout: ATTEMPT_MS });
          await row.waitFor({ timeout: ATTEMPT_MS });
          // The moment of the click as the page gets it (Playwright's own checks before it take
          // a tenth of a second or more and are no part of what a user waits for).
          await page.evaluate(() => {
            const w = globalThis as unknown as { hrClickedAt?: number; addEventListener: (type: string, listener: () => void, options: object) => void };
            w.hrClickedAt = undefined;
            w.addEventListener('mousedown', () => (w.hrClickedAt ??= Date.now()), { capture: true, once: true });
          });
          await row.click({ timeout: ATTEMPT_MS });
          clicked = await page.evaluate(() => (globalThis as unknown as { hrClickedAt?: number }).hrClickedAt ?? 0);
          if (!clicked) throw new Error('the page saw no click');
        },
        () => page.keyboard.press('Escape'),
      );
      const at = await until('the first trial', () => firstCall(workspace));
      const seconds = (at - clicked) / 1000;
      // Round 0 is the window's first run: the background service and the tracking server start.
      const received = serviceGotRun(workspace);
      if (round === 0) first = seconds;
      else {
        editor.push(seconds);
        if (received !== undefined) toService.push((received - clicked) / 1000);
      }
      console.log(`round ${round}: click to first trial ${seconds.toFixed(2)} s`);
      // The study ends before anything else runs (a trial still running would write the mark again).
      const ended = 1 + round * 2 - (round === 0 ? 0 : 1);
      await until('the study to end', () => (endedStudies(workspace) >= ended ? true : undefined));
      if (round === 0) continue;
      cli.push(commandFirstCall(workspace, [CLI, 'run', SCRIPT, '--executor', 'local:2', '--quiet']));
      serial.push(commandFirstCall(workspace, [PYTHON, SCRIPT]));
      console.log(`round ${round}: CLI ${cli[cli.length - 1]!.toFixed(2)} s, serial ${serial[serial.length - 1]!.toFixed(2)} s`);
    }
  } finally {
    await session.close();
    await removeWorkspace(workspace);
  }
  const ratio = median(editor) / median(serial);
  writeBenchmarkSection(join(ROOT, 'docs', 'benchmarks.md'), 'Editor: time to the first trial', [
    `Command: \`npm run bench:editor\` (${rounds} rounds), ${new Date().toISOString().slice(0, 10)}. Machine: ${cpus().length} cores (${cpus()[0]?.model.trim() ?? 'unknown CPU'}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB; code-server 4.139.1 (VS Code 1.139.1) in headless Chromium. Load average ${loadBefore.toFixed(1)} before and ${loadavg()[0]!.toFixed(1)} after.`,
    '',
    `A window on a workspace with tracking on (the default). Each round clicks "Run with executor..." on the CodeLens over \`fmin\` and picks local:2: the time runs from that click (the mouse press as the page receives it) to the objective's first call (8 trials of 0.1 s, \`rand.suggest\`). Then the same script with \`hyperopt-runner run ${SCRIPT} --executor local:2\` in the same workspace (command start to the first call) and under \`python\`. The window's first run also starts the background service; every run after it finds the service and the workspace's tracking server running.`,
    '',
    '| from | to the first trial | vs serial |',
    '| --- | --- | --- |',
    `| the click, the window's first run (the service starts) | ${first.toFixed(2)} s | ${(first / median(serial)).toFixed(2)}x |`,
    `| the click, later runs | ${cell(editor)} | ${ratio.toFixed(2)}x |`,
    `| of which the click to the background service receiving the run | ${toService.length ? cell(toService) : 'n/a'} | |`,
    `| \`hyperopt-runner run\`, same workspace | ${cell(cli)} | ${(median(cli) / median(serial)).toFixed(2)}x |`,
    `| \`python ${SCRIPT}\` | ${cell(serial)} | 1.00x |`,
    '',
    `The editor ${median(editor) <= median(cli) * 1.05 ? 'is no slower than' : 'is slower than'} the CLI here (${median(editor).toFixed(2)} s against ${median(cli).toFixed(2)} s, medians): the service, already running, starts the run as the CLI does, without a Node process of its own to start.`,
  ]);
}

void main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
