/**
 * Extension host <-> trials webview channel (VS Code's `postMessage` in both directions).
 *
 * Defined once here and imported by both sides: the extension host (Node) and the webview's
 * browser bundle (webview/src). No `vscode` and no DOM in this module.
 *
 * Handshake: the webview installs its message listener, then sends `ready`; the host holds every
 * message until then and answers `ready` with `init` (the whole study so far). After that the host
 * sends `trials` (upserts by tid), `state`, `importances` and `select` as they change. Requests
 * from the webview that change the study (`control`) carry an `id` that the host's `reply` echoes.
 * Each side validates what it receives and drops anything that does not parse (the webview
 * reports what it dropped with `rejected`, the host logs what it dropped).
 *
 * The host's side, all vscode-free:
 *  - the page: `renderWebviewHtml` and `createNonce` (./webviewHtml);
 *  - every message from the webview: `parseWebviewToHost`, then `applyControl` (../analysis/control)
 *    for `control`, answered with a `reply` carrying the request's id;
 *  - the study: `StudyViewModel` (../analysis/studyView) fed with engine events, a journal or MLflow
 *    rows, which makes `init`, `trials` (`takeUpdates`, at most a few times a second) and `state`;
 *    `capabilitiesFor` says which controls apply and why not;
 *  - importances: `ImportanceRefresher` (../analysis/refresh) over `AnalysisPool.importances`
 *    (../analysis/pool), a worker thread running `computeImportances` (PED-ANOVA);
 *  - after a window reload, the panel serializer gets a `PersistedWebviewState` whose `studyId`
 *    says which study to show again.
 */
import * as z from 'zod';
import { Loss, ParamValue } from './common';
import { ParamDescriptor } from './driver';

export const WEBVIEW_PROTOCOL_VERSION = 1;

const MAX_TEXT = 4_000;
const MAX_NAME = 500;
const Text = z.string().max(MAX_TEXT);
const Name = z.string().max(MAX_NAME);
const Epoch = z.number().nonnegative();
const Tid = z.number().int().nonnegative();
/** Longest timeout the controls accept: one year, in seconds. */
export const MAX_TIMEOUT_SECONDS = 366 * 24 * 3600;
export const MAX_PARALLELISM = 4096;
const Seconds = z.number().positive().max(MAX_TIMEOUT_SECONDS);

// ---- shared shapes -----------------------------------------------------------------------------

export const TrialStateView = z.enum(['queued', 'running', 'done', 'error', 'cancel']);
export type TrialStateView = z.infer<typeof TrialStateView>;

/** One trial as the views show it (the host's model; on the wire, trials travel as `TrialColumns`). */
export const TrialRow = z.object({
  tid: Tid,
  state: TrialStateView,
  /** The active hyperparameters' values (a parameter of an unchosen hp.choice branch is absent). */
  params: z.record(Name, ParamValue),
  /** The objective's loss (only for `done`); non-finite values spelled out as in the journal. */
  loss: Loss.optional(),
  /** hyperopt's result status (`ok`, `fail`) for `done` trials. */
  status: Name.optional(),
  /** The slot that ran (or runs) it, for example `local/3` or `gpu1/0`; its host is `hostOfSlot(slot)`. */
  slot: Name.optional(),
  startedAt: Epoch.optional(),
  endedAt: Epoch.optional(),
  attempt: z.number().int().nonnegative().optional(),
  /** The exception of a failed trial, or why it was cancelled (message cut to a few KB by the host). */
  error: z.object({ type: Name, message: Text }).optional(),
  /** The trial's MLflow run, when known. */
  runId: Name.optional(),
});
export type TrialRow = z.infer<typeof TrialRow>;

// Trials travel column by column: a study of 10,000 trials is a dozen arrays rather than 10,000
// objects, which VS Code's message passing clones and the webview checks several times faster.
// The columns are checked by hand with plain loops (`trialColumnsProblem`): through zod, the
// `init` of a large study cost the panel tens of milliseconds before its first paint. zod keeps
// the small envelope around them.

/** At most this many trials in one message. */
export const MAX_TRIALS_PER_MESSAGE = 1_000_000;

