/**
 * The trials of one study, column by column in typed arrays: about 40 bytes per trial plus 8 per
 * hyperparameter, whatever the study's length, and no per-trial objects kept. Rows are in arrival
 * order; `tid -> row` is a map. Only failed and cancelled trials keep a (short) text.
 */
import type { ParamValue } from '../../core/src/protocol/common';
import { lossToNumber } from '../../core/src/protocol/common';
import type { ParamDescriptor } from '../../core/src/protocol/driver';
import { type TrialColumns, type TrialOutcome, type TrialStateView, hostOfSlot, trialOutcome } from '../../core/src/protocol/webview';
import { type ParamAxis, axisForDescriptor, axisForUndeclared, axisPosition, compareSlots } from '../../core/src/analysis/shape';

export const OUTCOMES: readonly TrialOutcome[] = ['queued', 'running', 'ok', 'failed', 'cancelled'];
/** Outcome codes in `TrialStore.outcome` (indices into OUTCOMES). */
export const Outcome = { Queued: 0, Running: 1, Ok: 2, Failed: 3, Cancelled: 4 } as const;
const OUTCOME_CODE: Record<TrialOutcome, number> = { queued: 0, running: 1, ok: 2, failed: 3, cancelled: 4 };

/** Parameters beyond the described space get columns too, up to this many in all. */
export const MAX_PARAMS = 64;
/** Error texts are kept to this many characters (the full text is in the trial's log). */
const MAX_NOTE = 300;

export interface ParamColumn {
  axis: ParamAxis;
  options?: readonly ParamValue[];
  values: Float64Array;
}

function grow<T extends Float64Array | Int32Array | Uint8Array>(array: T, capacity: number, fill?: number): T {
  const Ctor = array.constructor as new (n: number) => T;
  const next = new Ctor(capacity);
  next.set(array);
  if (fill !== undefined) next.fill(fill, array.length);
  return next;
}

export class TrialStore {
  size = 0;
  private capacity = 0;
  tid = new Int32Array(0);
  outcome = new Uint8Array(0);
  loss = new Float64Array(0);
  startedAt = new Float64Array(0);
  endedAt = new Float64Array(0);
  slot = new Int32Array(0);
  readonly params: ParamColumn[] = [];
  readonly slots: string[] = [];
  private readonly slotIndex = new Map<string, number>();
  private readonly rowOf = new Map<number, number>();
  private readonly columnOf = new Map<string, number>();
  readonly notes = new Map<number, string>();
  /** Bumped on every change; views compare it with the version they drew. */
  version = 0;
  /** The row count `tidOrder` was sorted for; -1 once a row is added. */
  private orderVersion = -1;
  private tidOrder = new Int32Array(0);
  private sortedByTid = true;

  constructor(space: ParamDescriptor[]) {
    for (const descriptor of space) this.addColumn(axisForDescriptor(descriptor), descriptor.options);
    this.reserve(64);
  }

  private addColumn(axis: ParamAxis, options?: readonly ParamValue[]): number {
    const index = this.params.length;
    const values = new Float64Array(this.capacity).fill(Number.NaN);
    this.params.push({ axis, ...(options ? { options } : {}), values });
    this.columnOf.set(axis.label, index);
    return index;
  }

  private reserve(needed: number): void {
    if (needed <= this.capacity) return;
    const capacity = Math.max(needed, this.capacity * 2, 64);
    this.tid = grow(this.tid, capacity);
    this.outcome = grow(this.outcome, capacity);
    this.loss = grow(this.loss, capacity, Number.NaN);
    this.startedAt = grow(this.startedAt, capacity, Number.NaN);
    this.endedAt = grow(this.endedAt, capacity, Number.NaN);
    this.slot = grow(this.slot, capacity, -1);
    for (const column of this.params) column.values = grow(column.values, capacity, Number.NaN);
    this.capacity = capacity;
  }

  row(tid: number): number | undefined {
    return this.rowOf.get(tid);
  }

