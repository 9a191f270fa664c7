/** A real `mlflow server` for tests: the project's virtualenv, loopback, a temporary SQLite store. */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, openSync, closeSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const VENV_PYTHON = resolve(__dirname, '../../../.venv/bin/python');

export interface TestMlflowServer {
  uri: string;
  dir: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

/** Starts a server and resolves once `/health` answers OK (a fresh store takes several seconds). */
export async function startMlflowServer(timeoutMs = 120_000): Promise<TestMlflowServer> {
  const dir = mkdtempSync(join(tmpdir(), 'hr-mlflow-test-'));
  const port = await freePort();
  const log = openSync(join(dir, 'server.log'), 'w');
  const child = spawn(
    VENV_PYTHON,
    [
      '-m', 'mlflow', 'server',
      '--backend-store-uri', `sqlite:///${join(dir, 'mlflow.db')}`,
      '--artifacts-destination', join(dir, 'mlartifacts'),
      '--host', '127.0.0.1',
      '--port', String(port),
      '--workers', '1',
    ],
    {
      cwd: dir,
      detached: true,
      stdio: ['ignore', log, log],
      env: { ...process.env, MLFLOW_SERVER_ENABLE_JOB_EXECUTION: 'false', PYTHONUNBUFFERED: '1' },
    },
  );
  closeSync(log);
  const pid = child.pid;
  if (pid === undefined) throw new Error('mlflow server did not start');
  const killGroup = (): void => {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  process.once('exit', killGroup);
  const uri = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) {
      throw new Error(`mlflow server exited early: ${readFileSync(join(dir, 'server.log'), 'utf8').slice(-2000)}`);
    }
    try {
      const response = await fetch(`${uri}/health`, { signal: AbortSignal.timeout(2000) });
      if (response.ok && (await response.text()).trim() === 'OK') break;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) {
      killGroup();
      throw new Error('mlflow server did not answer /health in time');
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    uri,
    dir,
    child,
    async stop() {
      killGroup();
      process.removeListener('exit', killGroup);
      if (child.exitCode === null && child.signalCode === null) await new Promise((r) => child.once('exit', r));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Runs a Python snippet with the virtualenv's interpreter and MLFLOW_TRACKING_URI set; resolves with stdout. */
export function runMlflowPython(uri: string, code: string, timeoutMs = 120_000): Promise<string> {
  return new Promise((resolveOut, reject) => {
    execFile(
      VENV_PYTHON,
      ['-c', code],
      { env: { ...process.env, MLFLOW_TRACKING_URI: uri }, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error) reject(new Error(`python failed: ${error.message}\n${stderr.slice(-3000)}`));
        else resolveOut(stdout);
      },
    );
  });
}

/** The process table as `pid pgid args` rows. */
export function processTable(): Promise<Array<{ pid: number; pgid: number; args: string }>> {
  return new Promise((resolveRows, reject) => {
    execFile('ps', ['-eo', 'pid,pgid,args'], { maxBuffer: 16 * 1024 * 1024 }, (error, stdout) => {
      if (error) {
        reject(error);
        return;
      }
      const rows = stdout
        .split('\n')
        .slice(1)
        .map((line) => /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(line))
        .filter((m): m is RegExpExecArray => m !== null)
        .map((m) => ({ pid: Number(m[1]), pgid: Number(m[2]), args: m[3] ?? '' }));
      resolveRows(rows);
    });
  });
}
