/**
 * Driver (the user's script, in Python) <-> coordinator channel. Newline-delimited JSON over a
 * loopback TCP connection; the first message must carry the per-run secret token.
 */
import * as z from 'zod';
import { Blob, Loss, ParamValue, ResultSummary, TrialError, Versions } from './common';

export const DriverHello = z.object({
  type: z.literal('hello'),
  protocol: z.number().int(),
  token: z.string(),
  pid: z.number().int(),
  python: z.string(),
  versions: Versions,
});

export const Welcome = z.object({ type: z.literal('welcome'), protocol: z.number().int() });

/** One hyperparameter of the space, described for views. */
export const ParamDescriptor = z.object({
  label: z.string(),
  /** hyperopt's distribution name: uniform, quniform, loguniform, qloguniform, normal, qnormal, lognormal, qlognormal, randint, uniformint, choice, pchoice */
  dist: z.string(),
  /** Distribution arguments as hyperopt takes them (low, high, q, mu, sigma), when known. */
  args: z.record(z.string(), z.number()).optional(),
  /** For choice: the options rendered as JSON-safe values (nested spaces as a short text). */
  options: z.array(ParamValue).optional(),
});
export type ParamDescriptor = z.infer<typeof ParamDescriptor>;

export const CallSite = z.object({ file: z.string(), line: z.number().int() });
export type CallSite = z.infer<typeof CallSite>;

/** A finished trial as the journal keeps it; sent back to a driver that resumes a study. */
export const FinishedTrial = z.object({
  tid: z.number().int(),
  state: z.enum(['done', 'error', 'cancel']),
  vals: z.record(z.string(), z.array(z.union([z.number(), z.string(), z.boolean()]))),
  summary: ResultSummary.optional(),
  result: Blob.optional(),
  error: TrialError.optional(),
  startedAt: z.number().optional(),
  endedAt: z.number().optional(),
});
export type FinishedTrial = z.infer<typeof FinishedTrial>;

export const Open = z.object({
  type: z.literal('open'),
  /** Driver-chosen id echoed in `opened`, so several fmin calls may open concurrently. */
  ref: z.string(),
  callSite: CallSite,
  /** 0 for the script's first fmin call, 1 for its second, ... */
  ordinal: z.number().int(),
  maxEvals: z.number().int().nullable(),
  parallelism: z.number().int().nullable(),
  timeout: z.number().nullable(),
  lossThreshold: z.number().nullable(),
  algo: z.string(),
  maxQueueLen: z.number().int(),
  domain: Blob,
  space: z.array(ParamDescriptor),
  /** Trials already in the Trials object before this call (pre-filled or from trials_save_file). */
  priorTrials: z.number().int(),
  /** When the run is tracked: what the coordinator needs for the study's parent MLflow run. */
  tracking: z
    .object({
      /** fmin's arguments as the parent's params, as Python spells them (`str()` of each). */
      params: z.record(z.string(), z.string()),
      /** The script's active MLflow run, which becomes the study's parent (only when the script imported mlflow). */
      activeRunId: z.string().optional(),
      /** The experiment the script chose (only when it imported mlflow). */
      experimentId: z.string().optional(),
    })
    .optional(),
});

export const Opened = z.object({
  type: z.literal('opened'),
  ref: z.string(),
  study: z.string(),
  parallelism: z.number().int(),
  journal: z.string(),
  /** Present when this call continues an earlier study: its finished trials, never run again. */
  resume: z.array(FinishedTrial).optional(),
  /** The tids of the study's other trials, which are not run again (attempts lost with an earlier command): new trials get other tids. */
  reservedTids: z.array(z.number().int()).optional(),
});

export const OpenFailed = z.object({
  type: z.literal('open_failed'),
  ref: z.string(),
  code: z.string(),
  message: z.string(),
});

export const Suggest = z.object({ type: z.literal('suggest'), study: z.string(), count: z.number().int().positive() });

export const NewTrial = z.object({
  tid: z.number().int(),
  spec: Blob,
  vals: z.record(z.string(), z.array(z.union([z.number(), z.string(), z.boolean()]))),
  params: z.record(z.string(), ParamValue),
});
export type NewTrial = z.infer<typeof NewTrial>;

export const Trials = z.object({ type: z.literal('trials'), study: z.string(), trials: z.array(NewTrial) });

export const ExhaustReason = z.enum(['max_evals', 'early_stop_fn', 'algo_stopped']);
export type ExhaustReason = z.infer<typeof ExhaustReason>;

/** The driver has no more points to give (and will give none). */
export const Exhausted = z.object({ type: z.literal('exhausted'), study: z.string(), reason: ExhaustReason });

export const Started = z.object({ type: z.literal('started'), study: z.string(), tid: z.number().int(), slot: z.string() });

export const Finished = z.object({
  type: z.literal('finished'),
  study: z.string(),
  tid: z.number().int(),
  state: z.enum(['done', 'error', 'cancel']),
  summary: ResultSummary.optional(),
  result: Blob.optional(),
  error: TrialError.optional(),
  startedAt: z.number().optional(),
  endedAt: z.number().optional(),
});

export const EndReason = z.enum([
  'completed', 'max_evals', 'early_stop_fn', 'algo_stopped', 'loss_threshold', 'no_progress', 'stopped', 'cancelled', 'timeout', 'failed',
]);
export type EndReason = z.infer<typeof EndReason>;

/** Sent once every trial of the study is in a terminal state; the driver then returns from fmin. */
export const Ended = z.object({
  type: z.literal('ended'),
  study: z.string(),
  reason: EndReason,
  /** Text for SparkTrials-style fmin_cancelled_reason when the study did not end on its own. */
  message: z.string().optional(),
});

/** The trial counts of a study as fmin's Trials object holds them (prior trials included). */
export const StudyCounts = z.object({
  ok: z.number().int(),
  failed: z.number().int(),
  cancelled: z.number().int(),
  total: z.number().int(),
});

/** The driver's fmin call returned (or raised) for this study. */
export const Close = z.object({
  type: z.literal('close'),
  study: z.string(),
  bestLoss: Loss.optional(),
  error: z.string().optional(),
  counts: StudyCounts.optional(),
});

export const DriverFatal = z.object({ type: z.literal('fatal'), code: z.string(), message: z.string() });

/** One line for the user from the script's side (an argument SparkTrials takes that we lower or ignore). */
export const DriverNotice = z.object({ type: z.literal('notice'), message: z.string() });

export const DriverToCoordinator = z.discriminatedUnion('type', [DriverHello, Open, Trials, Exhausted, Close, DriverFatal, DriverNotice]);
export type DriverToCoordinator = z.infer<typeof DriverToCoordinator>;
export const CoordinatorToDriver = z.discriminatedUnion('type', [Welcome, Opened, OpenFailed, Suggest, Started, Finished, Ended]);
export type CoordinatorToDriver = z.infer<typeof CoordinatorToDriver>;

export type Open = z.infer<typeof Open>;
export type Opened = z.infer<typeof Opened>;
export type Finished = z.infer<typeof Finished>;
export type DriverHello = z.infer<typeof DriverHello>;
