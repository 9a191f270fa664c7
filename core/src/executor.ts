/**
 * The executor interface: anything that offers slots which evaluate one trial at a time.
 * It assumes neither local processes nor SSH, so cluster engines can implement it too.
 */
import type { TrialError } from './protocol/common';
import type { TrialRun, TrialTracking, WorkerHello, WorkerResult } from './protocol/worker';

/** A tracked trial's MLflow side: where the server is, and its child run once the coordinator created it. */
export interface JobTracking extends TrialTracking {
  /** Resolves with the trial's child run, or undefined when it could not be created. */
  readonly run: Promise<TrialRun | undefined>;
}

export interface TrialJob {
  readonly study: string;
  readonly tid: number;
  /** Pickled point (opaque). */
  readonly spec: string;
  /** Pickled domain of the study (opaque); a slot loads it once per worker. */
  readonly domain: string;
  /** Environment for this trial only. */
  readonly env?: Readonly<Record<string, string>>;
  /** When the study is tracked: the worker makes the trial's child run the active run for an objective that uses mlflow. */
  readonly tracking?: JobTracking;
  /** Called when the worker is warm, has the domain and is handed the point: trial timeouts start here. */
  readonly onEvaluating?: () => void;
  /** Output the objective printed while this trial ran. */
  readonly onOutput?: (text: string) => void;
}

/**
 * The reason a slot's signal carries when the trial is killed because its whole study is ending
 * (cancel, fmin's timeout, the coordinator closing) rather than for its own time limit: no next
 * trial of that study waits for the slot, so it need not start a replacement worker at once.
 */
export const STUDY_ENDING = 'study-ending';

/** True when the trial was aborted because its study is ending (see STUDY_ENDING). */
export function abortedForStudyEnd(signal: AbortSignal): boolean {
  return signal.aborted && signal.reason === STUDY_ENDING;
}

export type SlotOutcome =
  | { readonly kind: 'result'; readonly result: WorkerResult }
  /** The worker could not unpickle the domain: this slot cannot serve this study. */
  | { readonly kind: 'load_failed'; readonly error: TrialError }
  /** The signal was aborted and the trial's processes were killed. */
  | { readonly kind: 'aborted' };

export interface Slot {
  /** Unique within a run, for example "local/3" or "gpu1/0". */
  readonly id: string;
  /** Where the slot runs: "localhost" or the host's name. */
  readonly host: string;
  /**
   * Evaluates one trial. Rejects with InfrastructureError when the worker or its host failed
   * (the trial is then re-queued elsewhere). Aborting the signal kills the trial's process group.
   */
  run(job: TrialJob, signal: AbortSignal): Promise<SlotOutcome>;
  /** False while the slot cannot take a trial (its host is reconnecting) and once it is gone. */
  readonly usable: boolean;
  /** True once the slot will never be usable again (retired); a study with only such slots fails. */
  readonly gone: boolean;
}

export interface ExecutorEvents {
  /** A slot became usable or was retired; the scheduler re-reads `slots`. */
  slotsChanged(): void;
  /** A message worth one line to the user (a host retired, a worker replaced). */
  notice(text: string): void;
}

export interface Executor {
  /** As the user wrote it: "local:8", "ssh:gpu1,gpu2". */
  readonly label: string;
  /** Connects, uploads, starts warm workers. Rejects with a RunnerError when no slot can start. */
  start(events: ExecutorEvents, signal: AbortSignal): Promise<void>;
  readonly slots: readonly Slot[];
  /** Versions the workers reported (for compatibility checks and summaries). */
  readonly workerInfo: readonly WorkerHello[];
  /** Kills every process the executor started and waits until they are gone. */
  close(): Promise<void>;
}
