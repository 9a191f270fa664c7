/**
 * A warm worker forked from the run's fork server. It speaks the worker protocol over one
 * loopback connection and writes its output (fds 1 and 2) to another; the fork server reaps it
 * and reports its exit. To its slot it is the same as a spawned WorkerProcess.
 */
import type { Socket } from 'node:net';
import { StringDecoder } from 'node:string_decoder';
import { InfrastructureError } from '../../../core/src/errors';
import { killGroup } from '../../../core/src/processTree';
import { describeExit, requestEnv, type ForkedChild, type ForkServer } from '../../../core/src/python/forkServer';
import { ChannelWorker, WorkerChannel } from '../workerChannel';
import type { LocalWorker } from './workerProcess';
import { newWorkerToken, type WorkerSockets } from './workerSockets';

export interface ForkedWorkerOptions {
  readonly server: ForkServer;
  /** Where the worker connects back to. */
  readonly sockets: WorkerSockets;
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
  readonly slot: string;
  readonly startTimeoutMs?: number;
}

export class ForkedWorker extends ChannelWorker implements LocalWorker {
  readonly exited: Promise<string>;
  protected readonly channel: WorkerChannel;
  private readonly child: Promise<ForkedChild | undefined>;
  private readonly stopExpecting: () => void;
  private forkedPid: number | undefined;
  private leaderExited = false;
  private serverGone = false;
  private protocol: Socket | undefined;
  private output: Socket | undefined;
  /** Messages written before the protocol connection arrived, and whether it is to be ended. */
  private readonly unsent: string[] = [];
  private endWhenConnected = false;
  private exitInfo: string | undefined;
  private finish!: (info: string, message: string) => void;
  private killing: Promise<void> | undefined;
  private readonly slot: string;

  constructor(options: ForkedWorkerOptions, onStray: (text: string) => void) {
    super();
    const { slot } = options;
    this.slot = slot;
    this.channel = new WorkerChannel({ slot, write: (text) => this.write(text), onStray, startTimeoutMs: options.startTimeoutMs });
    const token = newWorkerToken();
    this.stopExpecting = options.sockets.expect(token, {
      protocol: (socket, rest) => this.onProtocol(socket, rest),
      output: (socket, rest) => this.onOutput(socket, rest),
    });
    this.exited = new Promise((resolve) => {
      this.finish = (info, message) => {
        if (this.exitInfo !== undefined) return;
        this.exitInfo = info;
        this.stopExpecting();
        this.channel.end(new InfrastructureError(message, slot));
        // Closed by the peer's end; a descendant that escaped the group must not keep the runner alive.
        this.protocol?.unref();
        this.output?.unref();
        resolve(info);
      };
    });
    this.child = options.sockets
      .listen()
      .then((port) => options.server.fork({ role: 'worker', env: requestEnv(options.env), cwd: options.cwd, connect: { host: '127.0.0.1', port, token } }))
      .then(
        (child) => {
          this.forkedPid = child.pid;
          void child.exited.then((exit) => {
            this.leaderExited = true;
            const info = describeExit(exit);
            this.finish(info, `worker on ${slot} ${info}`);
          });
          return child;
        },
        (error: unknown) => {
          const why = error instanceof Error ? error.message : String(error);
          this.finish(why, `worker could not start: ${why}`);
          return undefined;
        },
      );
    void options.server.gone.then(() => {
      this.serverGone = true;
      // No exit report can come now: the worker has ended once its protocol connection has.
      if (!this.protocol || this.protocol.closed) this.finish('lost with the fork server', `worker on ${slot} was lost with the fork server`);
    });
  }

  get pid(): number | undefined {
    return this.forkedPid;
  }

  get alive(): boolean {
    return this.exitInfo === undefined;
  }


  /** Kills the worker's process group (TERM, KILL after the grace); resolves once its exit is known. */
  kill(graceMs?: number): Promise<void> {
    this.killing ??= this.forkedPid === undefined && this.alive ? this.killUnborn() : this.killForked(graceMs);
    return this.killing;
  }

  private async killForked(graceMs?: number): Promise<void> {
    const child = await this.child;
    if (child) await killGroup({ pid: child.pid, exited: this.leaderExited, exit: this.exited }, graceMs);
    await this.exited;
  }

  /**
   * Not forked yet (the server may still be importing): it has run nothing, so closing need not
   * wait for it. Should the fork still happen, the child is killed as soon as its pid is known.
   */
  private async killUnborn(): Promise<void> {
    this.finish('stopped before it started', `worker on ${this.slot} was stopped before it started`);
    void this.child.then((child) => child && killGroup({ pid: child.pid, exited: false, exit: child.exited }, 0));
  }

  shutdown(): void {
    this.channel.send({ type: 'shutdown' });
    if (this.protocol) this.protocol.end();
    else this.endWhenConnected = true;
  }

  private write(text: string): void {
    if (!this.alive) return;
    if (this.protocol) this.protocol.write(text);
    else this.unsent.push(text);
  }

  private onProtocol(socket: Socket, rest: Buffer): void {
    if (!this.alive) {
      socket.destroy();
      return;
    }
    this.protocol = socket;
    const decoder = new StringDecoder('utf8');
    const feed = (chunk: Buffer): void => {
      const text = decoder.write(chunk);
      if (text) this.channel.feedStdout(text);
    };
    feed(rest);
    socket.on('data', feed);
    socket.on('close', () => {
      if (this.serverGone) this.finish('lost with the fork server', `worker on ${this.slot} closed its connection`);
    });
    for (const text of this.unsent.splice(0)) socket.write(text);
    if (this.endWhenConnected) socket.end();
  }

  private onOutput(socket: Socket, rest: Buffer): void {
    if (!this.alive) {
      socket.destroy();
      return;
    }
    this.output = socket;
    const decoder = new StringDecoder('utf8');
    const feed = (chunk: Buffer): void => {
      const text = decoder.write(chunk);
      if (text) this.channel.feedStderr(text);
    };
    feed(rest);
    socket.on('data', feed);
  }
}
