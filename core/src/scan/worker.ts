// The piscina worker of the workspace scan. Bundled as its own entry (dist/scan-worker.js),
// next to piscina's own thread bootstrap (dist/worker.js); see pool.ts.
import { readFileSync, statSync } from 'node:fs';
import { scanSource } from './scan-source';
import type { FileScan } from './types';

export interface ScanBatchTask {
  paths: string[];
}

export function scanBatch(task: ScanBatchTask): FileScan[] {
  return task.paths.map(scanFile);
}

/** Stat before reading: if the file changes meanwhile, the cache key is the older one and the next scan reads it again. */
export function scanFile(path: string): FileScan {
  try {
    const stat = statSync(path);
    if (!stat.isFile()) return { path, mtimeMs: stat.mtimeMs, size: stat.size, calls: [], error: 'not a regular file' };
    const text = readFileSync(path, 'utf8');
    return { path, mtimeMs: stat.mtimeMs, size: stat.size, calls: scanSource(text) };
  } catch (error) {
    return { path, mtimeMs: 0, size: 0, calls: [], error: error instanceof Error ? error.message : String(error) };
  }
}
