import { z } from 'zod';
import type { FileScan, FminCall } from './types';

/** Bumped whenever the scanner may find something else in the same text: old caches are dropped. */
export const SCANNER_VERSION = 1;

const Call = z.object({
  line: z.number(),
  column: z.number(),
  endLine: z.number(),
  endColumn: z.number(),
  from: z.number(),
  to: z.number(),
  callee: z.string(),
  inMainGuard: z.boolean(),
});
const Serialized = z.object({
  version: z.literal(SCANNER_VERSION),
  entries: z.array(z.tuple([z.string(), z.number(), z.number(), z.array(Call)])),
});
export type SerializedScanCache = z.infer<typeof Serialized>;

interface Entry {
  mtimeMs: number;
  size: number;
  calls: FminCall[];
}

/**
 * Scan results keyed by path, valid while the file keeps its modification time and size.
 * Text that is not on disk yet (an editor with unsaved changes) is scanned with `scanSource`
 * directly, not through the cache.
 */
export class ScanCache {
  private readonly entries = new Map<string, Entry>();

  get size(): number {
    return this.entries.size;
  }

  get(path: string, mtimeMs: number, size: number): FminCall[] | undefined {
    const entry = this.entries.get(path);
    return entry && entry.mtimeMs === mtimeMs && entry.size === size ? entry.calls : undefined;
  }

  set(scan: FileScan): void {
    if (scan.error !== undefined) this.entries.delete(scan.path);
    else this.entries.set(scan.path, { mtimeMs: scan.mtimeMs, size: scan.size, calls: scan.calls });
  }

  delete(path: string): void {
    this.entries.delete(path);
  }

  /** Forgets every path not in `keep` (files deleted or no longer part of the workspace). */
  retain(keep: Iterable<string>): void {
    const wanted = new Set(keep);
    for (const path of this.entries.keys()) if (!wanted.has(path)) this.entries.delete(path);
  }

  clear(): void {
    this.entries.clear();
  }

  toJSON(): SerializedScanCache {
    return {
      version: SCANNER_VERSION,
      entries: [...this.entries].map(([path, e]) => [path, e.mtimeMs, e.size, e.calls]),
    };
  }

  /** A cache from `toJSON()` output; anything unreadable or from another scanner version gives an empty cache. */
  static fromJSON(data: unknown): ScanCache {
    const cache = new ScanCache();
    const parsed = Serialized.safeParse(data);
    if (parsed.success) {
      for (const [path, mtimeMs, size, calls] of parsed.data.entries) cache.entries.set(path, { mtimeMs, size, calls });
    }
    return cache;
  }
}
