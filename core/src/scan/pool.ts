import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { Piscina } from 'piscina';
import type { FileScan } from './types';
import type { ScanBatchTask } from './worker';

export interface ScanPoolOptions {
  /** Worker threads; default: one less than the cores, at least 1, at most 4. */
  maxThreads?: number;
  /** The worker module; default: found next to this module (see `scanWorkerFile`). */
  workerFile?: string;
  /** An idle thread exits after this long (ms); default 10 s. */
  idleTimeoutMs?: number;
}

/**
 * Where the scan worker is: `scan-worker.js` beside the bundle that contains this module
 * (esbuild entry `core/src/scan/worker.ts` -> `dist/scan-worker.js`), else `worker.ts` beside
 * this source file (running from source with tsx, whose loader the worker threads inherit).
 *
 * When piscina itself is bundled, it starts each thread from `worker.js` in the bundle's folder:
 * `node_modules/piscina/dist/worker.js` must be bundled to `dist/worker.js` as well.
 */
export function scanWorkerFile(dir: string = dirname(__filename)): string {
  const candidates = [join(dir, 'scan-worker.js'), join(dir, 'worker.ts')];
  const found = candidates.find((file) => existsSync(file));
  if (!found) throw new Error(`the scan worker is missing: none of ${candidates.join(', ')} exists`);
  return found;
}

export function defaultScanThreads(): number {
  return Math.max(1, Math.min(4, availableParallelism() - 1));
}

/** Worker threads that scan files; one pool can serve many scans. Close it when done. */
export class ScanPool {
  private readonly piscina: Piscina<ScanBatchTask, FileScan[]>;

  constructor(options: ScanPoolOptions = {}) {
    const maxThreads = options.maxThreads ?? defaultScanThreads();
    this.piscina = new Piscina<ScanBatchTask, FileScan[]>({
      filename: options.workerFile ?? scanWorkerFile(),
      name: 'scanBatch',
      minThreads: 0,
      maxThreads,
      idleTimeout: options.idleTimeoutMs ?? 10_000,
    });
  }

  get threads(): number {
    return this.piscina.maxThreads;
  }

  /** Scans the files in one worker task. An abort ends the task (and its thread) at once. */
  run(paths: string[], signal?: AbortSignal): Promise<FileScan[]> {
    return this.piscina.run({ paths }, signal ? { signal } : {});
  }

  async close(): Promise<void> {
    await this.piscina.destroy();
  }
}