  /** Adds or replaces the trials of a message (columns, one index per trial). */
  upsert(c: TrialColumns): void {
    const n = c.tid.length;
    const notes = new Map<number, string>();
    for (const e of c.errors) notes.set(e.i, `${e.type}: ${e.message}`.slice(0, MAX_NOTE));
    // Map each incoming parameter column to a store column (adding columns for new labels).
    const incoming: Array<[ParamColumn, ParamValue[]]> = [];
    for (const [label, values] of Object.entries(c.params)) {
      let index = this.columnOf.get(label);
      if (index === undefined) {
        if (this.params.length >= MAX_PARAMS) continue;
        const sample = values.find((v) => v !== null) ?? null;
        index = this.addColumn(axisForUndeclared(label, sample));
      }
      incoming.push([this.params[index] as ParamColumn, values]);
    }
    const fresh = new Set(incoming.map(([column]) => column));
    const absent = this.params.filter((column) => !fresh.has(column));
    this.reserve(this.size + n);
    // Column by column: each loop does one kind of work, which keeps a study of 10,000 trials
    // arriving in a fresh page (code not yet optimised) to a few milliseconds.
    const rows = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const tid = c.tid[i] as number;
      let row = this.rowOf.get(tid);
      if (row === undefined) {
        row = this.size;
        this.size += 1;
        this.rowOf.set(tid, row);
        if (row > 0 && tid < (this.tid[row - 1] as number)) this.sortedByTid = false;
        this.tid[row] = tid;
        this.orderVersion = -1;
      }
      rows[i] = row;
    }
    const codes = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const state = c.state[i] as TrialStateView;
      const code = state === 'done' ? (c.status[i] === null || c.status[i] === undefined || c.status[i] === 'ok' ? OUTCOME_CODE.ok : OUTCOME_CODE.failed) : OUTCOME_CODE[trialOutcome({ state })];
      codes[i] = code;
      this.outcome[rows[i] as number] = code;
    }
    for (let i = 0; i < n; i++) {
      const row = rows[i] as number;
      const loss = c.loss[i];
      this.loss[row] = codes[i] !== OUTCOME_CODE.ok || loss === null || loss === undefined ? Number.NaN : typeof loss === 'number' ? loss : (lossToNumber(loss) as number);
      this.startedAt[row] = c.startedAt[i] ?? Number.NaN;
      this.endedAt[row] = c.endedAt[i] ?? Number.NaN;
    }
    let lastSlot: string | null | undefined;
    let lastId = -1;
    for (let i = 0; i < n; i++) {
      const slot = c.slot[i];
      if (slot !== lastSlot) {
        lastSlot = slot;
        lastId = slot !== null && slot !== undefined ? this.slotId(slot) : -1;
      }
      this.slot[rows[i] as number] = lastId;
    }
    for (const [column, values] of incoming) {
      const target = column.values;
      const numeric = column.axis.kind !== 'categorical';
      for (let i = 0; i < n; i++) {
        const v = values[i];
        const row = rows[i] as number;
        if (numeric && typeof v === 'number') target[row] = v;
        else target[row] = v === null || v === undefined ? Number.NaN : axisPosition(column.axis, v, column.options);
      }
    }
    for (const column of absent) for (let i = 0; i < n; i++) column.values[rows[i] as number] = Number.NaN;
    if (this.notes.size > 0) for (let i = 0; i < n; i++) this.notes.delete(rows[i] as number);
    for (let i = 0; i < n; i++) {
      const code = codes[i] as number;
      if (code !== OUTCOME_CODE.failed && code !== OUTCOME_CODE.cancelled) continue;
      const note = notes.get(i);
      const status = c.status[i];
      if (note !== undefined) this.notes.set(rows[i] as number, note);
      else if (code === OUTCOME_CODE.failed && status !== null && status !== undefined) this.notes.set(rows[i] as number, `status ${status}`.slice(0, MAX_NOTE));
    }
    this.version += 1;
  }

  private slotId(slot: string): number {
    let id = this.slotIndex.get(slot);
    if (id === undefined) {
      id = this.slots.length;
      this.slots.push(slot);
      this.slotIndex.set(slot, id);
    }
    return id;
  }

  /** Row indices in tid order: `size` of them (the buffer behind them holds more). */
  byTid(): Int32Array {
    if (this.orderVersion === this.size) return this.tidOrder.subarray(0, this.size);
    if (this.tidOrder.length < this.capacity) this.tidOrder = new Int32Array(this.capacity);
    const order = this.tidOrder.subarray(0, this.size);
    for (let i = 0; i < this.size; i++) order[i] = i;
    if (!this.sortedByTid) {
      const tid = this.tid;
      order.sort((a, b) => (tid[a] as number) - (tid[b] as number));
    }
    this.orderVersion = this.size;
    return order;
  }

  outcomeOf(row: number): TrialOutcome {
    return OUTCOMES[this.outcome[row] as number] as TrialOutcome;
  }

  hostOf(row: number): string {
    const slot = this.slot[row] as number;
    return slot >= 0 ? hostOfSlot(this.slots[slot] as string) : '';
  }

  slotOf(row: number): string {
    const slot = this.slot[row] as number;
    return slot >= 0 ? (this.slots[slot] as string) : '';
  }

  /** Slots in lane order: by host, then by number. */
  lanes(): string[] {
    return [...this.slots].sort(compareSlots);
  }

  duration(row: number): number {
    const start = this.startedAt[row] as number;
    const end = this.endedAt[row] as number;
    return Number.isNaN(start) || Number.isNaN(end) ? Number.NaN : end - start;
  }

  /** The latest end of a trial, or undefined when none has ended. */
  lastEnd(): number | undefined {
    let end = -Infinity;
    for (let row = 0; row < this.size; row++) {
      const e = this.endedAt[row] as number;
      if (e > end) end = e;
    }
    return Number.isFinite(end) ? end : undefined;
  }

  /** A parameter's value as text (categories by name). */
  paramText(column: ParamColumn, row: number): string {
    const v = column.values[row] as number;
    if (Number.isNaN(v)) return '';
    if (column.axis.kind === 'categorical') return column.axis.categories[v] ?? String(v);
    return String(v);
  }

  /** The bytes the columns take (for the memory figure in the benchmark). */
  bytes(): number {
    return this.capacity * (4 + 1 + 8 + 8 + 8 + 4 + 8 * this.params.length);
  }
}