/** A study's trials on the wire: one array per field, index i of each is trial i. */
export interface TrialColumns {
  tid: number[];
  state: TrialStateView[];
  /** null: no loss. */
  loss: Loss[];
  status: Array<string | null>;
  slot: Array<string | null>;
  startedAt: Array<number | null>;
  endedAt: Array<number | null>;
  attempt: Array<number | null>;
  /** One array per hyperparameter; null where the trial has no value for it (inactive, or None). */
  params: Record<string, ParamValue[]>;
  /** Only the trials that have one, by index into the arrays. */
  errors: Array<{ i: number; type: string; message: string }>;
  runIds: Array<{ i: number; runId: string }>;
}

export interface ColumnsProblem {
  path: string[];
  message: string;
}

// What one entry of each column may be. `v % 1 === 0` is true only for finite integers and
// `v - v === 0` only for finite numbers (NaN and the infinities give NaN).
const STATE_NAMES: ReadonlySet<unknown> = new Set(TrialStateView.options);
const isTid = (v: unknown): boolean => typeof v === 'number' && v % 1 === 0 && v >= 0;
const isState = (v: unknown): boolean => STATE_NAMES.has(v);
const isLoss = (v: unknown): boolean => v === null || (typeof v === 'number' ? v - v === 0 : v === 'NaN' || v === 'Infinity' || v === '-Infinity');
const isName = (v: unknown): boolean => typeof v === 'string' && v.length <= MAX_NAME;
const isText = (v: unknown): boolean => typeof v === 'string' && v.length <= MAX_TEXT;
const isNameOrNull = (v: unknown): boolean => v === null || (typeof v === 'string' && v.length <= MAX_NAME);
const isEpochOrNull = (v: unknown): boolean => v === null || (typeof v === 'number' && v - v === 0 && v >= 0);
const isCountOrNull = (v: unknown): boolean => v === null || (typeof v === 'number' && v % 1 === 0 && v >= 0);
const isParamValue = (v: unknown): boolean =>
  v === null || typeof v === 'boolean' || (typeof v === 'number' ? v - v === 0 : typeof v === 'string' && v.length <= MAX_TEXT);

const COLUMNS: ReadonlyArray<[keyof TrialColumns, string, (v: unknown) => boolean]> = [
  ['tid', 'trial ids', isTid],
  ['state', 'trial states', isState],
  ['loss', 'losses', isLoss],
  ['status', 'statuses', isNameOrNull],
  ['slot', 'slots', isNameOrNull],
  ['startedAt', 'times', isEpochOrNull],
  ['endedAt', 'times', isEpochOrNull],
  ['attempt', 'attempts', isCountOrNull],
];

/**
 * The first trial with an entry that is not of its column's kind, or -1. One pass over the
 * trials, all columns at once: a single loop gets hot (and optimised) early, where a loop per
 * column would start cold a dozen times, which in a fresh page costs more than the checks.
 */
function firstBadTrial(c: TrialColumns, params: readonly unknown[][], n: number): number {
  const { tid, state, loss, status, slot, startedAt, endedAt, attempt } = c;
  const p = params.length;
  for (let i = 0; i < n; i++) {
    if (!isTid(tid[i]) || !isState(state[i]) || !isLoss(loss[i]) || !isNameOrNull(status[i]) || !isNameOrNull(slot[i])) return i;
    if (!isEpochOrNull(startedAt[i]) || !isEpochOrNull(endedAt[i]) || !isCountOrNull(attempt[i])) return i;
    for (let k = 0; k < p; k++) if (!isParamValue((params[k] as unknown[])[i])) return i;
  }
  return -1;
}

/**
 * Why `value` is not a `TrialColumns`, or undefined when it is: every column an array of the
 * same length with entries of its kind, the parameters a record of such arrays, errors and run
 * ids pointing at trials in the message.
 */
