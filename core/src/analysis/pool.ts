import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Piscina } from 'piscina';
import type { ImportanceResult, ImportanceTask } from './importance';

export interface AnalysisPoolOptions {
  /** The worker module; default: found next to this module (see `analysisWorkerFile`). */
  workerFile?: string;
  /** An idle thread exits after this long (ms); default 30 s. */
  idleTimeoutMs?: number;
}

/**
 * Where the analysis worker is: `analysis-worker.js` beside the bundle that contains this module
 * (esbuild entry `core/src/analysis/worker.ts` -> `dist/analysis-worker.js`), else `worker.ts`
 * beside this source file (running from source with tsx, whose loader worker threads inherit).
 */
export function analysisWorkerFile(dir: string = dirname(__filename)): string {
  const candidates = [join(dir, 'analysis-worker.js'), join(dir, 'worker.ts')];
  const found = candidates.find((file) => existsSync(file));
  if (!found) throw new Error(`the analysis worker is missing: none of ${candidates.join(', ')} exists`);
  return found;
}

/**
 * One worker thread for the trials views' computations, so a study of many thousand trials never
 * blocks the extension host. Close it when the last panel closes.
 */
export class AnalysisPool {
  private readonly piscina: Piscina<ImportanceTask, ImportanceResult>;

  constructor(options: AnalysisPoolOptions = {}) {
    this.piscina = new Piscina<ImportanceTask, ImportanceResult>({
      filename: options.workerFile ?? analysisWorkerFile(),
      name: 'importances',
      minThreads: 0,
      maxThreads: 1,
      idleTimeout: options.idleTimeoutMs ?? 30_000,
    });
  }

  /** Importances of a study's finished trials (see importance.ts); an abort drops the task. */
  importances(task: ImportanceTask, signal?: AbortSignal): Promise<ImportanceResult> {
    return this.piscina.run(task, signal ? { signal } : {});
  }

  async close(): Promise<void> {
    await this.piscina.destroy();
  }
}
