/**
 * The loopback server that forked workers connect back to. Each worker opens two connections,
 * its protocol stream and its output (fds 1 and 2), and starts each with one line naming its
 * token and which of the two it is. Anything else is closed without a word.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { WorkerSocketOpening } from '../../../core/src/protocol/forkServer';
import { decodeMessage } from '../../../core/src/protocol/ndjson';

/** The first line is short; a peer that sends more, or nothing for this long, is refused. */
const OPENING_LIMIT = 512;
const OPENING_TIMEOUT_MS = 10_000;

export type WorkerSocketChannel = WorkerSocketOpening['channel'];

/** Called with a worker's connection and whatever it sent after its first line. */
export type SocketHandler = (socket: Socket, rest: Buffer) => void;

interface Expected {
  readonly token: Buffer;
  readonly handlers: Record<WorkerSocketChannel, SocketHandler>;
  readonly claimed: Set<WorkerSocketChannel>;
}

export function newWorkerToken(): string {
  return randomBytes(32).toString('hex');
}

export class WorkerSockets {
  private readonly server: Server = createServer((socket) => this.accept(socket));
  private readonly expected = new Set<Expected>();
  private listening: Promise<number> | undefined;
  private closed = false;

  /** Starts listening (once) on a free loopback port; resolves with the port. */
  listen(): Promise<number> {
    this.listening ??= new Promise<number>((resolve, reject) => {
      if (this.closed) {
        reject(new Error('the worker sockets are closed'));
        return;
      }
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', () => {
        const { port } = this.server.address() as AddressInfo;
        if (this.closed) this.server.close();
        resolve(port);
      });
    });
    return this.listening;
  }

  /** Waits for a worker's two connections; the returned function stops waiting. */
  expect(token: string, handlers: Record<WorkerSocketChannel, SocketHandler>): () => void {
    const entry: Expected = { token: Buffer.from(token), handlers, claimed: new Set() };
    this.expected.add(entry);
    return () => this.expected.delete(entry);
  }

  close(): void {
    this.closed = true;
    this.expected.clear();
    if (this.server.listening) this.server.close();
  }

  private accept(socket: Socket): void {
    socket.setNoDelay(true);
    socket.on('error', () => socket.destroy());
    let head = Buffer.alloc(0);
    const timer = setTimeout(() => socket.destroy(), OPENING_TIMEOUT_MS);
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const newline = head.indexOf(0x0a);
      if (newline === -1) {
        if (head.length > OPENING_LIMIT) refuse();
        return;
      }
      socket.off('data', onData);
      clearTimeout(timer);
      const decoded = decodeMessage(head.subarray(0, newline).toString('utf8'), WorkerSocketOpening);
      const entry = decoded.ok ? this.find(decoded.message.token) : undefined;
      if (!decoded.ok || !entry || entry.claimed.has(decoded.message.channel)) {
        socket.destroy();
        return;
      }
      const channel = decoded.message.channel;
      entry.claimed.add(channel);
      if (entry.claimed.size === 2) this.expected.delete(entry);
      // The handler attaches its own 'data' listener now, before the next read is delivered.
      entry.handlers[channel](socket, head.subarray(newline + 1));
    };
    const refuse = (): void => {
      clearTimeout(timer);
      socket.destroy();
    };
    socket.on('data', onData);
    socket.on('close', () => clearTimeout(timer));
  }

  /** The expected worker with this token, compared in constant time against every one. */
  private find(token: string): Expected | undefined {
    const given = Buffer.from(token);
    let found: Expected | undefined;
    for (const entry of this.expected) {
      if (entry.token.length === given.length && timingSafeEqual(entry.token, given)) found = entry;
    }
    return found;
  }
}
