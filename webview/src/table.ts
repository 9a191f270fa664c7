/**
 * The trials table (vscode-table): sortable by any column, filtered by text, status and the
 * parallel-coordinates brushes, shown a page at a time so a study of any length costs the same
 * DOM. Rows are focusable; Enter or a click selects a trial, arrow keys move between rows.
 */
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-label/index.js';
import '@vscode-elements/elements/dist/vscode-option/index.js';
import '@vscode-elements/elements/dist/vscode-single-select/index.js';
import '@vscode-elements/elements/dist/vscode-table/index.js';
import '@vscode-elements/elements/dist/vscode-table-body/index.js';
import '@vscode-elements/elements/dist/vscode-table-cell/index.js';
import '@vscode-elements/elements/dist/vscode-table-header/index.js';
import '@vscode-elements/elements/dist/vscode-table-header-cell/index.js';
import '@vscode-elements/elements/dist/vscode-table-row/index.js';
import '@vscode-elements/elements/dist/vscode-textfield/index.js';
import type { VscodeTableRow } from '@vscode-elements/elements/dist/vscode-table-row/vscode-table-row.js';
import { formatDuration, formatNumber } from '../../core/src/analysis/shape';
import { h, setAttr, setText } from './dom';
import { compileFilter } from './filter';
import type { Model, SortDir, StatusFilter, Topic } from './model';
import type { View } from './scheduler';
import type { ParamColumn, TrialStore } from './store';
import type { Selector } from './charts/history';

export const PAGE_SIZE = 20;

interface Column {
  key: string;
  title: string;
  numeric: boolean;
  width: string;
  text(store: TrialStore, row: number): string;
  /** Sort value: a number, or a string for text columns. */
  value(store: TrialStore, row: number): number | string;
}

const STATUS_ORDER: Record<string, number> = { ok: 0, failed: 1, cancelled: 2, running: 3, queued: 4 };

function baseColumns(params: ParamColumn[]): Column[] {
  const paramColumns: Column[] = params.map((c) => ({
    key: `p:${c.axis.label}`,
    title: c.axis.label,
    numeric: c.axis.kind !== 'categorical',
    width: 'auto',
    text: (store, row) => {
      if (c.axis.kind === 'categorical') return store.paramText(c, row);
      const v = c.values[row] as number;
      return Number.isNaN(v) ? '' : formatNumber(v);
    },
    value: (store, row) => (c.axis.kind === 'categorical' ? store.paramText(c, row) : (c.values[row] as number)),
  }));
  return [
    { key: 'tid', title: 'Trial', numeric: true, width: '70px', text: (s, r) => String(s.tid[r]), value: (s, r) => s.tid[r] as number },
    { key: 'status', title: 'Status', numeric: false, width: '90px', text: (s, r) => s.outcomeOf(r), value: (s, r) => STATUS_ORDER[s.outcomeOf(r)] ?? 9 },
    {
      key: 'loss', title: 'Loss', numeric: true, width: '100px',
      text: (s, r) => (Number.isNaN(s.loss[r] as number) ? '' : formatNumber(s.loss[r] as number)),
      value: (s, r) => s.loss[r] as number,
    },
    ...paramColumns,
    { key: 'duration', title: 'Duration', numeric: true, width: '90px', text: (s, r) => (Number.isNaN(s.duration(r)) ? '' : formatDuration(s.duration(r))), value: (s, r) => s.duration(r) },
    { key: 'host', title: 'Host / slot', numeric: false, width: '110px', text: (s, r) => s.slotOf(r), value: (s, r) => s.slotOf(r) },
  ];
}

export class TableView implements View {
  readonly name = 'table';
  readonly topics: readonly Topic[] = ['trials', 'selection', 'table', 'brush'];
  readonly element: HTMLElement;
  private readonly filterField = document.createElement('vscode-textfield');
  private readonly statusSelect = document.createElement('vscode-single-select');
  private readonly table = document.createElement('vscode-table');
  private readonly header = document.createElement('vscode-table-header');
  private readonly body = document.createElement('vscode-table-body');
  private readonly count = h('span', { class: 'table-count', 'data-testid': 'table-count', role: 'status' });
  private readonly filterError = h('span', { class: 'reason', 'data-testid': 'filter-error' });
  private readonly prev = document.createElement('vscode-button');
  private readonly next = document.createElement('vscode-button');
  private readonly pageText = h('span', { class: 'page-text' });
  private columns: Column[] = [];
  private columnsFor: ParamColumn[] | undefined;
  private rowPool: VscodeTableRow[] = [];
  /** The filtered, sorted rows. */
  private visible = new Int32Array(0);
  private lastSelected: number | null = null;

