/**
 * The runner's own MLflow writes for the studies of one run, made by the coordinator over the REST
 * API: the parent run of each study and one child run per trial, laid out by runLayout.ts.
 *
 * None of it is on a trial's path. A trial's child run is created when the trial is dispatched
 * (the worker waits for it only when the objective uses mlflow, so that its own `mlflow.log_*`
 * calls land in it); the rest of the run (params, loss, status tags, end) is written after the
 * result has gone on to the driver. Writes go through one queue with a small number in flight:
 * run creation first, the rest behind it. A failed write never fails a study: the journal keeps
 * everything, and what is missing is written later by the end-of-run sync or `hyperopt-runner sync`.
 */
import { messageOf } from '../errors';
import type { StudyInfo } from '../journal/records';
import type { TrialRun } from '../protocol/worker';
import { MlflowError, type MlflowClient, type MlflowRun } from './client';
import {
  childEndBatch,
  childEndStatus,
  childRunCreate,
  parentEndBatch,
  parentEndStatus,
  parentRunCreate,
  parentStartBatch,
  tracebackText,
  type FminParams,
  type StudyCounts,
  type TrialOutcome,
} from './runLayout';


/** Where the runs go. */
export interface TrackingTarget {
  /** The tracking URI the driver and the workers get. */
  readonly uri: string;
  /** The bearer token the server wants from the objective's own calls (MLFLOW_TRACKING_TOKEN). */
  readonly token?: string;
  readonly client: MlflowClient;
  /** Resolves when the server answers; rejects when it cannot (the writes then wait for `sync`). */
  readonly ready: () => Promise<void>;
  /** MLFLOW_EXPERIMENT_NAME / MLFLOW_EXPERIMENT_ID of the script's environment. */
  readonly env: Readonly<Record<string, string | undefined>>;
}

/** What the driver knows of mlflow when the script itself imported it. */
export interface DriverMlflow {
  /** The script's active run: the study's parent, left open. */
  readonly activeRunId?: string;
  readonly experimentId?: string;
}

export interface StudyTrackingRequest {
  readonly params: FminParams;
  readonly actualParallelism: number;
  readonly mlflow?: DriverMlflow;
  /** A resumed study keeps its parent run. */
  readonly parent?: { readonly experimentId: string; readonly parentRunId: string };
}

export interface ParentRun {
  readonly uri: string;
  readonly experimentId: string;
  readonly parentRunId: string;
  /** True when the runner created it and so ends it. */
  readonly owned: boolean;
}

export interface StudyEnd {
  readonly counts: StudyCounts;
  readonly bestLoss?: number;
  /** fmin raised. */
  readonly failed: boolean;
  readonly endReason?: string;
}

/** The outcome of a trial's run writes, journalled as a `tracked` record. */
export interface TrackedRun {
  readonly runId: string;
  readonly complete: boolean;
  readonly error?: string;
}

export interface RunWriterOptions {
  /** Requests in flight at once (default 4). */
  readonly concurrency?: number;
  /** One line per problem, once per study (the caller decides). */
  readonly warn?: (studyId: string, text: string) => void;
}

type Lane = 'first' | 'later';

interface Job {
  readonly run: () => Promise<void>;
}

/** How long the writes stay off after the server did not answer, before they are tried again. */
const DOWN_FOR_MS = 5_000;

/** A write refused because the run ended first: left to the sync, and no problem to report. */
class LeftForSync extends Error {}

export class RunWriter {
  private readonly first: Job[] = [];
  private readonly later: Job[] = [];
  private running = 0;
  private readonly concurrency: number;
  /** Chains of writes that are not done yet (a child run's end waits for its creation, say). */
  private readonly tasks = new Set<Promise<void>>();
  /** Called when no request is in flight any more. */
  private idleWaiters: Array<() => void> = [];
  private gate: Promise<boolean> | undefined;
  private downUntil = 0;
  private closed = false;

  constructor(
    readonly target: TrackingTarget,
    private readonly options: RunWriterOptions = {},
  ) {
    this.concurrency = options.concurrency ?? 4;
  }

  get uri(): string {
    return this.target.uri;
  }

  get token(): string | undefined {
    return this.target.token;
  }

  openStudy(info: StudyInfo, request: StudyTrackingRequest): StudyRuns {
    return new StudyRuns(this, info, request);
  }

