// The integration suite's workspace: samples/*.py and the decoys, copied to a temporary folder
// (runs write .hyperopt-runner/ into it), with settings that point at the project's .venv.
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { listTrackingRecords } from '../../../core/src/mlflow/serverRecord';
import { stopTrackingServer } from '../../../core/src/mlflow/serverLease';
import { readServiceFile, pidAlive } from '../../../core/src/service/serviceFile';

const ROOT = resolve(__dirname, '../../..');

export function makeWorkspace(settings: Record<string, unknown> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'hr-vscode-ws-'));
  for (const file of readdirSync(join(ROOT, 'samples'))) if (file.endsWith('.py')) copyFileSync(join(ROOT, 'samples', file), join(dir, file));
  for (const file of readdirSync(join(__dirname, 'workspace'))) copyFileSync(join(__dirname, 'workspace', file), join(dir, file));
  mkdirSync(join(dir, '.vscode'));
  writeFileSync(
    join(dir, '.vscode', 'settings.json'),
    JSON.stringify(
      {
        'hyperoptRunner.python': join(ROOT, '.venv', 'bin', 'python'),
        'hyperoptRunner.executors': ['local:2'],
        'hyperoptRunner.serviceIdleTimeout': 30,
        ...settings,
      },
      null,
      2,
    ),
  );
  return dir;
}

/**
 * Processes (other than this one) whose command line or environment names `dir`: the background
 * service, the scripts and workers it started, the embedded MLflow server and its workers.
 */
export function processesUsing(dir: string): { pid: number; command: string }[] {
  const found: { pid: number; command: string }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      const environ = readFileSync(`/proc/${entry}/environ`, 'utf8');
      if (cmdline.includes(dir) || environ.includes(dir)) found.push({ pid: Number(entry), command: cmdline.replace(/\0/g, ' ').trim().slice(0, 160) });
    } catch {
      // gone, or not ours to read
    }
  }
  return found;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Ends the workspace's background service (if one runs) and its tracking server (which outlives
 * the service by design, as `hyperopt-runner tracking stop` would), removes the folder, and fails
 * when any process of the workspace is still running 15 s later (those are killed first, so
 * nothing outlives the suite).
 */
export async function removeWorkspace(dir: string): Promise<void> {
  const record = readServiceFile(dir);
  if (record && pidAlive(record.pid)) {
    try {
      process.kill(-record.pid, 'SIGTERM');
    } catch {
      try {
        process.kill(record.pid, 'SIGTERM');
      } catch {
        // gone
      }
    }
    const deadline = Date.now() + 10_000;
    while (pidAlive(record.pid) && Date.now() < deadline) await sleep(100);
  }
  for (const tracking of listTrackingRecords(dir)) await stopTrackingServer(tracking.record);
  const deadline = Date.now() + 15_000;
  let left = processesUsing(dir);
  while (left.length > 0 && Date.now() < deadline) {
    await sleep(250);
    left = processesUsing(dir);
  }
  for (const { pid } of left) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  rmSync(dir, { recursive: true, force: true });
  if (left.length > 0) throw new Error(`processes of the workspace were left running (killed now): ${left.map((p) => `${p.pid} ${p.command}`).join('; ')}`);
}
