/**
 * Coordinator <-> worker channel. Newline-delimited JSON over the worker's stdin (to the worker)
 * and a private duplicate of its original stdout (from the worker). Everything the objective
 * prints goes to the worker's stderr, framed by trial markers (see TRIAL_MARK_*).
 */
import { z } from 'zod';
import { Blob, ResultSummary, TrialError, Versions } from './common';

export const TrialTracking = z.object({
  uri: z.string(),
  experimentId: z.string(),
  parentRunId: z.string(),
  runName: z.string(),
  params: z.record(z.string(), z.string()),
  tags: z.record(z.string(), z.string()),
});
export type TrialTracking = z.infer<typeof TrialTracking>;

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
  /** When the study is tracked: the worker opens this trial's child run and makes it active. */
  tracking: TrialTracking.optional(),
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
   * The trial's child run, created before the objective ran (its completion follows in a
   * `tracked` message), or why it could not be created (the coordinator writes it later).
   */
  tracking: z.object({ runId: z.string().nullable(), error: z.string().optional() }).optional(),
});

/**
 * Sent after `result` once the worker's background logger has written the rest of the trial's
 * child run (loss, status tags, FINISHED or FAILED), or failed to: `complete` false leaves the
 * run for the coordinator to complete from the journal.
 */
export const WorkerTracked = z.object({
  type: z.literal('tracked'),
  study: z.string(),
  tid: z.number().int(),
  runId: z.string(),
  complete: z.boolean(),
  error: z.string().optional(),
});

export const WorkerShutdown = z.object({ type: z.literal('shutdown') });

export const WorkerToCoordinator = z.discriminatedUnion('type', [WorkerHello, WorkerLoaded, WorkerLoadFailed, WorkerResult, WorkerTracked]);
export type WorkerToCoordinator = z.infer<typeof WorkerToCoordinator>;
export const CoordinatorToWorker = z.discriminatedUnion('type', [WorkerLoad, WorkerEvaluate, WorkerShutdown]);
export type CoordinatorToWorker = z.infer<typeof CoordinatorToWorker>;

export type WorkerHello = z.infer<typeof WorkerHello>;
export type WorkerResult = z.infer<typeof WorkerResult>;
export type WorkerTracked = z.infer<typeof WorkerTracked>;

/**
 * Markers the worker writes to stderr around each trial so output is attributed to the right
 * trial even though stderr and the protocol are separate pipes: RS "hr:begin:<tid>" RS ... RS "hr:end:<tid>" RS.
 */
// eslint-disable-next-line no-control-regex -- the record separator is the marker by design
export const TRIAL_MARK_RE = /\x1ehr:(begin|end):(-?\d+)\x1e/g;
