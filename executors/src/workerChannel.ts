/**
 * The coordinator's side of the worker protocol, whatever carries it (a local pipe or an SSH
 * channel): requests and their replies, and the worker's stderr split into per-trial output
 * at the trial markers.
 */
import { InfrastructureError } from '../../core/src/errors';
import type { TrialJob } from '../../core/src/executor';
import type { TrialError } from '../../core/src/protocol/common';
import { decodeMessage, encodeMessage, LineSplitter } from '../../core/src/protocol/ndjson';
import {
  TRIAL_MARK_RE,
  WorkerToCoordinator,
  type CoordinatorToWorker,
  type WorkerHello,
  type WorkerResult,
} from '../../core/src/protocol/worker';

type Waiter =
  | { kind: 'hello'; resolve: (m: WorkerHello) => void; reject: (e: Error) => void }
  | { kind: 'load'; study: string; resolve: (e: TrialError | undefined) => void; reject: (e: Error) => void }
  | { kind: 'result'; tid: number; resolve: (m: WorkerResult) => void; reject: (e: Error) => void };

const STDERR_TAIL = 2000;
/** How long a result waits for its trial's end marker on stderr (the output before it). */
const RESULT_HOLD_MS = 2000;

export interface WorkerChannelOptions {
  readonly slot: string;
  /** Writes one encoded message to the worker; never throws. */
  readonly write: (text: string) => void;
  /** Output that belongs to no trial, and protocol lines that make no sense. */
  readonly onStray: (text: string) => void;
  readonly startTimeoutMs?: number;
  /** Called when the hello does not come in time (the transport then ends the worker). */
  readonly onStartTimeout?: () => void;
  /** Stray output before the hello is kept for the start-up error instead of shown. */
  readonly quietBeforeHello?: boolean;
}

export class WorkerChannel {
  private readonly lines = new LineSplitter();
  private waiter: Waiter | undefined;
  private stderrTail = '';
  private stderrCarry = '';
  private currentTid: number | undefined;
  /** The last trial whose end marker came through stderr. */
  private endedTid: number | undefined;
  /** A result that came on stdout before its trial's output on stderr had all arrived. */
  private heldResult: { tid: number; deliver: () => void; timer: NodeJS.Timeout } | undefined;
  private onOutput: ((text: string) => void) | undefined;
  private readyPromise: Promise<WorkerHello> | undefined;
  private endedWith: Error | undefined;
  hello: WorkerHello | undefined;
  helloAt: number | undefined;
  loadedStudy: string | undefined;

  constructor(private readonly options: WorkerChannelOptions) {}

  /** Feeds the worker's protocol stream; `intercept` may claim a line before it is decoded. */
  feedStdout(chunk: string, intercept?: (line: string) => boolean): void {
    this.lines.push(chunk, (line) => {
      if (!intercept?.(line)) this.onLine(line);
    });
  }

  /** The last lines the worker wrote to stderr (for start-up failures). */
  get stderr(): string {
    return this.stderrTail.trim().split('\n').slice(-3).join(' | ');
  }

  /** The worker is gone: every pending and later request fails with this error. */
  end(error: Error): void {
    // A result already received is the trial's outcome, whatever happens to the worker after it.
    this.releaseResult();
    this.endedWith ??= error;
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.reject(error);
  }

  /** Resolves with the worker's hello; every caller shares one wait. */
  ready(): Promise<WorkerHello> {
    this.readyPromise ??= this.waitForHello();
    return this.readyPromise;
  }

  /** Loads a study's domain; resolves with the worker's error when it could not. */
  load(study: string, domain: string): Promise<TrialError | undefined> {
    return new Promise<TrialError | undefined>((resolve, reject) => {
      if (this.await({ kind: 'load', study, resolve, reject })) this.send({ type: 'load', study, domain });
    }).then((error) => {
      if (!error) this.loadedStudy = study;
      return error;
    });
  }

  evaluate(job: Pick<TrialJob, 'study' | 'tid' | 'spec' | 'env' | 'tracking' | 'onOutput'>): Promise<WorkerResult> {
    this.onOutput = job.onOutput;
    const { study, tid, spec, env, tracking } = job;
    const result = new Promise<WorkerResult>((resolve, reject) => {
      if (this.await({ kind: 'result', tid, resolve, reject })) {
        this.send({ type: 'evaluate', study, tid, spec, ...(env ? { env: { ...env } } : {}), ...(tracking ? { tracking: { uri: tracking.uri, ...(tracking.token ? { token: tracking.token } : {}) } } : {}) });
      }
    });
    // The child run follows as soon as it exists; a worker whose objective uses mlflow waits for it.
    void tracking?.run.then((run) => {
      const waiter = this.waiter;
      if (waiter?.kind === 'result' && waiter.tid === tid) this.send({ type: 'run', study, tid, run: run ?? null });
    });
    return result;
  }