export function trialColumnsProblem(value: unknown): ColumnsProblem | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { path: [], message: 'expected trial columns (an object)' };
  const c = value as Record<string, unknown>;
  for (const [name, what] of COLUMNS) {
    const column = c[name];
    if (!Array.isArray(column) || column.length > MAX_TRIALS_PER_MESSAGE) return { path: [name], message: `expected an array of ${what}` };
  }
  const n = (c.tid as unknown[]).length;
  for (const [name] of COLUMNS) {
    const length = (c[name] as unknown[]).length;
    if (length !== n) return { path: [name], message: `has ${length} entries for ${n} trials` };
  }
  const params = c.params;
  if (typeof params !== 'object' || params === null || Array.isArray(params)) return { path: ['params'], message: 'expected a record of parameter columns' };
  const paramColumns: unknown[][] = [];
  for (const [label, values] of Object.entries(params)) {
    if (label.length > MAX_NAME) return { path: ['params'], message: `a parameter name is longer than ${MAX_NAME} characters` };
    if (!Array.isArray(values)) return { path: ['params', label], message: 'expected an array of parameter values' };
    if (values.length !== n) return { path: ['params', label], message: `has ${values.length} entries for ${n} trials` };
    paramColumns.push(values);
  }
  const at = firstBadTrial(value as TrialColumns, paramColumns, n);
  if (at >= 0) {
    // Which column: the slow way, for this one trial.
    for (const [name, what, ok] of COLUMNS) if (!ok((c[name] as unknown[])[at])) return { path: [name], message: `expected an array of ${what} (entry ${at} is not)` };
    for (const [label, values] of Object.entries(params)) {
      if (!isParamValue((values as unknown[])[at])) return { path: ['params', label], message: `expected an array of parameter values (entry ${at} is not)` };
    }
  }
  const indexed: Array<['errors' | 'runIds', (entry: Record<string, unknown>) => boolean]> = [
    ['errors', (e) => isName(e.type) && isText(e.message)],
    ['runIds', (e) => isName(e.runId)],
  ];
  for (const [name, fields] of indexed) {
    const list = c[name];
    if (!Array.isArray(list) || list.length > MAX_TRIALS_PER_MESSAGE) return { path: [name], message: 'expected an array' };
    for (let k = 0; k < list.length; k++) {
      const entry: unknown = list[k];
      if (typeof entry !== 'object' || entry === null || !isTid((entry as { i?: unknown }).i) || !fields(entry as Record<string, unknown>)) {
        return { path: [name, String(k)], message: name === 'errors' ? 'expected { i, type, message }' : 'expected { i, runId }' };
      }
      if ((entry as { i: number }).i >= n) return { path: [name], message: 'index out of range' };
    }
  }
  return undefined;
}

/** The columns inside a zod message: the check is `trialColumnsProblem`, zod only reports it. */
export const TrialColumns = z.custom<TrialColumns>().superRefine((value, ctx) => {
  const problem = trialColumnsProblem(value);
  if (problem) ctx.addIssue({ code: 'custom', path: problem.path, message: problem.message });
});

/** Rows to columns, for the wire. */
export function encodeTrials(rows: readonly TrialRow[]): TrialColumns {
  const n = rows.length;
  const c: TrialColumns = {
    tid: new Array<number>(n), state: new Array<TrialStateView>(n), loss: new Array<Loss>(n), status: new Array<string | null>(n),
    slot: new Array<string | null>(n), startedAt: new Array<number | null>(n), endedAt: new Array<number | null>(n),
    attempt: new Array<number | null>(n), params: {}, errors: [], runIds: [],
  };
  for (let i = 0; i < n; i++) {
    const r = rows[i] as TrialRow;
    c.tid[i] = r.tid;
    c.state[i] = r.state;
    c.loss[i] = r.loss ?? null;
    c.status[i] = r.status ?? null;
    c.slot[i] = r.slot ?? null;
    c.startedAt[i] = r.startedAt ?? null;
    c.endedAt[i] = r.endedAt ?? null;
    c.attempt[i] = r.attempt ?? null;
    for (const [label, value] of Object.entries(r.params)) {
      let column = c.params[label];
      if (!column) {
        column = new Array<ParamValue>(n).fill(null);
        c.params[label] = column;
      }
      column[i] = value;
    }
    if (r.error) c.errors.push({ i, type: r.error.type, message: r.error.message });
    if (r.runId) c.runIds.push({ i, runId: r.runId });
  }
  return c;
}

/** Columns back to rows (a parameter that is null in a trial is left out of its params). */
export function decodeTrials(c: TrialColumns): TrialRow[] {
  const rows: TrialRow[] = [];
  const labels = Object.keys(c.params);
  for (let i = 0; i < c.tid.length; i++) {
    const params: Record<string, ParamValue> = {};
    for (const label of labels) {
      const v = (c.params[label] as ParamValue[])[i];
      if (v !== null && v !== undefined) params[label] = v;
    }
    const row: TrialRow = { tid: c.tid[i] as number, state: c.state[i] as TrialStateView, params };
    const loss = c.loss[i];
    if (loss !== null && loss !== undefined) row.loss = loss;
    const optional = { status: c.status[i], slot: c.slot[i], startedAt: c.startedAt[i], endedAt: c.endedAt[i], attempt: c.attempt[i] };
    for (const [key, value] of Object.entries(optional)) if (value !== null && value !== undefined) Object.assign(row, { [key]: value });
    rows.push(row);
  }
  for (const e of c.errors) {
    const row = rows[e.i];
    if (row) row.error = { type: e.type, message: e.message };
  }
  for (const r of c.runIds) {
    const row = rows[r.i];
    if (row) row.runId = r.runId;
  }
  return rows;
}