  constructor(
    private readonly model: Model,
    private readonly selector: Selector,
    private readonly changed: () => void,
  ) {
    this.filterField.id = 'table-filter';
    this.filterField.placeholder = 'text, loss<0.1, lr>=1e-4, host=gpu1';
    this.filterField.label = 'Filter trials';
    this.filterField.addEventListener('input', () => {
      this.model.filter = this.filterField.value;
      this.model.page = 0;
      this.changed();
    });
    this.statusSelect.id = 'status-filter';
    this.statusSelect.label = 'Status';
    for (const value of ['all', 'ok', 'failed', 'cancelled', 'running', 'queued']) {
      const option = document.createElement('vscode-option');
      option.value = value;
      option.textContent = value === 'all' ? 'All statuses' : value;
      this.statusSelect.append(option);
    }
    this.statusSelect.addEventListener('change', () => {
      this.model.statusFilter = this.statusSelect.value as StatusFilter;
      this.model.page = 0;
      this.changed();
    });
    const filterLabel = document.createElement('vscode-label');
    filterLabel.htmlFor = 'table-filter';
    filterLabel.textContent = 'Filter';
    const statusLabel = document.createElement('vscode-label');
    statusLabel.htmlFor = 'status-filter';
    statusLabel.textContent = 'Status';

    this.table.zebra = true;
    this.table.borderedRows = true;
    this.table.setAttribute('aria-label', 'Trials');
    this.header.slot = 'header';
    this.body.slot = 'body';
    this.table.append(this.header, this.body);

    this.prev.id = 'page-prev';
    this.prev.textContent = 'Previous';
    this.prev.secondary = true;
    this.next.id = 'page-next';
    this.next.textContent = 'Next';
    this.next.secondary = true;
    this.prev.addEventListener('click', () => this.turn(-1));
    this.next.addEventListener('click', () => this.turn(1));

    this.body.addEventListener('click', (event) => {
      const row = (event.target as Element).closest('vscode-table-row');
      const tid = row?.getAttribute('data-tid');
      if (tid) this.selector.select(Number(tid));
    });
    this.body.addEventListener('keydown', (event) => this.key(event));

    this.element = h(
      'section',
      { class: 'panel wide', id: 'trials', 'aria-labelledby': 'trials-title' },
      h(
        'div',
        { class: 'panel-head table-tools' },
        h('h2', { id: 'trials-title' }, 'Trials'),
        h('div', { class: 'field grow' }, filterLabel, this.filterField),
        h('div', { class: 'field' }, statusLabel, this.statusSelect),
        this.count,
      ),
      this.filterError,
      h('div', { class: 'table-scroll' }, this.table),
      h('div', { class: 'pager' }, this.prev, this.pageText, this.next),
    );
  }

  /** The rows as shown, in order (for tests through the DOM and for the benchmark). */
  get shownCount(): number {
    return this.visible.length;
  }

  render(changed: ReadonlySet<Topic>): void {
    const store = this.model.store;
    if (this.columnsFor !== store.params || this.columns.length !== store.params.length + 5) this.buildHeader();
    if (this.filterField.value !== this.model.filter) this.filterField.value = this.model.filter;
    if (this.statusSelect.value !== this.model.statusFilter) this.statusSelect.value = this.model.statusFilter;
    if (changed.has('trials') || changed.has('table') || changed.has('brush') || this.visible.length === 0) this.compute();
    if (changed.has('selection') && this.model.selectedTid !== this.lastSelected) this.revealSelection();
    this.lastSelected = this.model.selectedTid;
    this.fill();
  }

  private buildHeader(): void {
    const store = this.model.store;
    this.columnsFor = store.params;
    this.columns = baseColumns(store.params);
    this.table.columns = this.columns.map((c) => c.width);
    // Narrow panels scroll the table sideways rather than cut every cell short.
    this.table.style.minWidth = `${this.columns.reduce((w, c) => w + (c.width === 'auto' ? 95 : parseInt(c.width, 10)), 0)}px`;
    const cells = this.columns.map((c) => {
      const cell = document.createElement('vscode-table-header-cell');
      const sort = h('button', { class: 'sort', type: 'button', 'data-key': c.key }, c.title);
      sort.addEventListener('click', () => this.sortBy(c.key));
      cell.append(sort);
      return cell;
    });
    this.header.replaceChildren(...cells);
    this.rowPool = [];
    this.body.replaceChildren();
    this.fittedCount = -1;
  }

  private sortBy(key: string): void {
    const dir: SortDir = this.model.sort.key === key && this.model.sort.dir === 'asc' ? 'desc' : 'asc';
    this.model.sort = { key, dir };
    this.model.page = 0;
    this.changed();
  }

