import { setMaxListeners } from 'node:events';
import { stat } from 'node:fs/promises';
import type { ScanCache } from './cache';
import { ScanPool } from './pool';
import type { FileScan } from './types';

export interface ScanFilesOptions {
  signal?: AbortSignal;
  /** Results of earlier scans: files whose mtime and size are unchanged are not read again. */
  cache?: ScanCache;
  /** A pool to reuse; without one a pool is started for this scan and closed after it. */
  pool?: ScanPool;
  /** Files per worker task (default 32). */
  batchSize?: number;
}

export interface ScanFilesResult {
  /** One entry per path, in the order given. */
  files: FileScan[];
  /** Files read and parsed by this scan. */
  parsed: number;
  /** Files answered from the cache. */
  cached: number;
  /** Files that could not be read (their entry has `error`). */
  failed: number;
}

/**
 * Scans Python files for hyperopt `fmin` calls on worker threads. Rejects with the abort error
 * as soon as `signal` aborts; results already cached stay cached.
 */
export async function scanFiles(paths: readonly string[], options: ScanFilesOptions = {}): Promise<ScanFilesResult> {
  const { signal, cache } = options;
  signal?.throwIfAborted();
  const files: (FileScan | undefined)[] = new Array<FileScan | undefined>(paths.length);
  const pending: number[] = [];

  if (cache) {
    const STAT_CHUNK = 256;
    for (let start = 0; start < paths.length; start += STAT_CHUNK) {
      const chunk = paths.slice(start, start + STAT_CHUNK);
      const stats = await Promise.all(chunk.map((p) => stat(p).catch(() => undefined)));
      signal?.throwIfAborted();
      stats.forEach((s, k) => {
        const index = start + k;
        const path = paths[index] as string;
        const calls = s ? cache.get(path, s.mtimeMs, s.size) : undefined;
        if (s && calls) files[index] = { path, mtimeMs: s.mtimeMs, size: s.size, calls };
        else pending.push(index);
      });
    }
  } else {
    for (let index = 0; index < paths.length; index++) pending.push(index);
  }

  if (pending.length > 0) {
    const pool = options.pool ?? new ScanPool();
    const batchSize = Math.max(1, options.batchSize ?? 32);
    // Every queued task listens to the signal: give them one of our own, tied to the caller's.
    const tasks = new AbortController();
    setMaxListeners(0, tasks.signal);
    const forward = (): void => tasks.abort(signal?.reason);
    signal?.addEventListener('abort', forward, { once: true });
    try {
      const batches: number[][] = [];
      for (let start = 0; start < pending.length; start += batchSize) batches.push(pending.slice(start, start + batchSize));
      await Promise.all(
        batches.map(async (batch) => {
          const scans = await pool.run(
            batch.map((index) => paths[index] as string),
            tasks.signal,
          );
          scans.forEach((scan, k) => {
            files[batch[k] as number] = scan;
            cache?.set(scan);
          });
        }),
      );
    } finally {
      signal?.removeEventListener('abort', forward);
      if (!options.pool) await pool.close();
    }
  }

  const done = files as FileScan[];
  const failed = done.filter((f) => f.error !== undefined).length;
  return { files: done, parsed: pending.length, cached: paths.length - pending.length, failed };
}
