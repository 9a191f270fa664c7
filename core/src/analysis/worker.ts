// The piscina worker that computes importances off the extension host's thread. Bundled as its
// own entry (dist/analysis-worker.js) next to piscina's thread bootstrap (dist/worker.js); see pool.ts.
import { computeImportances, type ImportanceResult, type ImportanceTask } from './importance';

export function importances(task: ImportanceTask): ImportanceResult {
  return computeImportances(task);
}
