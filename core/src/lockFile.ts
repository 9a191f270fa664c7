/**
 * A lock held by one process for as long as it lives: a file created exclusively that holds the
 * holder's pid. A lock whose holder is gone is taken over; one being created right now (no pid
 * in it yet) is given a moment.
 */
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

/** True while process `pid` exists and is not a zombie (one that exited and was not reaped yet). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0] !== 'Z';
  } catch {
    return true; // no procfs: the signal said it exists
  }
}

/** Takes the lock at `path`; returns a release function, or the pid of the live process holding it. */
export function acquireLockFile(path: string): { release: () => void } | { heldBy: number } {
  mkdirSync(dirname(path), { recursive: true });
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return {
        release: () => {
          try {
            if (readFileSync(path, 'utf8').trim() === String(process.pid)) rmSync(path, { force: true });
          } catch {
            // already gone
          }
        },
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      let holder = Number.NaN;
      try {
        holder = Number(readFileSync(path, 'utf8').trim());
      } catch {
        // removed meanwhile
      }
      if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && pidAlive(holder)) return { heldBy: holder };
      // A lock just created may not hold its pid yet: give its writer a moment before taking over.
      if (!Number.isInteger(holder) && existsSync(path) && Date.now() - statSync(path).mtimeMs < 2_000) {
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200);
        continue;
      }
      rmSync(path, { force: true });
    }
  }
  throw new Error(`cannot take the lock ${path}`);
}
