/**
 * The trials table's filter: words separated by spaces, all of which must match.
 *   free text       a trial whose status, slot or any parameter value contains it
 *   loss<0.1        comparisons on loss, trial (tid), duration (seconds or 90s/5m), or a parameter
 *   lr>=1e-4        (<, <=, >, >=, =, !=)
 *   host=gpu1       equality on text columns: status, host, slot, or a categorical parameter
 *   slot:gpu        `:` is "contains"
 */
import { parseDuration } from '../../core/src/analysis/shape';
import type { ParamColumn, TrialStore } from './store';

export type RowTest = (row: number) => boolean;

const COMPARISON = /^([^<>=!:]+?)(<=|>=|!=|<|>|=|:)(.*)$/;

function compareNumbers(op: string, a: number, b: number): boolean {
  if (Number.isNaN(a)) return op === '!=';
  switch (op) {
    case '<':
      return a < b;
    case '<=':
      return a <= b;
    case '>':
      return a > b;
    case '>=':
      return a >= b;
    case '!=':
      return a !== b;
    default:
      return a === b;
  }
}

function compareText(op: string, a: string, b: string): boolean {
  const x = a.toLowerCase();
  const y = b.toLowerCase();
  switch (op) {
    case ':':
      return x.includes(y);
    case '!=':
      return x !== y;
    case '=':
      return x === y;
    default:
      return false;
  }
}

/** Compiles the filter text; `error` says which word was not understood (that word is ignored). */
export function compileFilter(text: string, store: TrialStore): { test: RowTest; error?: string } {
  const tests: RowTest[] = [];
  let error: string | undefined;
  const byLabel = new Map<string, ParamColumn>(store.params.map((c) => [c.axis.label.toLowerCase(), c]));
  for (const word of text.trim().split(/\s+/).filter(Boolean)) {
    const m = COMPARISON.exec(word);
    if (m) {
      const key = (m[1] as string).toLowerCase();
      const op = m[2] as string;
      const value = m[3] as string;
      const num = Number(value);
      const numeric = value !== '' && Number.isFinite(num);
      if (key === 'loss' && numeric) {
        tests.push((row) => compareNumbers(op, store.loss[row] as number, num));
        continue;
      }
      if ((key === 'trial' || key === 'tid') && numeric) {
        tests.push((row) => compareNumbers(op, store.tid[row] as number, num));
        continue;
      }
      if (key === 'duration') {
        const seconds = parseDuration(value);
        if (seconds !== undefined) {
          tests.push((row) => compareNumbers(op, store.duration(row) / 1000, seconds));
          continue;
        }
      }
      if (key === 'status' || key === 'host' || key === 'slot') {
        const get = key === 'status' ? (row: number) => store.outcomeOf(row) : key === 'host' ? (row: number) => store.hostOf(row) : (row: number) => store.slotOf(row);
        tests.push((row) => compareText(op === '<' || op === '>' ? ':' : op, get(row), value));
        continue;
      }
      const column = byLabel.get(key);
      if (column) {
        if (column.axis.kind !== 'categorical' && numeric) tests.push((row) => compareNumbers(op, column.values[row] as number, num));
        else tests.push((row) => compareText(op === '=' || op === '!=' ? op : ':', store.paramText(column, row), value));
        continue;
      }
      error ??= `Not understood: ${word}`;
      continue;
    }
    const needle = word.toLowerCase();
    tests.push((row) => {
      if (store.outcomeOf(row).includes(needle) || store.slotOf(row).toLowerCase().includes(needle) || String(store.tid[row]) === needle) return true;
      for (const c of store.params) if (store.paramText(c, row).toLowerCase().includes(needle)) return true;
      return false;
    });
  }
  const test: RowTest = tests.length === 0 ? () => true : (row) => tests.every((t) => t(row));
  return error !== undefined ? { test, error } : { test };
}