export const StudyStateView = z.enum(['running', 'stopping', 'cancelling', 'ended']);
export type StudyStateView = z.infer<typeof StudyStateView>;

/** The live settings of a study (the coordinator's `StudySettings`). */
export const StudySettingsView = z.object({
  /** Study timeout in seconds from the study's start, or null. */
  timeout: z.number().nonnegative().nullable(),
  /** Epoch ms at which running trials are cancelled, or null. */
  deadline: Epoch.nullable(),
  parallelism: z.number().int().positive(),
  lossThreshold: z.number().nullable(),
  noProgressTrials: z.number().int().positive().nullable(),
  trialTimeout: z.number().nonnegative().nullable(),
});
export type StudySettingsView = z.infer<typeof StudySettingsView>;

/** Counts as `countTrials` in the journal module makes them (failed = error or status != ok). */
export const TrialCounts = z.object({
  total: z.number().int().nonnegative(),
  done: z.number().int().nonnegative(),
  ok: z.number().int().nonnegative(),
  failed: z.number().int().nonnegative(),
  cancelled: z.number().int().nonnegative(),
  running: z.number().int().nonnegative(),
  queued: z.number().int().nonnegative(),
});
export type TrialCounts = z.infer<typeof TrialCounts>;

export const StudyStatus = z.object({
  state: StudyStateView,
  /** Why it stopped or ended (an EndReason such as `timeout`, or `interrupted`). */
  reason: Name.optional(),
  message: Text.optional(),
  counts: TrialCounts,
  best: z.object({ tid: Tid, loss: z.number() }).nullable(),
  settings: StudySettingsView,
  startedAt: Epoch,
  endedAt: Epoch.nullable(),
  /** The host's clock when it sent this (elapsed and time left are counted from it). */
  now: Epoch,
});
export type StudyStatus = z.infer<typeof StudyStatus>;

/** Whether a control applies, and if not, the reason shown next to it. */
export const Capability = z.object({ enabled: z.boolean(), reason: Name.optional() });
export type Capability = z.infer<typeof Capability>;

export const Capabilities = z.object({
  stop: Capability,
  cancel: Capability,
  timeout: Capability,
  policy: Capability,
  parallelism: Capability,
  openLogs: Capability,
  openRun: Capability,
});
export type Capabilities = z.infer<typeof Capabilities>;
export type CapabilityName = keyof Capabilities;

export const StudySource = z.enum(['live', 'journal', 'mlflow']);
export type StudySource = z.infer<typeof StudySource>;

export const StudyHeader = z.object({
  id: Name,
  /** Shown as the panel's heading, for example `train.py:42 (fmin #1)`. */
  title: Name,
  runId: Name.nullable(),
  script: Text.nullable(),
  algo: Name.nullable(),
  maxEvals: z.number().int().nonnegative().nullable(),
  executors: z.array(Name).max(256),
  source: StudySource,
  space: z.array(ParamDescriptor).max(1_000),
  createdAt: Epoch,
});
export type StudyHeader = z.infer<typeof StudyHeader>;

export const ImportanceItem = z.object({
  param: Name,
  /** Share of the total, 0..1; the items of one message sum to 1 (or are all 0). */
  importance: z.number().min(0).max(1),
  /** The method's raw score (for PED-ANOVA the Pearson divergence). */
  score: z.number().nonnegative(),
});
export type ImportanceItem = z.infer<typeof ImportanceItem>;

export const ImportanceMethod = z.enum(['ped-anova']);
export type ImportanceMethod = z.infer<typeof ImportanceMethod>;

// ---- host -> webview ---------------------------------------------------------------------------

export const InitMessage = z.object({
  type: z.literal('init'),
  protocol: z.number().int(),
  study: StudyHeader,
  status: StudyStatus,
  capabilities: Capabilities,
  trials: TrialColumns,
});

