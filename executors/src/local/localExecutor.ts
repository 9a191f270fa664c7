/** The local pool: N warm Python workers on this machine, one per slot. */
import { InfrastructureError, RunnerError } from '../../../core/src/errors';
import { abortedForStudyEnd, type Executor, type ExecutorEvents, type Slot, type SlotOutcome, type TrialJob } from '../../../core/src/executor';
import type { WorkerHello } from '../../../core/src/protocol/worker';
import type { ForkServer } from '../../../core/src/python/forkServer';
import { ForkedWorker } from './forkedWorker';
import { WorkerProcess, type LocalWorker } from './workerProcess';
import { WorkerSockets } from './workerSockets';

export interface LocalExecutorOptions {
  readonly workers: number;
  readonly python: string;
  /** Environment of the workers (PYTHONPATH already carries the runtime package). */
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
  /** Grace between TERM and KILL when a trial is cancelled. */
  readonly killGraceMs?: number;
  readonly label?: string;
  /** Workers are forked from this warm server (same interpreter and environment); without it each is spawned. */
  readonly forkServer?: ForkServer;
}

/** A worker that dies this many times in a row before its hello retires the slot. */
const MAX_START_FAILURES = 3;
/** How long a worker told to shut down may take to exit before it is killed (it holds nothing to write). */
const SHUTDOWN_GRACE_MS = 5_000;

/** Makes a slot's worker process: spawned, or forked from the fork server. */
type WorkerFactory = (slot: string, onStray: (text: string) => void) => LocalWorker;

class LocalSlot implements Slot {
  readonly host = 'localhost';
  private worker: LocalWorker | undefined;
  private startFailures = 0;
  usable = true;

  /** A local slot that stops being usable was retired for good. */
  get gone(): boolean {
    return !this.usable;
  }

  constructor(
    readonly id: string,
    private readonly options: LocalExecutorOptions,
    private readonly events: ExecutorEvents,
    private readonly newWorker: WorkerFactory,
  ) {}

  get hello(): WorkerHello | undefined {
    return this.worker?.hello;
  }

  /** Starts a worker (if none is alive) and waits for its hello. */
  async warm(): Promise<LocalWorker> {
    let worker = this.worker;
    if (!worker || !worker.alive) {
      worker = this.newWorker(this.id, (text) => this.events.notice(`[${this.id}] ${text.trimEnd()}`));
      this.worker = worker;
    }
    try {
      await worker.ready();
      this.startFailures = 0;
      return worker;
    } catch (error) {
      await worker.exited;
      this.startFailures += 1;
      if (this.startFailures >= MAX_START_FAILURES && this.usable) {
        this.usable = false;
        this.events.notice(`${this.id} retired: its worker failed to start ${MAX_START_FAILURES} times (${worker.stderr})`);
        this.events.slotsChanged();
      }
      throw new RunnerError('worker_start_failed', {
        slot: this.id,
        exit: error instanceof Error ? error.message : String(error),
        stderr: worker.stderr,
        python: this.options.python,
      });
    }
  }

  async run(job: TrialJob, signal: AbortSignal): Promise<SlotOutcome> {
    if (signal.aborted) return { kind: 'aborted' };
    let worker: LocalWorker;
    try {
      worker = await this.warm();
    } catch (error) {
      throw new InfrastructureError(error instanceof Error ? error.message : String(error), this.id);
    }
    const onAbort = (): void => {
      // A study that ends needs no warm replacement; the next study's first trial starts one.
      void worker.kill(this.options.killGraceMs).then(() => {
        if (!abortedForStudyEnd(signal)) this.replace(worker);
      });
    };
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      if (worker.loadedStudy !== job.study) {
        const loadError = await worker.load(job.study, job.domain);
        if (loadError) return { kind: 'load_failed', error: loadError };
      }
      job.onEvaluating?.();
      const result = await worker.evaluate(job);
      return { kind: 'result', result };
    } catch (error) {
      if (signal.aborted) {
        await worker.kill(this.options.killGraceMs);
        return { kind: 'aborted' };
      }
      // The worker died under the trial (killed, segfault, out of memory): a fresh one takes over.
      await worker.kill(0);
      this.replace(worker);
      throw error instanceof InfrastructureError ? error : new InfrastructureError(String(error), this.id);
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  /** Starts a replacement in the background so the next trial finds a warm worker. */
  private replace(dead: LocalWorker): void {
    if (this.worker !== dead || this.closed || !this.usable) return;
    this.worker = undefined;
    this.warm().catch(() => undefined);
  }

  private closed = false;

  async close(): Promise<void> {
    this.closed = true;
    const worker = this.worker;
    if (!worker) return;
    // A worker that never said hello (still starting, or stuck) has run no trial and holds no
    // run to write: it is not waited for.
    if (!worker.hello) return worker.kill(0);
    worker.shutdown();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([worker.exited, new Promise((resolve) => (timer = setTimeout(resolve, SHUTDOWN_GRACE_MS)))]);
    clearTimeout(timer);
    await worker.kill(this.options.killGraceMs ?? 2000);
  }
}

export class LocalExecutor implements Executor {
  readonly label: string;
  private readonly localSlots: LocalSlot[] = [];
  /** Where forked workers connect back to; only with a fork server. */
  private readonly sockets: WorkerSockets | undefined;

  constructor(private readonly options: LocalExecutorOptions) {
    this.label = options.label ?? `local:${options.workers}`;
    if (options.forkServer) this.sockets = new WorkerSockets();
  }

  private newWorker(slot: string, onStray: (text: string) => void): LocalWorker {
    const { forkServer, env, cwd, python } = this.options;
    if (forkServer && this.sockets) return new ForkedWorker({ server: forkServer, sockets: this.sockets, env, cwd, slot }, onStray);
    return new WorkerProcess({ python, env, cwd, slot }, onStray);
  }

  get slots(): readonly Slot[] {
    return this.localSlots;
  }

  get workerInfo(): readonly WorkerHello[] {
    return this.localSlots.flatMap((slot) => (slot.hello ? [slot.hello] : []));
  }

  async start(events: ExecutorEvents, signal: AbortSignal): Promise<void> {
    for (let i = 0; i < this.options.workers; i++) {
      this.localSlots.push(new LocalSlot(`local/${i}`, this.options, events, (slot, onStray) => this.newWorker(slot, onStray)));
    }
    const started = await Promise.allSettled(this.localSlots.map((slot) => slot.warm()));
    if (signal.aborted) return;
    const failure = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    // One broken worker is a fault to report; none working means the interpreter is unusable.
    if (failure && started.every((r) => r.status === 'rejected')) throw failure.reason;
    events.slotsChanged();
  }

  async close(): Promise<void> {
    await Promise.all(this.localSlots.map((slot) => slot.close()));
    this.sockets?.close();
  }
}
