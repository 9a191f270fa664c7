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

/**
 * Ends the process group led by `child` (started with `detached: true`). Sends TERM, waits for
 * the leader to exit or the grace to run out, then KILLs the group so no descendant survives.
 */
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
  if (!exited) {
    signalGroup(pid, 'SIGTERM');
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, graceMs);
      child.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
  signalGroup(pid, 'SIGKILL');
}
