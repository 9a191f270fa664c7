// The integration suite's workspace: samples/*.py and the decoys, copied to a temporary folder
// (runs write .hyperopt-runner/ into it), with settings that point at the project's .venv.
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
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
        // MLflow has its own tests; here the embedded server would only cost startup time.
        'hyperoptRunner.tracking': false,
        'hyperoptRunner.serviceIdleTimeout': 30,
        ...settings,
      },
      null,
      2,
    ),
  );
  return dir;
}

/** Ends the workspace's background service (if one runs) and removes the folder. */
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
    while (pidAlive(record.pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  }
  rmSync(dir, { recursive: true, force: true });
}
