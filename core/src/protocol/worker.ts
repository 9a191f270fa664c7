/**
 * Coordinator <-> worker channel. Newline-delimited JSON over the worker's stdin (to the worker)
 * and a private duplicate of its original stdout (from the worker). Everything the objective
 * prints goes to the worker's stderr, framed by trial markers (see TRIAL_MARK_*).
 */
import { z } from 'zod';
import { Blob, ResultSummary, TrialError, Versions } from './common';

/**
 * A tracked trial: where MLflow is (as the worker's host reaches it) and the bearer token it wants,
 * if any (MLFLOW_TRACKING_TOKEN for the objective's own calls: it travels here, not in a remote
 * command line); its child run follows in `run`.
 */
export const TrialTracking = z.object({
  uri: z.string(),
  token: z.string().optional(),
});
export type TrialTracking = z.infer<typeof TrialTracking>;

/** A trial's child run as MLflow created it: enough for the worker to make it the active run without a request. */
export const TrialRun = z.object({
  runId: z.string(),
  experimentId: z.string(),
  runName: z.string(),
  userId: z.string(),
  startTime: z.number(),
  artifactUri: z.string(),
  lifecycleStage: z.string(),
  status: z.string(),
  tags: z.record(z.string(), z.string()),
});

export const WorkerHello = z.object({
  type: z.literal('hello'),
  protocol: z.number().int(),
  pid: z.number().int(),
  python: z.string(),
  executable: z.string(),
  versions: Versions,
});

export const WorkerLoad = z.object({
  type: z.literal('load'),
  study: z.string(),
  domain: Blob,
});

export const WorkerLoaded = z.object({
  type: z.literal('loaded'),
  study: z.string(),
});

export const WorkerLoadFailed = z.object({
  type: z.literal('load_failed'),
  study: z.string(),
  error: TrialError,
});

export const WorkerEvaluate = z.object({
  type: z.literal('evaluate'),
  study: z.string(),
  tid: z.number().int(),
  spec: Blob,
  /** Extra environment for this trial only (for example CUDA_VISIBLE_DEVICES). */
  env: z.record(z.string(), z.string()).optional(),
  /** When the study is tracked: the trial's child run follows in a `run` message. */
  tracking: TrialTracking.optional(),
});

/**
 * The child run of a tracked trial, sent once the coordinator created it (`run: null` when it
 * could not). A worker whose objective uses mlflow waits for it before the objective runs;
 * others ignore it.
 */
export const WorkerRun = z.object({
  type: z.literal('run'),
  study: z.string(),
  tid: z.number().int(),
  run: TrialRun.nullable(),
  error: z.string().optional(),
});

export const WorkerResult = z.object({
  type: z.literal('result'),
  study: z.string(),
  tid: z.number().int(),
  /** ok: the objective returned (its own status may still be "fail"); error: it raised. */
  outcome: z.enum(['ok', 'error']),
  summary: ResultSummary.optional(),
  result: Blob.optional(),
  error: TrialError.optional(),
  startedAt: z.number(),
  endedAt: z.number(),
  /**
   * The child run the objective ran in when it used mlflow (`runId`), or why the worker could not
   * make it the active run.
   */
  tracking: z.object({ runId: z.string().nullable(), error: z.string().optional() }).optional(),
});

export const WorkerShutdown = z.object({ type: z.literal('shutdown') });

export const WorkerToCoordinator = z.discriminatedUnion('type', [WorkerHello, WorkerLoaded, WorkerLoadFailed, WorkerResult]);
export type WorkerToCoordinator = z.infer<typeof WorkerToCoordinator>;
export const CoordinatorToWorker = z.discriminatedUnion('type', [WorkerLoad, WorkerEvaluate, WorkerRun, WorkerShutdown]);
export type CoordinatorToWorker = z.infer<typeof CoordinatorToWorker>;

export type WorkerHello = z.infer<typeof WorkerHello>;
export type WorkerResult = z.infer<typeof WorkerResult>;
export type TrialRun = z.infer<typeof TrialRun>;

/**
 * Markers the worker writes to stderr around each trial so output is attributed to the right
 * trial even though stderr and the protocol are separate pipes: RS "hr:begin:<tid>" RS ... RS "hr:end:<tid>" RS.
 */
// eslint-disable-next-line no-control-regex -- the record separator is the marker by design
export const TRIAL_MARK_RE = /\x1ehr:(begin|end):(-?\d+)\x1e/g;
