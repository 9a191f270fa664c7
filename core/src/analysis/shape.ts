/**
 * Data shaping for the trials views: how each hyperparameter is put on an axis, category
 * indices for choices, best-so-far, timeline lanes, durations. Pure functions over plain arrays,
 * shared by the extension host and the webview bundle (no DOM, no Node).
 */
import type { ParamValue } from '../protocol/common';
import type { ParamDescriptor } from '../protocol/driver';
import { isCategoricalDistribution, isLogDistribution } from '../protocol/webview';

export type AxisKind = 'linear' | 'log' | 'categorical';

/** How one hyperparameter is laid on an axis; categories are the labels of a categorical axis. */
export interface ParamAxis {
  label: string;
  dist: string;
  kind: AxisKind;
  categories: string[];
}

/** The text of a category: option values as JSON-ish text (strings unquoted). */
export function categoryText(value: ParamValue): string {
  if (value === null) return 'None';
  if (typeof value === 'string') return value;
  if (typeof value === 'boolean') return value ? 'True' : 'False';
  return String(value);
}

/**
 * The axis of a declared hyperparameter: categorical for hp.choice/pchoice, log for the log
 * distributions (the view falls back to linear when a value is not positive), linear otherwise.
 */
export function axisForDescriptor(descriptor: ParamDescriptor): ParamAxis {
  if (isCategoricalDistribution(descriptor.dist)) {
    const categories = (descriptor.options ?? []).map(categoryText);
    return { label: descriptor.label, dist: descriptor.dist, kind: 'categorical', categories };
  }
  return { label: descriptor.label, dist: descriptor.dist, kind: isLogDistribution(descriptor.dist) ? 'log' : 'linear', categories: [] };
}

/** The axis of a parameter that is in the trials but not in the described space. */
export function axisForUndeclared(label: string, sample: ParamValue): ParamAxis {
  const numeric = typeof sample === 'number';
  return { label, dist: numeric ? 'unknown' : 'choice', kind: numeric ? 'linear' : 'categorical', categories: [] };
}

/**
 * The position of a value on a parameter's axis: the number itself on numeric axes, the category
 * index on categorical ones (new categories are appended to `axis.categories`), NaN when absent.
 *
 * A choice value is the option itself for scalar options and the option's index for nested
 * spaces (see the runtime's `trial_params`): an integer that matches no scalar option but
 * indexes a non-scalar (text-rendered) option maps to that option.
 */
export function axisPosition(axis: ParamAxis, value: ParamValue | undefined, options?: readonly ParamValue[]): number {
  if (value === undefined) return Number.NaN;
  if (axis.kind !== 'categorical') {
    if (typeof value === 'number') return value;
    if (typeof value === 'boolean') return value ? 1 : 0;
    return Number.NaN;
  }
  if (options) {
    for (let i = 0; i < options.length; i++) if (options[i] === value) return i;
    if (typeof value === 'number' && Number.isInteger(value) && value >= 0 && value < options.length && typeof options[value] === 'string') {
      return value;
    }
  }
  const text = categoryText(value);
  const known = axis.categories.indexOf(text);
  if (known >= 0) return known;
  axis.categories.push(text);
  return axis.categories.length - 1;
}

/** Running minimum over losses in order; NaN entries (no loss) carry the previous best. */
export function bestSoFar(losses: ArrayLike<number>, out?: Float64Array): Float64Array {
  const result = out && out.length >= losses.length ? out : new Float64Array(losses.length);
  let best = Number.NaN;
  for (let i = 0; i < losses.length; i++) {
    const loss = losses[i] as number;
    if (!Number.isNaN(loss) && (Number.isNaN(best) || loss < best)) best = loss;
    result[i] = best;
  }
  return result;
}

/** Natural order of slot ids: by host, then by the number after the last `/`. */
export function compareSlots(a: string, b: string): number {
  const ia = a.lastIndexOf('/');
  const ib = b.lastIndexOf('/');
  const ha = ia > 0 ? a.slice(0, ia) : a;
  const hb = ib > 0 ? b.slice(0, ib) : b;
  if (ha !== hb) return ha < hb ? -1 : 1;
  const na = Number(a.slice(ia + 1));
  const nb = Number(b.slice(ib + 1));
  if (Number.isFinite(na) && Number.isFinite(nb) && na !== nb) return na - nb;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** A duration for people: `850 ms`, `12.3 s`, `4 min 05 s`, `2 h 03 min`. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '–';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s < 10 ? s.toFixed(2) : s.toFixed(1)} s`;
  const total = Math.round(s);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const sec = total % 60;
  if (h > 0) return `${h} h ${String(m).padStart(2, '0')} min`;
  return `${m} min ${String(sec).padStart(2, '0')} s`;
}

/** A number for a table cell or a tick: short, but exact enough to tell trials apart. */
export function formatNumber(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (!Number.isFinite(value)) return value > 0 ? '∞' : '−∞';
  if (value === 0) return '0';
  const abs = Math.abs(value);
  if (abs >= 1e5 || abs < 1e-3) return value.toExponential(3).replace(/\.?0+e/, 'e');
  if (Number.isInteger(value)) return String(value);
  return String(Number(value.toPrecision(5)));
}

/** Seconds as a short duration people can type back: `45s`, `90m`, `2h`, `1h30m`. */
export function formatDurationInput(seconds: number): string {
  const s = Math.round(seconds);
  if (s > 0 && s % 3600 === 0) return `${s / 3600}h`;
  if (s >= 3600 && s % 60 === 0) return `${Math.floor(s / 3600)}h${(s % 3600) / 60}m`;
  if (s > 0 && s % 60 === 0) return `${s / 60}m`;
  return `${s}s`;
}

/** Tick values for a log axis: decades, or 1-2-5 steps when the range spans less than two. */
export function logTicks(min: number, max: number): number[] {
  if (!(min > 0) || !(max > min)) return [];
  const lo = Math.floor(Math.log10(min));
  const hi = Math.ceil(Math.log10(max));
  const out: number[] = [];
  const inRange = (v: number): boolean => v >= min * (1 - 1e-9) && v <= max * (1 + 1e-9);
  if (hi - lo >= 2) {
    const step = Math.max(1, Math.ceil((hi - lo) / 6));
    for (let e = lo; e <= hi; e += step) {
      const v = Number(`1e${e}`);
      if (inRange(v)) out.push(v);
    }
    return out;
  }
  for (let e = lo; e <= hi; e++) {
    for (const k of [1, 2, 5]) {
      const v = Number(`${k}e${e}`);
      if (inRange(v)) out.push(v);
    }
  }
  return out;
}

/** Parses a duration as people type it: `90`, `90s`, `5m`, `1h30m`, `2.5h` (seconds when bare). */
export function parseDuration(text: string): number | undefined {
  const trimmed = text.trim().toLowerCase();
  if (trimmed === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Number(trimmed);
  const re = /(\d+(?:\.\d+)?)\s*(hours?|h|minutes?|min|m|seconds?|sec|s)\s*/gy;
  let total = 0;
  let consumed = 0;
  let match: RegExpExecArray | null;
  while ((match = re.exec(trimmed)) !== null) {
    const n = Number(match[1]);
    const unit = match[2] ?? 's';
    total += unit.startsWith('h') ? n * 3600 : unit.startsWith('m') ? n * 60 : n;
    consumed = re.lastIndex;
  }
  return consumed === trimmed.length && consumed > 0 ? total : undefined;
}