  /** Queues one request; resolves with its answer, rejects with its error (or at once while the server is down). */
  write<T>(lane: Lane, request: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const job: Job = {
        run: async () => {
          try {
            if (this.closed) throw new LeftForSync('the run ended before this was written');
            if (!(await this.serverReady())) throw new Error(`the tracking server at ${this.target.uri} is not available`);
            if (Date.now() < this.downUntil) throw new Error(`the tracking server at ${this.target.uri} did not answer a moment ago`);
            resolve(await request());
          } catch (error) {
            if (error instanceof MlflowError && error.code === 'unreachable') this.downUntil = Date.now() + DOWN_FOR_MS;
            reject(error);
          }
        },
      };
      (lane === 'first' ? this.first : this.later).push(job);
      this.pump();
    });
  }

  /** Keeps a chain of writes in the count `drain` waits for. */
  hold(task: Promise<unknown>): void {
    const settled = task.then(
      () => undefined,
      () => undefined,
    );
    this.tasks.add(settled);
    void settled.then(() => this.tasks.delete(settled));
  }

  /**
   * Waits (at most `timeoutMs`) until every chain of writes is done; then later writes fail at
   * once, and whatever was not written is left to the sync. Resolves with how many chains were left,
   * once the requests already sent have their answers (so the journal names every run they
   * created, and a sync makes no second one).
   */
  async drain(timeoutMs: number): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    while (this.tasks.size > 0 && Date.now() < deadline) await this.within(Promise.allSettled([...this.tasks]), deadline);
    this.closed = true;
    const left = this.tasks.size;
    if (this.running > 0) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    // The chains left now fail at once (closed): let them settle before the journals close.
    await this.within(Promise.allSettled([...this.tasks]), Date.now() + 1_000);
    return left;
  }

  private async within(promise: Promise<unknown>, deadline: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([promise, new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.max(0, deadline - Date.now()))))]);
    clearTimeout(timer);
  }

  /** Chains of writes not done yet. */
  get pending(): number {
    return this.tasks.size;
  }

  /** Reports a failed write, unless it was only left for the sync. */
  warn(studyId: string, text: string, error?: unknown): void {
    if (error instanceof LeftForSync) return;
    this.options.warn?.(studyId, text);
  }

  private serverReady(): Promise<boolean> {
    this.gate ??= this.target.ready().then(
      () => true,
      () => false,
    );
    return this.gate;
  }

  private pump(): void {
    while (this.running < this.concurrency) {
      const job = this.first.shift() ?? this.later.shift();
      if (!job) break;
      this.running += 1;
      void job.run().finally(() => {
        this.running -= 1;
        if (this.running === 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
        this.pump();
      });
    }
  }
}

/** One study's runs: its parent, then a child per trial. */
export class StudyRuns {
  /** The study's parent run, once created (undefined when it could not be). */
  readonly parent: Promise<ParentRun | undefined>;
  /** Child-run writes of the study still going: the parent ends after them. */
  private readonly inFlight = new Set<Promise<unknown>>();
  private ended = false;

  constructor(
    private readonly writer: RunWriter,
    private readonly info: StudyInfo,
    private readonly request: StudyTrackingRequest,
  ) {
    this.parent = this.openParent().catch((error: unknown) => {
      writer.warn(info.id, `could not create the study's MLflow run at ${writer.uri}: ${messageOf(error)}`, error);
      return undefined;
    });
    writer.hold(this.parent);
  }

  /**
   * Creates a trial's child run (ahead of every later write); resolves with what the worker needs,
   * or undefined when it could not be created (the sync creates it later).
   */
  trialStarted(tid: number, where: { slot: string; host: string }, startTime: number): Promise<TrialRun | undefined> {
    const created = this.parent.then(async (parent) => {
      if (!parent) return undefined;
      const run = await this.writer.write('first', () =>
        this.writer.target.client.createRun(
          childRunCreate({ studyId: this.info.id, tid, slot: where.slot, host: where.host, experimentId: parent.experimentId, parentRunId: parent.parentRunId, startTime }),
        ),
      );
      return runInfoOf(run);
    }).catch((error: unknown) => {
      this.writer.warn(this.info.id, `trial ${tid}: could not create its MLflow run: ${messageOf(error)}`, error);
      return undefined;
    });
    this.track(created);
    return created;
  }

  /** Writes the rest of a trial's run once it ended; `tracked` hears how that went. */
  trialEnded(tid: number, run: Promise<RunRef | undefined>, outcome: TrialOutcome, tracked: (result: TrackedRun) => void): void {
    const done = run.then(async (info) => {
      if (!info) return;
      try {
        await this.writeEnd(info, outcome);
        tracked({ runId: info.runId, complete: true });
      } catch (error) {
        const why = messageOf(error);
        this.writer.warn(this.info.id, `trial ${tid}: ${why}`, error);
        tracked({ runId: info.runId, complete: false, error: why });
      }
    });
    this.track(done);
  }

