/**
 * Where the workspace's fmin calls are: every Python file scanned on worker threads (piscina, off
 * the extension host thread), again on save, with a cache keyed by mtime and size that survives
 * reloads. An editor with unsaved changes is scanned from its text directly.
 */
import type * as vscode from 'vscode';
import { Emitter } from '../../core/src/events';
import { ScanCache } from '../../core/src/scan/cache';
import { ScanPool } from '../../core/src/scan/pool';
import { scanFiles } from '../../core/src/scan/scan-files';
import { scanSource } from '../../core/src/scan/scan-source';
import type { FminCall } from '../../core/src/scan/types';
import { traceInfo, traceWarn } from './log';
import { workspace } from './host/workspace';

const EXCLUDE = '{**/node_modules/**,**/.venv/**,**/venv/**,**/.hyperopt-runner/**,**/.git/**,**/site-packages/**,**/__pycache__/**}';
const CACHE_KEY = 'hyperoptRunner.scanCache';
const MAX_FILES = 20_000;

export class ScanIndex implements vscode.Disposable {
  readonly changed = new Emitter<{ path?: string }>();
  private readonly calls = new Map<string, FminCall[]>();
  private readonly seen = new Set<string>();
  /** Files the scan could not parse (a syntax error): whether they call fmin is not known. */
  private readonly unparsed = new Set<string>();
  private readonly cache: ScanCache;
  private pool: ScanPool | undefined;
  private readonly abort = new AbortController();
  private scanned: Promise<void> | undefined;
  private readonly disposables: vscode.Disposable[] = [];

  constructor(private readonly state: vscode.Memento) {
    this.cache = ScanCache.fromJSON(state.get(CACHE_KEY));
    this.disposables.push(
      workspace.onDidSaveTextDocument((doc) => {
        if (doc.languageId === 'python' && doc.uri.scheme === 'file') void this.scanPaths([doc.uri.fsPath]);
      }),
    );
  }

  /** Scans the workspace once (later calls wait for that scan). */
  scanWorkspace(): Promise<void> {
    this.scanned ??= (async () => {
      const started = Date.now();
      const uris = await workspace.findFiles('**/*.py', EXCLUDE, MAX_FILES);
      const result = await this.scanPaths(uris.filter((u) => u.scheme === 'file').map((u) => u.fsPath));
      traceInfo(`scanned ${uris.length} Python files in ${Date.now() - started} ms (${result?.parsed ?? 0} parsed, ${result?.cached ?? 0} cached); ${this.fileCount()} call fmin`);
    })();
    return this.scanned;
  }

  private async scanPaths(paths: string[]): Promise<{ parsed: number; cached: number } | undefined> {
    if (paths.length === 0 || this.abort.signal.aborted) return undefined;
    this.pool ??= new ScanPool({ maxThreads: 1 });
    try {
      const result = await scanFiles(paths, { cache: this.cache, pool: this.pool, signal: this.abort.signal });
      for (const file of result.files) {
        this.seen.add(file.path);
        if (file.error !== undefined) this.unparsed.add(file.path);
        else this.unparsed.delete(file.path);
        if (file.error !== undefined || file.calls.length === 0) this.calls.delete(file.path);
        else this.calls.set(file.path, file.calls);
      }
      void this.state.update(CACHE_KEY, this.cache.toJSON());
      this.changed.emit(paths.length === 1 ? { path: paths[0] } : {});
      return { parsed: result.parsed, cached: result.cached };
    } catch (error) {
      if (!this.abort.signal.aborted) traceWarn(`scanning for fmin calls failed: ${String(error)}`);
      return undefined;
    }
  }

  /** The calls in a document: its text when it has unsaved changes, else the scanned file. */
  async callsIn(document: vscode.TextDocument): Promise<FminCall[]> {
    if (document.isDirty || document.uri.scheme !== 'file') return document.getText().includes('fmin') ? scanSource(document.getText()) : [];
    const path = document.uri.fsPath;
    if (!this.seen.has(path)) await this.scanPaths([path]);
    return this.calls.get(path) ?? [];
  }

  /** The file was parsed and calls no fmin (a file that does not parse is not known to lack one). */
  async knownWithoutFmin(path: string): Promise<boolean> {
    if (!this.seen.has(path)) await this.scanPaths([path]);
    return this.seen.has(path) && !this.unparsed.has(path) && !this.calls.has(path);
  }

  fileCount(): number {
    return this.calls.size;
  }

  /** Files with fmin calls (for tests and the status of the scan). */
  files(): string[] {
    return [...this.calls.keys()].sort();
  }

  dispose(): void {
    this.abort.abort();
    void this.pool?.close();
    for (const d of this.disposables) d.dispose();
  }
}
