/**
 * One Python worker on a remote host, speaking the worker protocol over an SSH exec channel.
 *
 * Closing an SSH channel does not kill the process behind it, so the worker is started as the
 * leader of a process group of its own (sshd already makes an exec'd command a session
 * leader; the bootstrap calls setsid() when it is not) and reports that group's id before
 * anything else. A cancel kills the group from a second exec on the same connection: TERM,
 * then KILL after a grace period. If the connection itself is lost, the worker reads EOF on
 * its stdin and kills its own group.
 */
import type { ClientChannel } from 'ssh2';
import { InfrastructureError } from '../../../core/src/errors';
import { ChannelWorker, WorkerChannel } from '../workerChannel';
import type { SshConnection } from './connection';
import { shellQuote } from './shellQuote';

/** The first line a worker prints on its protocol stream: its process group id. */
const PGID_LINE = /^hr-pgid (\d+)$/;

/**
 * Python run with `-c` on the host: becomes a process group leader, reports the group id,
 * puts the runtime (argv[1]) and the script's code (argv[2]) first on sys.path and
 * PYTHONPATH, then runs the worker module in the same process.
 */
export const WORKER_BOOTSTRAP = [
  'import os, sys',
  'if os.getpgrp() != os.getpid(): os.setsid()',
  'extra = [p for p in sys.argv[1:3] if p]',
  'sys.path[0:0] = extra',
  'os.environ["PYTHONPATH"] = os.pathsep.join(extra + [p for p in [os.environ.get("PYTHONPATH")] if p])',
  'os.write(1, ("hr-pgid %d\\n" % os.getpgrp()).encode())',
  'sys.argv = [sys.argv[0]]',
  'import runpy',
  'runpy.run_module("hyperopt_runner.worker", run_name="__main__", alter_sys=True)',
].join('\n');

/**
 * A script for /bin/sh, run as one exec, that ends process groups as the local executor does:
 * TERM to each group, a wait (up to the grace) for the group leaders to exit, then KILL to
 * each group so no descendant survives. (Waiting on the leader rather than the whole group:
 * orphans that died but were not yet reaped still count as members.)
 */
export function killGroupScript(pgids: readonly number[], graceMs: number): string {
  const groups = pgids.filter((g) => Number.isInteger(g) && g > 1);
  if (groups.length === 0) return 'exit 0';
  const ticks = Math.max(0, Math.ceil(graceMs / 100));
  const list = groups.join(' ');
  return [
    `for g in ${list}; do kill -s TERM -- -$g 2>/dev/null; done`,
    'n=0',
    `while [ $n -lt ${ticks} ]; do`,
    `  alive=; for g in ${list}; do kill -s 0 $g 2>/dev/null && alive=1; done`,
    '  [ -z "$alive" ] && break',
    '  sleep 0.1; n=$((n+1))',
    'done',
    `for g in ${list}; do kill -s KILL -- -$g 2>/dev/null; done`,
    'exit 0',
  ].join('\n');
}

/** Every remote command runs under /bin/sh, whatever the user's login shell is. */
export function viaSh(script: string): string {
  return `exec /bin/sh -c ${shellQuote(script)}`;
}

export interface RemoteWorkerOptions {
  readonly connection: SshConnection;
  /** The full command line sent in the exec request. */
  readonly command: string;
  readonly slot: string;
  readonly startTimeoutMs?: number;
}

export class RemoteWorker extends ChannelWorker {
  private sshChannel: ClientChannel | undefined;
  protected readonly channel: WorkerChannel;
  private exitInfo: string | undefined;
  private exitCode: number | null = null;
  private killing: Promise<void> | undefined;
  private resolveExited!: (info: string) => void;
  private pgidWaiters: Array<(pgid: number | undefined) => void> = [];
  private closedOnce = false;
  readonly exited: Promise<string>;
  pgid: number | undefined;
  /** When the exec request was sent (for timings). */
  readonly startedAt = performance.now();