  /**
   * The study ended: its counts and best loss on the parent, which the runner ends when it created
   * it. Resolves true once that is written.
   */
  close(end: StudyEnd): Promise<boolean> {
    if (this.ended) return Promise.resolve(false);
    this.ended = true;
    const closed = (async () => {
      const parent = await this.parent;
      if (!parent) return false;
      // The parent says the study is over only once its trials' runs are written.
      while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
      const client = this.writer.target.client;
      try {
        await this.writer.write('later', () => client.logBatch(parent.parentRunId, parentEndBatch(end.counts, end.bestLoss, Date.now())));
        if (parent.owned) await this.writer.write('later', () => client.finishRun(parent.parentRunId, parentEndStatus(end.endReason, end.failed)));
        return true;
      } catch (error) {
        this.writer.warn(this.info.id, `could not finish the study's MLflow run: ${messageOf(error)}`, error);
        return false;
      }
    })();
    this.writer.hold(closed);
    return closed;
  }

  private async openParent(): Promise<ParentRun> {
    const client = this.writer.target.client;
    const uri = this.writer.uri;
    const request = this.request;
    let parent: ParentRun;
    if (request.parent) {
      parent = { uri, ...request.parent, owned: !request.mlflow?.activeRunId };
      if (parent.owned) await this.writer.write('first', () => client.updateRun(parent.parentRunId, { status: 'RUNNING' }));
    } else if (request.mlflow?.activeRunId) {
      const active = await this.writer.write('first', () => client.getRun(request.mlflow!.activeRunId!));
      parent = { uri, experimentId: active.info.experimentId, parentRunId: active.info.runId, owned: false };
    } else {
      const experimentId = request.mlflow?.experimentId ?? (await this.experimentFromEnv());
      const run = await this.writer.write('first', () => client.createRun(parentRunCreate(this.info, experimentId)));
      parent = { uri, experimentId, parentRunId: run.info.runId, owned: true };
    }
    // Params already on an active run decide which names conflict; a run the runner just created has none.
    const existing = parent.owned && !request.parent ? {} : (await this.writer.write('first', () => client.getRun(parent.parentRunId))).data.params;
    await this.writer.write('first', () => client.logBatch(parent.parentRunId, parentStartBatch(this.info, request.params, request.actualParallelism, existing)));
    return parent;
  }

  /** The experiment MLflow itself would pick from MLFLOW_EXPERIMENT_NAME / MLFLOW_EXPERIMENT_ID, else the default. */
  private async experimentFromEnv(): Promise<string> {
    const { MLFLOW_EXPERIMENT_NAME: name, MLFLOW_EXPERIMENT_ID: id } = this.writer.target.env;
    if (name) return this.writer.write('first', () => this.writer.target.client.getOrCreateExperiment(name));
    return id || '0';
  }

  private async writeEnd(info: RunRef, outcome: TrialOutcome): Promise<void> {
    const client = this.writer.target.client;
    const batch = childEndBatch(outcome);
    try {
      await this.writer.write('later', () => client.logBatch(info.runId, batch));
    } catch (error) {
      // The objective logged a param of the same name with another value itself: MLflow keeps the
      // first value and refuses the batch, so the rest goes without the params.
      if (!(error instanceof MlflowError) || error.mlflowCode !== 'INVALID_PARAMETER_VALUE' || !batch.params) throw error;
      await this.writer.write('later', () => client.logBatch(info.runId, { ...batch, params: {} }));
    }
    const traceback = outcome.state === 'error' ? tracebackText(outcome.error) : undefined;
    if (traceback && outcome.error?.traceback && info.artifactUri.startsWith('mlflow-artifacts:')) {
      await this.writer.write('later', () => client.uploadArtifact(info.artifactUri, 'traceback.txt', traceback)).catch(() => undefined);
    }
    await this.writer.write('later', () => client.finishRun(info.runId, childEndStatus(outcome), outcome.endedAt));
  }

  private track(promise: Promise<unknown>): void {
    const settled = promise.then(
      () => undefined,
      () => undefined,
    );
    this.inFlight.add(settled);
    this.writer.hold(settled);
    void settled.then(() => this.inFlight.delete(settled));
  }
}

/** What the end of a child run needs of it. */
type RunRef = Pick<TrialRun, 'runId' | 'artifactUri'>;

function runInfoOf(run: MlflowRun): TrialRun {
  return {
    runId: run.info.runId,
    experimentId: run.info.experimentId,
    runName: run.info.runName ?? '',
    userId: run.info.userId ?? '',
    startTime: run.info.startTime ?? Date.now(),
    artifactUri: run.info.artifactUri ?? '',
    lifecycleStage: run.info.lifecycleStage,
    status: run.info.status,
    tags: run.data.tags,
  };
}
