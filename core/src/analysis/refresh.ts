/**
 * Keeps a panel's importances fresh as trials finish without flooding the worker: at most one
 * computation at a time, at most one every `minIntervalMs`, always over the latest trials.
 */
import type { ImportancesMessage } from '../protocol/webview';
import type { ImportanceResult, ImportanceTask } from './importance';

export function importancesMessage(result: ImportanceResult): ImportancesMessage {
  return {
    type: 'importances',
    method: result.method,
    trials: result.trials,
    items: result.items,
    ...(result.note !== undefined ? { note: result.note } : {}),
  };
}

export interface ImportanceRefresherOptions {
  /** Computes off the host's thread, typically `AnalysisPool.importances`. */
  compute(task: ImportanceTask, signal: AbortSignal): Promise<ImportanceResult>;
  send(message: ImportancesMessage): void;
  /** Default 2 s. */
  minIntervalMs?: number;
  onError?(error: unknown): void;
}

export class ImportanceRefresher {
  private pending: (() => ImportanceTask) | undefined;
  private running = false;
  private lastStart = -Infinity;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly abort = new AbortController();

  constructor(private readonly options: ImportanceRefresherOptions) {}

  /** Asks for new figures; `task` is read when the computation starts (so it sees the latest trials). */
  request(task: () => ImportanceTask): void {
    if (this.abort.signal.aborted) return;
    this.pending = task;
    this.kick();
  }

  /** Stops: a computation in progress is abandoned and nothing more is sent. */
  dispose(): void {
    this.abort.abort();
    this.pending = undefined;
    if (this.timer) clearTimeout(this.timer);
  }

  private kick(): void {
    if (this.running || this.timer || !this.pending) return;
    const wait = this.lastStart + (this.options.minIntervalMs ?? 2_000) - Date.now();
    if (wait > 0) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.kick();
      }, wait);
      return;
    }
    const task = this.pending();
    this.pending = undefined;
    this.running = true;
    this.lastStart = Date.now();
    this.options
      .compute(task, this.abort.signal)
      .then((result) => {
        if (!this.abort.signal.aborted) this.options.send(importancesMessage(result));
      })
      .catch((error: unknown) => {
        if (!this.abort.signal.aborted) this.options.onError?.(error);
      })
      .finally(() => {
        this.running = false;
        this.kick();
      });
  }
}