/** New or changed trials (upserts by tid). */
export const TrialsMessage = z.object({ type: z.literal('trials'), trials: TrialColumns });

export const StateMessage = z.object({
  type: z.literal('state'),
  status: StudyStatus,
  capabilities: Capabilities.optional(),
});

export const ImportancesMessage = z.object({
  type: z.literal('importances'),
  method: ImportanceMethod,
  /** How many finished trials the figures rest on. */
  trials: z.number().int().nonnegative(),
  items: z.array(ImportanceItem).max(1_000),
  /** Why there are no figures yet (too few trials), or a caveat. */
  note: Text.optional(),
});

/** The host selects a trial (for example from the Runs tree); null clears the selection. */
export const SelectMessage = z.object({ type: z.literal('select'), tid: Tid.nullable() });

export const RequestId = z.string().min(1).max(100);

export const ReplyMessage = z.object({
  type: z.literal('reply'),
  id: RequestId,
  ok: z.boolean(),
  error: Text.optional(),
});

export const HostToWebview = z.discriminatedUnion('type', [
  InitMessage, TrialsMessage, StateMessage, ImportancesMessage, SelectMessage, ReplyMessage,
]);
export type HostToWebview = z.infer<typeof HostToWebview>;
export type InitMessage = z.infer<typeof InitMessage>;
export type TrialsMessage = z.infer<typeof TrialsMessage>;
export type StateMessage = z.infer<typeof StateMessage>;
export type ImportancesMessage = z.infer<typeof ImportancesMessage>;
export type SelectMessage = z.infer<typeof SelectMessage>;
export type ReplyMessage = z.infer<typeof ReplyMessage>;

// ---- webview -> host ---------------------------------------------------------------------------

export const ReadyMessage = z.object({ type: z.literal('ready'), protocol: z.number().int() });

/** What a `control` request asks of the study; one engine call each. */
export const ControlRequest = z.discriminatedUnion('action', [
  /** No new trials; running ones finish. */
  z.object({ action: z.literal('stop') }),
  /** Running trials are killed. */
  z.object({ action: z.literal('cancel') }),
  /** Timeout in seconds from the study's start; null removes it. */
  z.object({ action: z.literal('setTimeout'), seconds: Seconds.nullable() }),
  /** Moves the deadline later: the current timeout plus `seconds`, or (without one) now plus `seconds`. */
  z.object({ action: z.literal('extendTimeout'), seconds: Seconds }),
  z.object({ action: z.literal('setParallelism'), n: z.number().int().min(1).max(MAX_PARALLELISM) }),
  /** Early-stop policy; null turns a rule off. */
  z.object({
    action: z.literal('setPolicy'),
    lossThreshold: z.number().nullable(),
    noProgressTrials: z.number().int().min(1).max(10_000_000).nullable(),
  }),
]);
export type ControlRequest = z.infer<typeof ControlRequest>;
export type ControlAction = ControlRequest['action'];

export const ControlMessage = z.object({ type: z.literal('control'), id: RequestId, request: ControlRequest });

export const SelectTrialMessage = z.object({ type: z.literal('selectTrial'), tid: Tid.nullable() });
export const OpenLogsMessage = z.object({ type: z.literal('openLogs'), tid: Tid });
export const OpenRunMessage = z.object({ type: z.literal('openRun'), tid: Tid });

/** The webview dropped a message from the host that did not parse; for the host's log. */
export const RejectedMessage = z.object({
  type: z.literal('rejected'),
  error: Text,
  /** The `type` the dropped message claimed, when it had a string one. */
  messageType: Name.optional(),
});

export const WebviewToHost = z.discriminatedUnion('type', [
  ReadyMessage, ControlMessage, SelectTrialMessage, OpenLogsMessage, OpenRunMessage, RejectedMessage,
]);
export type WebviewToHost = z.infer<typeof WebviewToHost>;
export type ReadyMessage = z.infer<typeof ReadyMessage>;
export type ControlMessage = z.infer<typeof ControlMessage>;
export type SelectTrialMessage = z.infer<typeof SelectTrialMessage>;
export type OpenLogsMessage = z.infer<typeof OpenLogsMessage>;
export type OpenRunMessage = z.infer<typeof OpenRunMessage>;
export type RejectedMessage = z.infer<typeof RejectedMessage>;

// ---- state the webview keeps across reloads (vscode.setState) -----------------------------------

