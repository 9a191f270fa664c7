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

  append(path: string, text: string): void {
    let fd = this.open.get(path);
    if (fd === undefined) {
      mkdirSync(join(path, '..'), { recursive: true });
      fd = openSync(path, 'a', 0o600);
      this.open.set(path, fd);
    }
    writeSync(fd, text);
  }

  /** Closes a finished trial's file so long studies do not hold thousands of descriptors. */
  close(path: string): void {
    const fd = this.open.get(path);
    if (fd !== undefined) closeSync(fd);
    this.open.delete(path);
  }

  closeAll(): void {
    for (const fd of this.open.values()) closeSync(fd);
    this.open.clear();
  }
}
