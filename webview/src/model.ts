/**
 * What the panel knows: the study from the host, the trials (columnar), and the user's view state
 * (selection, brushes, table sort/filter/page) that survives a reload through `setState`.
 */
import type {
  Capabilities,
  CapabilityName,
  Capability,
  ImportancesMessage,
  PersistedWebviewState,
  StudyHeader,
  StudyStatus,
} from '../../core/src/protocol/webview';
import { TrialStore } from './store';
import type { Palette } from './theme';

/** What changed; each view listens to some of these. */
export type Topic = 'trials' | 'status' | 'capabilities' | 'selection' | 'brush' | 'table' | 'importances' | 'theme' | 'layout' | 'tick' | 'scale' | 'continue';

export type StatusFilter = PersistedWebviewState['statusFilter'];
export type SortDir = 'asc' | 'desc';

export interface Brush {
  lo: number;
  hi: number;
}

/** The axis name of the loss in brushes and sort keys (parameters use their labels). */
export const LOSS_KEY = '\u0000loss';

export class Model {
  study: StudyHeader | undefined;
  status: StudyStatus | undefined;
  capabilities: Capabilities | undefined;
  importances: ImportancesMessage | undefined;
  store: TrialStore = new TrialStore([]);
  /** Host clock minus ours, from the last status (elapsed and time left use the host's clock). */
  clockOffset = 0;

  selectedTid: number | null = null;
  brushes = new Map<string, Brush>();
  sort: { key: string; dir: SortDir } = { key: 'tid', dir: 'asc' };
  filter = '';
  statusFilter: StatusFilter = 'all';
  page = 0;
  logLoss = false;

  constructor(public palette: Palette) {}

  now(): number {
    return Date.now() + this.clockOffset;
  }

  get ended(): boolean {
    return this.status?.state === 'ended';
  }

  /** A control's capability, with the study's state taken into account here as well. */
  capability(name: CapabilityName): Capability {
    const given = this.capabilities?.[name] ?? { enabled: false, reason: 'Waiting for the study…' };
    if (!given.enabled) return given;
    const steering = name !== 'openLogs' && name !== 'openRun';
    if (steering && this.status?.state === 'ended') return { enabled: false, reason: 'The study has ended.' };
    if (steering && this.status?.state === 'cancelling') return { enabled: false, reason: 'The study is being cancelled.' };
    if (name === 'stop' && this.status?.state === 'stopping') return { enabled: false, reason: 'The study is already stopping.' };
    return given;
  }

  persisted(): PersistedWebviewState | undefined {
    if (!this.study) return undefined;
    return {
      v: 1,
      studyId: this.study.id,
      selectedTid: this.selectedTid,
      sort: this.sort,
      filter: this.filter,
      statusFilter: this.statusFilter,
      page: this.page,
      brushes: [...this.brushes].map(([axis, b]) => ({ axis, lo: b.lo, hi: b.hi })),
      logLoss: this.logLoss,
    };
  }

  restore(state: PersistedWebviewState): void {
    this.selectedTid = state.selectedTid;
    this.sort = state.sort;
    this.filter = state.filter;
    this.statusFilter = state.statusFilter;
    this.page = state.page;
    this.brushes = new Map(state.brushes.map((b) => [b.axis, { lo: Math.min(b.lo, b.hi), hi: Math.max(b.lo, b.hi) }]));
    this.logLoss = state.logLoss;
  }

  /** Whether a row passes every brush of the parallel-coordinates chart. */
  inBrushes(row: number): boolean {
    if (this.brushes.size === 0) return true;
    const store = this.store;
    for (const [axis, b] of this.brushes) {
      let v: number;
      if (axis === LOSS_KEY) v = store.loss[row] as number;
      else {
        const column = store.params.find((c) => c.axis.label === axis);
        if (!column) continue;
        v = column.values[row] as number;
      }
      if (!(v >= b.lo && v <= b.hi)) return false;
    }
    return true;
  }

  /** Every row's brush membership at once (1 = inside), for the charts and the table. */
  brushMask(): Uint8Array {
    const store = this.store;
    const mask = new Uint8Array(store.size).fill(1);
    if (this.brushes.size === 0) return mask;
    for (const [axis, b] of this.brushes) {
      const values = axis === LOSS_KEY ? store.loss : store.params.find((c) => c.axis.label === axis)?.values;
      if (!values) continue;
      for (let i = 0; i < store.size; i++) {
        const v = values[i] as number;
        if (!(v >= b.lo && v <= b.hi)) mask[i] = 0;
      }
    }
    return mask;
  }
}