export const SortKey = z.string().max(MAX_NAME);
export const PersistedWebviewState = z.object({
  v: z.literal(1),
  /** The study the panel shows: what the host's panel serializer reopens after a window reload. */
  studyId: Name,
  selectedTid: Tid.nullable(),
  sort: z.object({ key: SortKey, dir: z.enum(['asc', 'desc']) }),
  filter: Text,
  statusFilter: z.enum(['all', 'ok', 'failed', 'cancelled', 'running', 'queued']),
  page: z.number().int().nonnegative(),
  brushes: z.array(z.object({ axis: Name, lo: z.number(), hi: z.number() })).max(1_000),
  logLoss: z.boolean(),
});
export type PersistedWebviewState = z.infer<typeof PersistedWebviewState>;

// ---- parsing and guards ------------------------------------------------------------------------

export type Parsed<T> = { ok: true; message: T } | { ok: false; error: string };

/** A short description of why a message does not parse (never the message itself). */
function describeError(error: z.ZodError): string {
  const issues = error.issues.slice(0, 3).map((issue) => {
    const path = issue.path.length > 0 ? issue.path.map(String).join('.') : '(message)';
    return `${path}: ${issue.message}`;
  });
  const more = error.issues.length > 3 ? ` (+${error.issues.length - 3} more)` : '';
  return `${issues.join('; ')}${more}`.slice(0, 1_000);
}

function parseWith<T>(schema: z.ZodType<T>, raw: unknown): Parsed<T> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return { ok: false, error: 'not an object' };
  const kind = (raw as { type?: unknown }).type;
  if (typeof kind !== 'string') return { ok: false, error: 'no message type' };
  const result = schema.safeParse(raw);
  if (!result.success) return { ok: false, error: `invalid ${JSON.stringify(kind.slice(0, 50))} message: ${describeError(result.error)}` };
  return { ok: true, message: result.data };
}

/** What the extension host calls on every message from the webview; log and drop it when not ok. */
export function parseWebviewToHost(raw: unknown): Parsed<WebviewToHost> {
  return parseWith(WebviewToHost, raw);
}

/** What the webview calls on every message from the host. */
export function parseHostToWebview(raw: unknown): Parsed<HostToWebview> {
  return parseWith(HostToWebview, raw);
}

/** The `type` a raw message claims, if any (for reports about messages that did not parse). */
export function claimedType(raw: unknown): string | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const kind = (raw as { type?: unknown }).type;
  return typeof kind === 'string' ? kind.slice(0, MAX_NAME) : undefined;
}

/** Narrows a parsed message to one type: `if (isMessage(m, 'control')) m.request...`. */
export function isMessage<M extends { type: string }, K extends M['type']>(message: M, type: K): message is Extract<M, { type: K }> {
  return message.type === type;
}

/** One handler per message type; a missing one is a compile error. */
export type MessageHandlers<M extends { type: string }> = { [K in M['type']]: (message: Extract<M, { type: K }>) => void };

export function dispatchMessage<M extends { type: string }>(message: M, handlers: MessageHandlers<M>): void {
  const handler = handlers[message.type as M['type']] as (message: M) => void;
  handler(message);
}

// ---- small shared helpers ----------------------------------------------------------------------

/** The host part of a slot id (`gpu1/0` -> `gpu1`, `local/3` -> `local`). */
export function hostOfSlot(slot: string): string {
  const cut = slot.lastIndexOf('/');
  return cut > 0 ? slot.slice(0, cut) : slot;
}

/** What a trial came to, as the views colour and filter it. */
export type TrialOutcome = 'ok' | 'failed' | 'cancelled' | 'running' | 'queued';

export function trialOutcome(row: Pick<TrialRow, 'state' | 'status'>): TrialOutcome {
  switch (row.state) {
    case 'done':
      return row.status === undefined || row.status === 'ok' ? 'ok' : 'failed';
    case 'error':
      return 'failed';
    case 'cancel':
      return 'cancelled';
    case 'running':
      return 'running';
    case 'queued':
      return 'queued';
  }
}

/** hyperopt distributions whose values are spread on a log scale. */
export function isLogDistribution(dist: string): boolean {
  return dist === 'loguniform' || dist === 'qloguniform' || dist === 'lognormal' || dist === 'qlognormal';
}

/** hyperopt distributions whose values are categories. */
export function isCategoricalDistribution(dist: string): boolean {
  return dist === 'choice' || dist === 'pchoice';
}
