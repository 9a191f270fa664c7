/** Per-trial output files, created only for trials that printed something. */
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export function trialLogPath(journalDir: string, study: string, tid: number): string {
  return join(journalDir, `${study}.logs`, `trial-${tid}.log`);
}

export function driverLogPath(journalDir: string, runId: string): string {
  return join(journalDir, 'runs', `${runId}.log`);
}

export class LogFiles {
  private readonly open = new Map<string, number>();
  /** Files that could not be written: what comes for them is dropped, the fault said once. */
  private readonly failed = new Set<string>();

  /** `onError` hears of the first failure of each file (a full disk, say); output is never worth a crash. */
  constructor(private readonly onError: (path: string, error: unknown) => void) {}

  append(path: string, text: string): void {
    if (this.failed.has(path)) return;
    try {
      let fd = this.open.get(path);
      if (fd === undefined) {
        mkdirSync(join(path, '..'), { recursive: true });
        fd = openSync(path, 'a', 0o600);
        this.open.set(path, fd);
      }
      writeSync(fd, text);
    } catch (error) {
      this.failed.add(path);
      this.close(path);
      this.onError(path, error);
    }
  }

  /** Closes a finished trial's file so long studies do not hold thousands of descriptors. */
  close(path: string): void {
    const fd = this.open.get(path);
    this.open.delete(path);
    if (fd !== undefined) closeQuietly(fd);
  }

  closeAll(): void {
    for (const fd of this.open.values()) closeQuietly(fd);
    this.open.clear();
  }
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // a file system gone bad fails the close too; the write already said so
  }
}