  private compute(): void {
    const store = this.model.store;
    const { test, error } = compileFilter(this.model.filter, store);
    setText(this.filterError, error ?? '');
    const status = this.model.statusFilter;
    const mask = this.model.brushMask();
    const out: number[] = [];
    for (let row = 0; row < store.size; row++) {
      if (status !== 'all' && store.outcomeOf(row) !== status) continue;
      if (mask[row] !== 1) continue;
      if (!test(row)) continue;
      out.push(row);
    }
    const column = this.columns.find((c) => c.key === this.model.sort.key) ?? this.columns[0];
    if (column) {
      const sign = this.model.sort.dir === 'asc' ? 1 : -1;
      const keys = out.map((row) => column.value(store, row));
      const index = out.map((_, i) => i);
      index.sort((a, b) => {
        const x = keys[a] as number | string;
        const y = keys[b] as number | string;
        let c: number;
        if (typeof x === 'number' && typeof y === 'number') {
          // Rows without a value go last in either direction.
          if (Number.isNaN(x) || Number.isNaN(y)) return Number.isNaN(x) ? (Number.isNaN(y) ? 0 : 1) : -1;
          c = x - y;
        } else c = String(x).localeCompare(String(y), undefined, { numeric: true });
        return c !== 0 ? sign * c : (store.tid[out[a] as number] as number) - (store.tid[out[b] as number] as number);
      });
      this.visible = Int32Array.from(index, (i) => out[i] as number);
    } else this.visible = Int32Array.from(out);
    const pages = Math.max(1, Math.ceil(this.visible.length / PAGE_SIZE));
    if (this.model.page >= pages) this.model.page = pages - 1;
    const filtered = this.visible.length !== store.size;
    setText(this.count, filtered ? `${this.visible.length} of ${store.size} trials` : `${store.size} trials`);
    setAttr(this.table, 'data-rows', this.visible.length);
    for (const cell of this.header.children) {
      const key = cell.querySelector('button')?.getAttribute('data-key');
      const sorted = key === this.model.sort.key;
      setAttr(cell, 'aria-sort', sorted ? (this.model.sort.dir === 'asc' ? 'ascending' : 'descending') : 'none');
      setAttr(cell, 'data-sorted', sorted ? this.model.sort.dir : null);
    }
  }

  private revealSelection(): void {
    const tid = this.model.selectedTid;
    if (tid === null) return;
    const row = this.model.store.row(tid);
    const at = row === undefined ? -1 : this.visible.indexOf(row);
    if (at >= 0) this.model.page = Math.floor(at / PAGE_SIZE);
  }

  private fill(): void {
    const store = this.model.store;
    const start = this.model.page * PAGE_SIZE;
    const count = Math.max(0, Math.min(PAGE_SIZE, this.visible.length - start));
    while (this.rowPool.length < count) {
      const row = document.createElement('vscode-table-row');
      row.tabIndex = 0;
      for (let c = 0; c < this.columns.length; c++) row.append(document.createElement('vscode-table-cell'));
      this.rowPool.push(row);
    }
    const shown = this.rowPool.slice(0, count);
    if (this.body.children.length !== count) this.body.replaceChildren(...shown);
    const selected = this.model.selectedTid;
    for (let i = 0; i < count; i++) {
      const row = this.visible[start + i] as number;
      const el = shown[i] as VscodeTableRow;
      const tid = store.tid[row] as number;
      setAttr(el, 'data-tid', tid);
      setAttr(el, 'data-status', store.outcomeOf(row));
      setAttr(el, 'aria-selected', tid === selected ? 'true' : 'false');
      el.classList.toggle('selected', tid === selected);
      for (let c = 0; c < this.columns.length; c++) setText(el.children[c] as Element, (this.columns[c] as Column).text(store, row));
    }
    this.fitHeight(count);
    const pages = Math.max(1, Math.ceil(this.visible.length / PAGE_SIZE));
    setText(this.pageText, count === 0 ? 'No trials match.' : `Rows ${start + 1}–${start + count} of ${this.visible.length} · page ${this.model.page + 1} of ${pages}`);
    this.prev.disabled = this.model.page === 0;
    this.next.disabled = this.model.page >= pages - 1;
  }

  /** vscode-table scrolls inside a fixed height: make it exactly as tall as the page of rows. */
  private fitHeight(count: number): void {
    if (count === this.fittedCount) return;
    const first = this.rowPool[0];
    const rowHeight = first && count > 0 ? first.getBoundingClientRect().height : 0;
    const headerHeight = this.header.getBoundingClientRect().height;
    if (rowHeight <= 0 || headerHeight <= 0) return;
    const height = `${Math.ceil(headerHeight + rowHeight * Math.max(count, 1) + 2)}px`;
    if (this.table.style.height !== height) this.table.style.height = height;
    this.fittedCount = count;
  }

  private fittedCount = -1;

  private turn(delta: number): void {
    const pages = Math.max(1, Math.ceil(this.visible.length / PAGE_SIZE));
    const page = Math.min(pages - 1, Math.max(0, this.model.page + delta));
    if (page === this.model.page) return;
    this.model.page = page;
    this.changed();
  }

  private key(event: KeyboardEvent): void {
    const row = (event.target as Element).closest('vscode-table-row');
    if (!row) return;
    if (event.key === 'Enter' || event.key === ' ') {
      event.preventDefault();
      const tid = row.getAttribute('data-tid');
      if (tid) this.selector.select(Number(tid));
    } else if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
      event.preventDefault();
      const sibling = event.key === 'ArrowDown' ? row.nextElementSibling : row.previousElementSibling;
      if (sibling instanceof HTMLElement) sibling.focus();
    }
  }
}
