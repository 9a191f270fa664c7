import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findTools } from './tools';

export interface CodeServerOptions {
  /** The folder the workbench opens. */
  folder: string;
  /** How long to wait for /healthz (ms, default 60 s). */
  startTimeoutMs?: number;
  /** Called with every line code-server prints (its own log, not the extension host's console). */
  onOutput?: (line: string) => void;
  /** Keep the temporary user-data, extensions and XDG folders (default: removed by stop()). */
  keepDirs?: boolean;
  /** User settings, over DEFAULT_SETTINGS. */
  settings?: Record<string, unknown>;
  /** Stops waiting (and code-server) when this aborts. */
  signal?: AbortSignal;
}

/**
 * Settings for a quiet, offline test window: no welcome page, no update or marketplace checks
 * (there is no network to reach), no telemetry, no AI features.
 */
export const DEFAULT_SETTINGS: Record<string, unknown> = {
  'workbench.startupEditor': 'none',
  'workbench.enableExperiments': false,
  'workbench.tips.enabled': false,
  'extensions.autoCheckUpdates': false,
  'extensions.autoUpdate': false,
  'extensions.ignoreRecommendations': true,
  'update.mode': 'none',
  'telemetry.telemetryLevel': 'off',
  'chat.disableAIFeatures': true,
  'security.workspace.trust.enabled': false,
  'git.openRepositoryInParentFolders': 'never',
};

export interface CodeServer {
  /** http://127.0.0.1:PORT */
  url: string;
  port: number;
  /** Process id of code-server, which leads its own process group. */
  pid: number;
  dirs: { root: string; userData: string; extensions: string };
  /** The last lines code-server printed. */
  output(): string[];
  /** Kills code-server's whole process group (TERM, then KILL) and removes the temporary folders. */
  stop(): Promise<void>;
}

const OUTPUT_LINES = 400;

/** Every code-server started here and not yet stopped (pid -> its stop()). */
const running = new Map<number, { stop: () => Promise<void>; root: string; keepDirs: boolean }>();

/** Last resort when the process exits with code-servers still up: kill their groups, remove their folders. */
process.on('exit', () => {
  for (const [pid, server] of running) {
    killGroup(pid, 'SIGKILL');
    if (!server.keepDirs) rmSync(server.root, { recursive: true, force: true });
  }
});

/** Stops every code-server this process started (for Ctrl+C handlers). */
export async function stopAllCodeServers(): Promise<void> {
  await Promise.allSettled([...running.values()].map((server) => server.stop()));
}

function killGroup(pid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pid, signal);
    return true;
  } catch {
    return false; // ESRCH: nothing is left in the group
  }
}

export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Starts code-server on a free loopback port with throw-away user data, extensions and XDG
 * folders, in a new session (its own process group: the extension host and helpers it starts
 * are killed with it), and waits until /healthz answers.
 */
export async function startCodeServer(options: CodeServerOptions): Promise<CodeServer> {
  const tools = findTools();
  const port = await freePort();
  const root = mkdtempSync(join(tmpdir(), 'vscode-test-'));
  const dirs = { root, userData: join(root, 'user-data'), extensions: join(root, 'extensions') };
  // Everything code-server and its helpers write (config, caches, IPC sockets in TMPDIR) stays
  // inside `root`, which stop() removes.
  const xdg = {
    XDG_CONFIG_HOME: join(root, 'config'),
    XDG_DATA_HOME: join(root, 'data'),
    XDG_CACHE_HOME: join(root, 'cache'),
    TMPDIR: join(root, 'tmp'),
  };
  for (const dir of [dirs.userData, dirs.extensions, ...Object.values(xdg)]) mkdirSync(dir, { recursive: true });
  mkdirSync(join(dirs.userData, 'User'), { recursive: true });
  writeFileSync(
    join(dirs.userData, 'User', 'settings.json'),
    JSON.stringify({ ...DEFAULT_SETTINGS, ...options.settings }, null, 2),
  );

  const args = [
    tools.codeServer,
    '--auth',
    'none',
    '--bind-addr',
    `127.0.0.1:${port}`,
    '--user-data-dir',
    dirs.userData,
    '--extensions-dir',
    dirs.extensions,
    '--disable-telemetry',
    '--disable-update-check',
    '--disable-workspace-trust',
    '--reconnection-grace-time',
    '5',
    // Without this the workbench ignores the test payload (and the run hangs).
    '--vscode-option',
    'enable-smoke-test-driver',
    options.folder,
  ];
  // detached: the child calls setsid(), so it leads a new process group.
  const child = spawn(tools.node, args, {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    // An empty gallery: no marketplace queries (there is no network to reach one).
    env: { ...process.env, ...xdg, EXTENSIONS_GALLERY: '{}' },
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error('code-server did not start');

  const lines: string[] = [];
  let exited: string | undefined;
  const collect = (chunk: Buffer): void => {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (!line) continue;
      lines.push(line);
      if (lines.length > OUTPUT_LINES) lines.shift();
      options.onOutput?.(line);
    }
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  child.on('exit', (code, signal) => {
    exited = signal ?? `exit code ${code}`;
  });

  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      killGroup(pid, 'SIGTERM');
      const deadline = Date.now() + 5_000;
      while (killGroup(pid, 0) && Date.now() < deadline) await sleep(100);
      if (killGroup(pid, 'SIGKILL')) {
        const killDeadline = Date.now() + 5_000;
        while (killGroup(pid, 0) && Date.now() < killDeadline) await sleep(100);
      }
      running.delete(pid);
      if (!options.keepDirs) rmSync(root, { recursive: true, force: true });
    })();
    return stopped;
  };
  running.set(pid, { stop, root, keepDirs: options.keepDirs ?? false });

  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + (options.startTimeoutMs ?? 60_000);
  for (;;) {
    if (options.signal?.aborted) {
      await stop();
      throw options.signal.reason;
    }
    if (exited !== undefined) {
      await stop();
      throw new Error(`code-server exited (${exited}) before it was ready:\n${lines.slice(-30).join('\n')}`);
    }
    try {
      const response = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2_000) });
      if (response.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`code-server did not answer ${url}/healthz in time:\n${lines.slice(-30).join('\n')}`);
    }
    await sleep(200);
  }

  return { url, port, pid, dirs, output: () => [...lines], stop };
}
