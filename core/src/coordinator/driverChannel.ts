/** The coordinator's end of the driver channel: a loopback TCP server that admits token holders. */
import { createServer, type Server, type Socket } from 'node:net';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { PROTOCOL_VERSION } from '../protocol/common';
import type { CoordinatorToDriver} from '../protocol/driver';
import { DriverToCoordinator, DriverHello } from '../protocol/driver';
import { decodeMessage, encodeMessage, LineSplitter } from '../protocol/ndjson';
import { Emitter } from '../events';

export function newToken(): string {
  return randomBytes(32).toString('hex');
}

function tokenMatches(expected: string, given: string): boolean {
  const a = Buffer.from(expected);
  const b = Buffer.from(given);
  return a.length === b.length && timingSafeEqual(a, b);
}

export type DriverEvent =
  | { type: 'message'; message: DriverToCoordinator }
  | { type: 'invalid'; error: string }
  | { type: 'closed' };

/** One authenticated driver connection. */
export class DriverConnection {
  readonly events = new Emitter<DriverEvent>();
  private closed = false;

  constructor(
    private readonly socket: Socket,
    readonly hello: DriverHello,
  ) {
    socket.setNoDelay(true);
  }

  /** Called by the server once the hello was accepted, with what arrived after it. */
  attach(lines: LineSplitter, early: readonly string[]): void {
    const dispatch = (line: string): void => {
      const decoded = decodeMessage(line, DriverToCoordinator);
      this.events.emit(decoded.ok ? { type: 'message', message: decoded.message } : { type: 'invalid', error: decoded.error });
    };
    // Listeners subscribe synchronously after the connection is announced; replay on the next tick.
    if (early.length > 0) setImmediate(() => early.forEach(dispatch));
    this.socket.on('data', (chunk: string) => lines.push(chunk, dispatch));
    this.socket.on('close', () => {
      this.closed = true;
      this.events.emit({ type: 'closed' });
    });
    this.socket.on('error', () => undefined);
  }

  send(message: CoordinatorToDriver): void {
    if (this.closed) return;
    // Outgoing messages are built by the engine from typed values; validate in tests, not here.
    this.socket.write(encodeMessage(message));
  }

  close(): void {
    this.socket.end();
  }
}

export class DriverServer {
  private server: Server | undefined;
  readonly connections = new Emitter<DriverConnection>();
  readonly rejected = new Emitter<string>();

  constructor(readonly token: string) {}

  listen(): Promise<number> {
    const server = createServer((socket) => this.admit(socket));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const address = server.address();
        resolve(typeof address === 'object' && address ? address.port : 0);
      });
    });
  }

  /** The first line must be a hello carrying the token; anything else closes the socket unanswered. */
  private admit(socket: Socket): void {
    socket.setEncoding('utf8');
    const lines = new LineSplitter();
    let decided = false;
    const timer = setTimeout(() => reject('no hello within 30 s'), 30_000);
    const reject = (why: string): void => {
      if (decided) return;
      decided = true;
      clearTimeout(timer);
      this.rejected.emit(why);
      socket.destroy();
    };
    const onData = (chunk: string): void => {
      if (decided) return;
      const received: string[] = [];
      lines.push(chunk, (line) => received.push(line));
      const first = received.shift();
      if (first === undefined) {
        if (lines.pendingLength > 64 * 1024) reject('oversized hello');
        return;
      }
      const decoded = decodeMessage(first, DriverHello);
      if (!decoded.ok) return reject(`bad hello: ${decoded.error}`);
      if (!tokenMatches(this.token, decoded.message.token)) return reject('wrong token');
      if (decoded.message.protocol !== PROTOCOL_VERSION) {
        return reject(`driver speaks protocol ${decoded.message.protocol}, coordinator ${PROTOCOL_VERSION}`);
      }
      decided = true;
      clearTimeout(timer);
      socket.off('data', onData);
      const connection = new DriverConnection(socket, decoded.message);
      connection.send({ type: 'welcome', protocol: PROTOCOL_VERSION });
      this.connections.emit(connection);
      connection.attach(lines, received);
    };
    socket.on('data', onData);
    socket.on('error', () => undefined);
  }

  close(): void {
    this.server?.close();
  }
}
