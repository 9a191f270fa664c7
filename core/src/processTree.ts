/** Killing a whole process group (POSIX) or process tree (Windows), TERM first and KILL after a grace. */
import { spawn, type ChildProcess } from 'node:child_process';

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: the group is already gone.
  }
}

/** True while any process of the group exists. */
export function groupAlive(pid: number): boolean {
  if (process.platform === 'win32') return false;
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The leader of a process group, whoever reaps it (Node for a spawned child, the fork server for a forked one). */
export interface GroupLeader {
  readonly pid: number;
  /** True once the leader has exited: the group is then only KILLed, for what it left behind. */
  readonly exited: boolean;
  /** Resolves when the leader exits. */
  readonly exit: Promise<unknown>;
}

/**
 * Ends a process group (POSIX): sends TERM, waits for the leader to exit or the grace to run
 * out, then KILLs the group so no descendant survives.
 */
export async function killGroup(leader: GroupLeader, graceMs = 2000): Promise<void> {
  if (!leader.exited) {
    signalGroup(leader.pid, 'SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([leader.exit, new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)))]);
    clearTimeout(timer);
  }
  signalGroup(leader.pid, 'SIGKILL');
}

/** Ends the process group led by `child` (started with `detached: true`), as `killGroup` does. */
export async function killProcessGroup(child: ChildProcess, graceMs = 2000): Promise<void> {
  const pid = child.pid;
  if (pid === undefined) return;
  if (process.platform === 'win32') {
    await new Promise<void>((resolve) => {
      const killer = spawn('taskkill', ['/pid', String(pid), '/T', '/F'], { stdio: 'ignore' });
      killer.on('exit', () => resolve());
      killer.on('error', () => resolve());
    });
    return;
  }
  const exited = child.exitCode !== null || child.signalCode !== null;
  const exit = exited ? Promise.resolve() : new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await killGroup({ pid, exited, exit }, graceMs);
}
