/** The study journal: one append-only JSON-lines file per study. */
import { z } from 'zod';
import { CallSite, EndReason, FinishedTrial, ParamDescriptor } from '../protocol/driver';
import { ParamValue, ResultSummary, TrialError } from '../protocol/common';

export const JOURNAL_VERSION = 1;

export const StudyInfo = z.object({
  id: z.string(),
  runId: z.string(),
  ordinal: z.number().int(),
  script: z.string(),
  args: z.array(z.string()),
  cwd: z.string(),
  python: z.string(),
  executors: z.array(z.string()),
  callSite: CallSite,
  maxEvals: z.number().int().nullable(),
  parallelism: z.number().int(),
  /** What set `parallelism` (absent in journals written before it was recorded). */
  parallelismSource: z.enum(['option', 'script', 'slots']).optional(),
  /** The parallelism the script's Trials asked for (SparkTrials(parallelism=...)), null when it asked for none. */
  requestedParallelism: z.number().int().nullable().optional(),
  timeout: z.number().nullable(),
  trialTimeout: z.number().nullable(),
  lossThreshold: z.number().nullable(),
  algo: z.string(),
  maxQueueLen: z.number().int(),
  space: z.array(ParamDescriptor),
  createdAt: z.number(),
});
export type StudyInfo = z.infer<typeof StudyInfo>;

export const StudyState = z.enum(['running', 'stopping', 'cancelling', 'ended']);
export type StudyState = z.infer<typeof StudyState>;

const Vals = FinishedTrial.shape.vals;

/** The process that writes the journal (the coordinator) and its host, for telling a crashed study from a running one. */
export const JournalOwner = z.object({ pid: z.number().int(), host: z.string() });
export type JournalOwner = z.infer<typeof JournalOwner>;

export const JournalRecord = z.discriminatedUnion('k', [
  z.object({ k: z.literal('study'), v: z.number().int(), study: StudyInfo, owner: JournalOwner.optional() }),
  z.object({ k: z.literal('trial'), tid: z.number().int(), vals: Vals, params: z.record(z.string(), ParamValue), at: z.number() }),
  z.object({ k: z.literal('start'), tid: z.number().int(), slot: z.string(), attempt: z.number().int(), at: z.number() }),
  z.object({
    k: z.literal('end'),
    tid: z.number().int(),
    state: z.enum(['done', 'error', 'cancel']),
    summary: ResultSummary.optional(),
    result: z.string().optional(),
    error: TrialError.optional(),
    slot: z.string().optional(),
    startedAt: z.number().optional(),
    endedAt: z.number().optional(),
    /** The trial's MLflow child run, when it existed by then (else its `tracked` record names it). */
    mlflowRunId: z.string().optional(),
    /**
     * The trial is tracked and its run not known to be complete: the rest is written after the
     * result and a `tracked` record says when it was. Journals written before `tracked` existed
     * set it only when the worker failed.
     */
    mlflowIncomplete: z.boolean().optional(),
  }),
  /** A trial's child run exists (created as the trial was dispatched); its `tracked` record says when it is complete. */
  z.object({ k: z.literal('run'), tid: z.number().int(), mlflowRunId: z.string(), at: z.number() }),
  /** A trial's child run was written after its end (`complete`), or could not be. */
  z.object({ k: z.literal('tracked'), tid: z.number().int(), mlflowRunId: z.string(), complete: z.boolean(), error: z.string().optional(), at: z.number() }),
  z.object({
    k: z.literal('tracking'),
    uri: z.string(),
    experimentId: z.string(),
    parentRunId: z.string(),
    /** The runner created the parent run (and so ends it); false for the script's own active run. */
    owned: z.boolean().optional(),
    at: z.number(),
  }),
  /**
   * What the script asked of the study's MLflow runs (written when the study opens tracked): the
   * parent's params, the script's active run as the parent, its experiment. The runs written
   * later from the journal follow it as the live ones do.
   */
  z.object({
    k: z.literal('trackingRequest'),
    params: z.record(z.string(), z.string()),
    activeRunId: z.string().optional(),
    experimentId: z.string().optional(),
    at: z.number(),
  }),
  /** The study's parent run got its counts and, when the runner created it, its end. */
  z.object({ k: z.literal('parentEnded'), at: z.number() }),
  z.object({ k: z.literal('synced'), tid: z.number().int(), mlflowRunId: z.string(), at: z.number() }),
  z.object({ k: z.literal('requeue'), tid: z.number().int(), slot: z.string(), reason: z.string(), at: z.number() }),
  z.object({
    k: z.literal('state'),
    state: StudyState,
    reason: z.union([EndReason, z.literal('interrupted')]).optional(),
    message: z.string().optional(),
    at: z.number(),
  }),
  z.object({
    k: z.literal('settings'),
    timeout: z.number().nullable().optional(),
    parallelism: z.number().int().optional(),
    lossThreshold: z.number().nullable().optional(),
    noProgressTrials: z.number().int().nullable().optional(),
    at: z.number(),
  }),
  z.object({ k: z.literal('resumed'), runId: z.string(), owner: JournalOwner.optional(), at: z.number() }),
]);
export type JournalRecord = z.infer<typeof JournalRecord>;