  send(message: CoordinatorToWorker): void {
    if (this.endedWith) return;
    this.options.write(encodeMessage(message));
  }

  private waitForHello(): Promise<WorkerHello> {
    if (this.hello) return Promise.resolve(this.hello);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new InfrastructureError(`worker on ${this.options.slot} sent no hello in time`, this.options.slot));
        this.options.onStartTimeout?.();
      }, this.options.startTimeoutMs ?? 60_000);
      this.await({
        kind: 'hello',
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
    });
  }

  /** Registers the wait for a reply; false (and the waiter rejected) when the worker is gone. */
  private await(waiter: Waiter): boolean {
    if (this.endedWith) {
      waiter.reject(this.endedWith);
      return false;
    }
    if (this.waiter) throw new Error(`worker on ${this.options.slot} is busy`);
    this.waiter = waiter;
    return true;
  }

  private onLine(line: string): void {
    const decoded = decodeMessage(line, WorkerToCoordinator);
    if (!decoded.ok) {
      this.options.onStray(`worker on ${this.options.slot}: ${decoded.error}`);
      return;
    }
    const message = decoded.message;
    const waiter = this.waiter;
    if (message.type === 'hello') {
      this.hello = message;
      this.helloAt = performance.now();
      if (waiter?.kind === 'hello') {
        this.waiter = undefined;
        waiter.resolve(message);
      }
    } else if ((message.type === 'loaded' || message.type === 'load_failed') && waiter?.kind === 'load') {
      this.waiter = undefined;
      waiter.resolve(message.type === 'load_failed' ? message.error : undefined);
    } else if (message.type === 'result' && waiter?.kind === 'result' && waiter.tid === message.tid) {
      this.waiter = undefined;
      this.holdUntilOutput(message.tid, () => waiter.resolve(message));
    } else {
      this.options.onStray(`worker on ${this.options.slot}: unexpected ${message.type}`);
    }
  }

  /** Splits stderr at the trial markers so every byte lands with the trial that printed it. */
  feedStderr(chunk: string): void {
    this.stderrTail = (this.stderrTail + chunk).slice(-STDERR_TAIL);
    const text = this.stderrCarry + chunk;
    this.stderrCarry = '';
    let last = 0;
    for (const match of text.matchAll(TRIAL_MARK_RE)) {
      this.emitOutput(text.slice(last, match.index));
      last = match.index + match[0].length;
      this.currentTid = match[1] === 'begin' ? Number(match[2]) : undefined;
      if (match[1] === 'end') {
        this.onOutput = undefined;
        this.endedTid = Number(match[2]);
        if (this.heldResult?.tid === this.endedTid) this.releaseResult();
      }
    }
    // A marker cut in two by the transport: hold its start back until the rest arrives.
    const open = text.indexOf('\x1e', last);
    const cut = open !== -1 && text.length - open < 32 ? open : text.length;
    this.emitOutput(text.slice(last, cut));
    this.stderrCarry = text.slice(cut);
  }

  /**
   * The worker writes a trial's end marker to stderr before its result to stdout, but the two
   * pipes are read independently: the result waits (briefly) for the marker, so a trial's output
   * is all delivered before its result is.
   */
  private holdUntilOutput(tid: number, deliver: () => void): void {
    if (this.endedTid === tid) {
      deliver();
      return;
    }
    this.releaseResult();
    this.heldResult = { tid, deliver, timer: setTimeout(() => this.releaseResult(), RESULT_HOLD_MS) };
  }

  private releaseResult(): void {
    const held = this.heldResult;
    if (!held) return;
    this.heldResult = undefined;
    clearTimeout(held.timer);
    held.deliver();
  }

  private emitOutput(text: string): void {
    if (text.length === 0) return;
    if (this.currentTid !== undefined && this.onOutput) this.onOutput(text);
    else if (this.options.quietBeforeHello && (!this.hello || text.trim() === '')) return;
    else this.options.onStray(text);
  }
}

/**
 * What every worker transport (a spawned process, a forked one, a remote one over SSH) offers
 * through its channel: the requests and what the channel learnt. A transport adds how the worker
 * starts, how its bytes travel and how it is killed.
 */
export abstract class ChannelWorker {
  protected abstract readonly channel: WorkerChannel;

  get hello(): WorkerHello | undefined {
    return this.channel.hello;
  }

  get loadedStudy(): string | undefined {
    return this.channel.loadedStudy;
  }

  /** The last lines the worker wrote to stderr (for start-up failures). */
  get stderr(): string {
    return this.channel.stderr;
  }

  ready(): Promise<WorkerHello> {
    return this.channel.ready();
  }

  load(study: string, domain: string): Promise<TrialError | undefined> {
    return this.channel.load(study, domain);
  }

  evaluate(job: Pick<TrialJob, 'study' | 'tid' | 'spec' | 'env' | 'tracking' | 'onOutput'>): Promise<WorkerResult> {
    return this.channel.evaluate(job);
  }
}