  constructor(
    private readonly options: RemoteWorkerOptions,
    onStray: (text: string) => void,
  ) {
    super();
    this.exited = new Promise((resolve) => (this.resolveExited = resolve));
    this.channel = new WorkerChannel({
      slot: options.slot,
      write: (text) => {
        if (!this.alive || !this.sshChannel) return;
        try {
          this.sshChannel.write(text);
        } catch {
          // The channel closed under us; the close handler reports it.
        }
      },
      onStray,
      startTimeoutMs: options.startTimeoutMs,
      onStartTimeout: () => void this.kill(0),
      quietBeforeHello: true,
    });
    options.connection.openExec(options.command).then(
      (channel) => this.attach(channel),
      (error: Error) => this.onExit(`could not start: ${error.message}`),
    );
  }

  private attach(channel: ClientChannel): void {
    if (this.exitInfo !== undefined) {
      channel.close();
      return;
    }
    this.sshChannel = channel;
    channel.setEncoding('utf8');
    channel.stderr.setEncoding('utf8');
    channel.on('data', (chunk: string) => this.channel.feedStdout(chunk, (line) => this.takeGroupId(line)));
    channel.stderr.on('data', (chunk: string) => this.channel.feedStderr(chunk));
    channel.on('error', () => undefined);
    channel.on('exit', (code: number | null, signal?: string) => {
      this.exitCode = code;
      this.exitInfo ??= signal ? `killed by ${signal}` : `exit code ${code}`;
    });
    channel.on('close', () => this.onExit(this.exitInfo ?? 'its channel closed'));
  }

  /** The bootstrap's first line is the process group id, before any protocol message. */
  private takeGroupId(line: string): boolean {
    if (this.pgid !== undefined) return false;
    const match = PGID_LINE.exec(line.trim());
    if (!match) return false;
    this.pgid = Number(match[1]);
    for (const waiter of this.pgidWaiters.splice(0)) waiter(this.pgid);
    return true;
  }

  private onExit(info: string): void {
    if (this.closedOnce) return;
    this.closedOnce = true;
    this.exitInfo ??= info;
    for (const waiter of this.pgidWaiters.splice(0)) waiter(this.pgid);
    const why = this.options.connection.alive ? this.exitInfo : `the connection was lost (${this.exitInfo})`;
    this.channel.end(new InfrastructureError(`worker on ${this.options.slot} ended: ${why}`, this.options.slot));
    this.resolveExited(this.exitInfo);
  }

  get alive(): boolean {
    return !this.closedOnce;
  }

  get connection(): SshConnection {
    return this.options.connection;
  }

  /** The exit status the remote command reported (127: interpreter not found). */
  get code(): number | null {
    return this.exitCode;
  }

  /** When the hello arrived (for timings). */
  get helloAt(): number | undefined {
    return this.channel.helloAt;
  }

  /** Resolves with the process group id once the worker reported it (undefined if it died first). */
  groupId(): Promise<number | undefined> {
    if (this.pgid !== undefined || !this.alive) return Promise.resolve(this.pgid);
    return new Promise((resolve) => this.pgidWaiters.push(resolve));
  }

  /**
   * Kills the worker's process group on the host and waits (bounded) for its channel to close.
   * Safe to call more than once.
   */
  kill(graceMs = 2000): Promise<void> {
    this.killing ??= (async () => {
      const connection = this.options.connection;
      const pgid = await Promise.race([this.groupId(), delay(graceMs + 2000).then(() => undefined)]);
      if (pgid !== undefined && connection.alive) {
        await connection.exec(viaSh(killGroupScript([pgid], graceMs)), { timeoutMs: graceMs + 5000 }).catch(() => undefined);
      }
      this.sshChannel?.close();
      if (!connection.alive) this.onExit('the connection was lost');
      await Promise.race([this.exited, delay(2000)]);
      this.onExit('killed');
    })();
    return this.killing;
  }

  /** Asks the worker to exit and closes its stdin (EOF ends it as well). */
  shutdown(): void {
    this.channel.send({ type: 'shutdown' });
    try {
      this.sshChannel?.end();
    } catch {
      // Already closed.
    }
  }
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
