/**
 * The workspace's tracking server as a process of its own (`hyperopt-runner tracking-server`):
 * it outlives the command that started it, so the next run finds MLflow ready instead of paying
 * its start-up (seconds of imports and, on a new store, migrations), and it ends by itself after
 * an idle time. The CLI and the editor's background service share it; one daemon per store,
 * held by a lock file, found again from its record (serverRecord.ts).
 *
 * It listens on its own loopback port at once and forwards MLflow's API to the `mlflow server`
 * it supervises (MlflowServerSupervisor). So the tracking URI is known and valid from the first
 * moment: a request made while MLflow still starts waits for it instead of failing, a restarted
 * `mlflow server` keeps the same URI, and the daemon sees every request, which is what "idle"
 * means. Its own control paths are described in protocol/trackingServer.ts.
 *
 * The server is private to the user who started it: every MLflow request carries the record's API
 * token (`Authorization: Bearer`, which MLflow's clients send from MLFLOW_TRACKING_TOKEN) or the
 * cookie a one-time browser link sets; anything else is answered 401. That holds on this machine
 * and on an SSH host whose loopback port forwards here. The `mlflow server` behind listens on a Unix
 * socket in the private state folder (backendEndpoint.ts), so it cannot be reached around the front.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { Agent, createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { isAbsolute } from 'node:path';
import { readJournal } from '../journal/journal';
import { acquireLockFile } from '../lockFile';
import { messageOf } from '../errors';
import type {
  BrowserCode} from '../protocol/trackingServer';
import {
  BROWSER_CODE_TTL_MS,
  CONTROL_PREFIX,
  SyncRequest,
  TOKEN_HEADER,
  type BackendState,
  type TrackingServerState,
  type TrackingServerStatus,
} from '../protocol/trackingServer';
import { backendSocketPath, endpointClient, parseEndpoint, type BackendEndpoint } from './backendEndpoint';
import { MlflowClient } from './client';
import { removeTrackingRecord, trackingServerPaths, writeTrackingRecord, type TrackingServerPaths } from './serverRecord';
import { MlflowServerSupervisor } from './supervisor';
import { needsSync, syncStudy } from './sync';

/** How long a daemon nobody uses stays up. */
export const DEFAULT_IDLE_TIMEOUT_MS = 10 * 60_000;
/** A daemon whose MLflow could not start ends soon after its last user left: the next run tries anew. */
const FAILED_LINGER_MS = 5_000;
/** How long a stop waits for the runs of journals already handed over (under the stop command's 30 s wait). */
const STOP_SYNC_MS = 20_000;
/** The largest sync request body (journal paths). */
const SYNC_BODY_LIMIT = 1024 * 1024;
/** Hop-by-hop headers, which a proxy must not forward. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'te', 'trailer', 'upgrade']);

export interface TrackingDaemonOptions {
  readonly workspace: string;
  readonly storeUri: string;
  /** The interpreter that runs `mlflow server`. */
  readonly python: string;
  readonly idleTimeoutMs?: number;
  readonly env?: NodeJS.ProcessEnv;
  /** uvicorn workers of the `mlflow server` (default 1). */
  readonly workers?: number;
  readonly log?: (line: string) => void;
}

export type DaemonStart = { started: true; port: number } | { started: false; runningPid: number };

export class TrackingDaemon {
  readonly token = randomBytes(24).toString('hex');
  readonly apiToken = randomBytes(24).toString('hex');
  /** The value of the browser cookie; a browser gets it only through a one-time code. */
  private readonly browserSecret = randomBytes(24).toString('hex');
  /** One-time browser codes and when each expires. */
  private readonly browserCodes = new Map<string, number>();
  readonly paths: TrackingServerPaths;
  /** Resolves with the reason once the daemon has stopped. */
  readonly stopped: Promise<string>;
  private resolveStopped!: (reason: string) => void;
  private readonly server: Server;
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 16 });
  private readonly startedAt = Date.now();
  private supervisor: MlflowServerSupervisor | undefined;
  private state: BackendState = 'starting';
  private message: string | undefined;
  private backend: BackendEndpoint | undefined;
  /** Requests waiting for MLflow to be ready (or to fail). */
  private held: Array<() => void> = [];
  private readonly leases = new Set<ServerResponse>();
  /** Answered once the daemon has stopped everything it runs. */
  private readonly stopWaiters: ServerResponse[] = [];
  /** Journals handed over by commands that ended before their runs were written, in order. */
  private readonly syncQueue: string[] = [];
  /** The loop writing the queued journals, while it runs. */
  private syncRun: Promise<void> | undefined;
  /** Set once a stop gives up on the journals still queued (`hyperopt-runner sync` writes them). */
  private abandonSyncs = false;
  private inFlight = 0;
  private idleTimer: NodeJS.Timeout | undefined;
  private idleUntil: number | undefined;
  private releaseLock: (() => void) | undefined;
  private stopping: Promise<void> | undefined;
  private port = 0;

  constructor(private readonly options: TrackingDaemonOptions) {
    this.paths = trackingServerPaths(options.workspace, options.storeUri);
    this.stopped = new Promise((resolve) => (this.resolveStopped = resolve));
    this.server = createServer((req, res) => this.handle(req, res));
    // Leases stay open for hours; no request or keep-alive timeout may end them.
    this.server.requestTimeout = 0;
    this.server.headersTimeout = 60_000;
    this.server.keepAliveTimeout = 30_000;
  }

  /** Takes the store's lock, listens and records itself, then starts MLflow behind it. */
  async start(): Promise<DaemonStart> {
    const lock = acquireLockFile(this.paths.lock);
    if ('heldBy' in lock) return { started: false, runningPid: lock.heldBy };
    this.releaseLock = lock.release;
    try {
      await new Promise<void>((resolve, reject) => {
        this.server.once('error', reject);
        this.server.listen(0, '127.0.0.1', () => resolve());
      });
    } catch (error) {
      lock.release();
      throw error;
    }
    const address = this.server.address();
    this.port = typeof address === 'object' && address ? address.port : 0;
    writeTrackingRecord(this.paths.record, {
      version: 2,
      pid: process.pid,
      port: this.port,
      token: this.token,
      apiToken: this.apiToken,
      storeUri: this.options.storeUri,
      python: this.options.python,
      startedAt: this.startedAt,
    });
    this.log(`listening on 127.0.0.1:${this.port} for ${this.options.storeUri}`);
    this.startBackend();
    this.checkIdle();
    return { started: true, port: this.port };
  }

  /** Ends every lease, stops MLflow (when this daemon owns it) and removes the record. */
  stop(reason: string): Promise<void> {
    this.stopping ??= (async () => {
      this.log(`stopping: ${reason}`);
      clearTimeout(this.idleTimer);
      await this.finishSyncs(STOP_SYNC_MS);
      this.state = 'failed';
      this.message = 'the tracking server is stopping';
      for (const lease of this.leases) lease.end();
      this.leases.clear();
      this.releaseHeld();
      await this.supervisor?.stop().catch((error: unknown) => this.log(`stopping mlflow: ${messageOf(error)}`));
      removeTrackingRecord(this.paths.record, process.pid);
      this.releaseLock?.();
      // Whoever asked learns that everything is down before the port closes.
      for (const waiter of this.stopWaiters.splice(0)) sendJson(waiter, 200, { stopped: true });
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => this.server.closeAllConnections(), 1_000);
        this.server.close(() => {
          clearTimeout(force);
          resolve();
        });
        this.server.closeIdleConnections();
      });
      this.agent.destroy();
      this.resolveStopped(reason);
    })();
    return this.stopping;
  }

  get status(): TrackingServerStatus {
    return {
      pid: process.pid,
      storeUri: this.options.storeUri,
      python: this.options.python,
      state: this.state,
      ...(this.message ? { message: this.message } : {}),
      ...(this.supervisor?.pid !== undefined ? { mlflowPid: this.supervisor.pid } : {}),
      leases: this.leases.size,
      startedAt: this.startedAt,
      ...(this.idleUntil !== undefined ? { idleUntil: this.idleUntil } : {}),
    };
  }

  // --- MLflow behind the daemon ------------------------------------------------------------------

  private startBackend(): void {
    const supervisor = new MlflowServerSupervisor({
      python: this.options.python,
      workspace: this.options.workspace,
      storeUri: this.options.storeUri,
      ownerLabel: 'tracking-server',
      fileStem: this.paths.mlflowStem,
      workers: this.options.workers,
      env: this.options.env,
      ...(process.platform !== 'win32' ? { socketPath: backendSocketPath(this.paths.stateDir, this.paths.mlflowStem) } : {}),
    });
    this.supervisor = supervisor;
    supervisor.onEvent((event) => {
      if (event.type === 'ready') {
        this.log(`mlflow server ${event.reused ? 'reused' : 'ready'} at ${event.uri} (pid ${event.pid}, ${event.startupMs} ms)`);
        this.backend = parseEndpoint(event.uri);
        this.setState('ready');
      } else if (event.type === 'restarting') {
        this.log(event.reason);
        this.setState('starting', `${event.reason}; restarting it`);
      } else if (event.type === 'error') {
        this.setState('failed', event.error.message);
      } else if (event.type === 'warning') {
        this.message = event.text;
        this.broadcast();
      } else if (event.type === 'exited') {
        this.log(`mlflow server (pid ${event.pid}) exited (${event.signal ?? event.code})`);
      }
    });
    supervisor.start().catch((error: unknown) => {
      if (this.stopping) return;
      this.setState('failed', messageOf(error));
    });
  }

  private setState(state: BackendState, message?: string): void {
    this.state = state;
    this.message = message;
    if (state !== 'starting') this.releaseHeld();
    if (state === 'failed') {
      this.log(`failed: ${message ?? 'unknown error'}`);
      // The next run starts a daemon of its own instead of reusing this failure.
      removeTrackingRecord(this.paths.record, process.pid);
    }
    this.broadcast();
    this.checkIdle();
  }

  private releaseHeld(): void {
    const held = this.held;
    this.held = [];
    for (const resume of held) resume();
  }

  // --- requests ----------------------------------------------------------------------------------

  private handle(req: IncomingMessage, res: ServerResponse): void {
    if (this.stopping) {
      res.setHeader('connection', 'close');
      sendJson(res, 424, { error_code: 'TEMPORARILY_UNAVAILABLE', message: "the workspace's tracking server is stopping" });
      return;
    }
    if (req.url?.startsWith(CONTROL_PREFIX)) {
      this.control(req, res);
      return;
    }
    if (!this.authorized(req)) {
      refuse(res, req);
      return;
    }
    this.inFlight += 1;
    this.checkIdle();
    let done = false;
    const finished = (): void => {
      if (done) return;
      done = true;
      this.inFlight -= 1;
      this.checkIdle();
    };
    res.once('close', finished);
    if (this.state === 'starting') this.held.push(() => this.forward(req, res));
    else this.forward(req, res);
  }

  private forward(req: IncomingMessage, res: ServerResponse): void {
    if (res.destroyed || res.writableEnded) return;
    if (this.state !== 'ready' || !this.backend) {
      sendJson(res, 424, {
        error_code: 'TEMPORARILY_UNAVAILABLE',
        message: `the workspace's MLflow server is not available (${this.message ?? this.state}); see ${this.paths.log}`,
      });
      return;
    }
    const headers: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (value !== undefined && !HOP_BY_HOP.has(name) && name !== 'authorization' && name !== 'cookie') headers[name] = value;
    }
    // The secrets stop here; other cookies of the page still reach MLflow.
    const cookies = otherCookies(req.headers.cookie, this.cookieName);
    if (cookies) headers.cookie = cookies;
    const where = this.backend.kind === 'socket' ? { socketPath: this.backend.path } : { host: this.backend.host, port: this.backend.port };
    const upstream = httpRequest(
      { ...where, method: req.method, path: req.url, headers, agent: this.agent },
      (answer) => {
        const back: Record<string, string | string[]> = {};
        for (const [name, value] of Object.entries(answer.headers)) {
          if (value !== undefined && !HOP_BY_HOP.has(name)) back[name] = value;
        }
        res.writeHead(answer.statusCode ?? 502, answer.statusMessage, back);
        answer.pipe(res);
      },
    );
    upstream.on('error', (error) => {
      if (!res.headersSent) sendJson(res, 502, { error_code: 'TEMPORARILY_UNAVAILABLE', message: `the MLflow server did not answer: ${error.message}` });
      else res.destroy();
    });
    res.once('close', () => {
      if (!upstream.writableEnded || !res.writableFinished) upstream.destroy();
    });
    req.pipe(upstream);
  }

  /** The API token as a bearer token, or the browser cookie. */
  private authorized(req: IncomingMessage): boolean {
    const header = req.headers.authorization;
    const bearer = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1] : undefined;
    if (bearer !== undefined) return sameSecret(bearer, this.apiToken);
    const cookie = cookieValue(req.headers.cookie, this.cookieName);
    return cookie !== undefined && sameSecret(cookie, this.browserSecret);
  }

  /** Per port: browsers send a 127.0.0.1 cookie to every port of the host. */
  private get cookieName(): string {
    return `hyperopt-runner-${this.port}`;
  }

  private control(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '').slice(CONTROL_PREFIX.length).split('?')[0] ?? '';
    if (path.startsWith('browser/') && req.method === 'GET') {
      this.openBrowser(req, res);
      return;
    }
    if (path === 'browser-code' && req.method === 'POST') {
      if (!this.authorized(req)) refuse(res, req);
      else this.issueBrowserCode(res);
      return;
    }
    const token = req.headers[TOKEN_HEADER];
    if (typeof token !== 'string' || !sameSecret(token, this.token)) {
      sendJson(res, 403, { error: 'the token does not match this tracking server record' });
      return;
    }
    if (path === 'lease' && req.method === 'GET') this.lease(res);
    else if (path === 'status' && req.method === 'GET') sendJson(res, 200, this.status);
    else if (path === 'stop' && req.method === 'POST') {
      this.stopWaiters.push(res);
      void this.stop('asked to stop');
    } else if (path === 'sync' && req.method === 'POST') this.acceptSync(req, res);
    else sendJson(res, 404, { error: `no such path ${req.url}` });
  }

  // --- the browser --------------------------------------------------------------------------------

  private issueBrowserCode(res: ServerResponse): void {
    const now = Date.now();
    for (const [code, expires] of this.browserCodes) if (expires <= now) this.browserCodes.delete(code);
    const code = randomBytes(24).toString('hex');
    this.browserCodes.set(code, now + BROWSER_CODE_TTL_MS);
    const answer: BrowserCode = { code, path: `${CONTROL_PREFIX}browser/${code}` };
    sendJson(res, 200, answer);
  }

  /**
   * `browser/<code>[/<route>]`: a one-time code (from `browser-code`) becomes the browser's cookie;
   * then on to MLflow's UI at `#/<route>`. No query or fragment in the link, which editors re-encode;
   * the redirect is relative, so it also works behind a proxy that serves the port under a path
   * prefix (VS Code's port forwarding, say).
   */
  private openBrowser(req: IncomingMessage, res: ServerResponse): void {
    const pathname = new URL(req.url ?? '/', 'http://localhost').pathname;
    const [code = '', ...route] = pathname.slice(`${CONTROL_PREFIX}browser/`.length).split('/');
    const expires = this.browserCodes.get(code);
    this.browserCodes.delete(code);
    if (expires === undefined || expires <= Date.now()) {
      sendText(res, 401, 'This link to the workspace\'s MLflow has been used or has expired. Open a new one with "Open in MLflow" in the editor or `hyperopt-runner tracking ui`.');
      return;
    }
    const safe = route.every((segment) => /^[\w.-]+$/.test(segment) && segment !== '.' && segment !== '..');
    res.writeHead(303, {
      location: `${'../'.repeat(pathname.split('/').length - 2)}${safe && route.length > 0 ? `#/${route.join('/')}` : ''}`,
      'set-cookie': `${this.cookieName}=${this.browserSecret}; Path=/; HttpOnly; SameSite=Strict`,
      'cache-control': 'no-store',
      'content-length': 0,
    });
    res.end();
  }

  private lease(res: ServerResponse): void {
    res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
    res.write(this.stateLine());
    this.leases.add(res);
    this.checkIdle();
    res.once('close', () => {
      this.leases.delete(res);
      this.checkIdle();
    });
  }

  private stateLine(): string {
    const message: TrackingServerState = {
      type: 'state',
      state: this.state,
      pid: process.pid,
      storeUri: this.options.storeUri,
      ...(this.message ? { message: this.message } : {}),
    };
    return JSON.stringify(message) + '\n';
  }

  private broadcast(): void {
    const line = this.stateLine();
    for (const lease of this.leases) lease.write(line);
  }

  // --- runs handed over ---------------------------------------------------------------------------

  private acceptSync(req: IncomingMessage, res: ServerResponse): void {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      body += chunk;
      if (body.length > SYNC_BODY_LIMIT) req.destroy();
    });
    req.on('end', () => {
      let parsed: ReturnType<typeof SyncRequest.safeParse>;
      try {
        parsed = SyncRequest.safeParse(JSON.parse(body));
      } catch {
        parsed = SyncRequest.safeParse(undefined);
      }
      if (!parsed.success || !parsed.data.journals.every((p) => isAbsolute(p))) {
        sendJson(res, 400, { error: 'expected {"journals": [absolute paths of .jsonl journals]}' });
        return;
      }
      for (const journal of parsed.data.journals) if (!this.syncQueue.includes(journal)) this.syncQueue.push(journal);
      sendJson(res, 202, { queued: this.syncQueue.length });
      void this.runSyncs();
    });
  }

  /**
   * Before MLflow stops: the runs of the journals already handed over are written, for at most
   * `boundMs` (new requests are refused meanwhile); what is left is named in the log.
   */
  private async finishSyncs(boundMs: number): Promise<void> {
    if (this.state !== 'ready' || (!this.syncRun && this.syncQueue.length === 0)) return;
    this.log(`writing the runs of ${this.syncQueue.length + (this.syncRun ? 1 : 0)} journal(s) before stopping`);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.syncRun, new Promise<void>((resolve) => (timer = setTimeout(resolve, boundMs)))]);
    clearTimeout(timer);
    this.abandonSyncs = true;
    const left = this.syncQueue.length + (this.syncRun ? 1 : 0);
    if (left > 0) this.log(`${left} journal(s) left for \`hyperopt-runner sync\`: ${this.syncQueue.join(', ')}`);
  }

  /** Writes the queued journals' missing runs one after another; the daemon is busy (not idle) meanwhile. */
  private runSyncs(): Promise<void> {
    this.syncRun ??= this.syncLoop().finally(() => (this.syncRun = undefined));
    return this.syncRun;
  }

  private nextSync(): string | undefined {
    return this.abandonSyncs ? undefined : this.syncQueue.shift();
  }

  private async syncLoop(): Promise<void> {
    this.inFlight += 1;
    this.checkIdle();
    try {
      for (let path = this.nextSync(); path !== undefined; path = this.nextSync()) {
        const uri = await this.backendReady();
        if (!uri) {
          this.log(`sync of ${path} left for later: ${this.message ?? 'mlflow is not available'}`);
          continue;
        }
        try {
          const study = readJournal(path);
          if (!needsSync(study)) continue;
          const { written } = await syncStudy(study, new MlflowClient({ ...endpointClient(uri), maxRetries: 2 }));
          this.log(`sync of ${path}: wrote ${written} run(s)`);
        } catch (error) {
          this.log(`sync of ${path} failed (\`hyperopt-runner sync\` writes it later): ${messageOf(error)}`);
        }
      }
    } finally {
      this.inFlight -= 1;
      this.checkIdle();
    }
  }

  /** The URI of the `mlflow server` once it answers, or undefined once it cannot. */
  private backendReady(): Promise<string | undefined> {
    return new Promise((resolve) => {
      const settle = (): boolean => {
        if (this.state === 'ready' && this.supervisor?.uri) resolve(this.supervisor.uri);
        else if (this.state === 'failed') resolve(undefined);
        else return false;
        return true;
      };
      if (!settle()) this.held.push(() => void settle());
    });
  }

  // --- idle --------------------------------------------------------------------------------------

  /** Arms the idle timer when nobody holds a lease and no request is in flight, else disarms it. */
  private checkIdle(): void {
    if (this.stopping) return;
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    this.idleUntil = undefined;
    if (this.leases.size > 0 || this.inFlight > 0) return;
    const wait = this.state === 'failed' ? FAILED_LINGER_MS : (this.options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS);
    this.idleUntil = Date.now() + wait;
    this.idleTimer = setTimeout(() => void this.stop(this.state === 'failed' ? 'mlflow could not start' : 'idle'), wait);
  }

  private log(line: string): void {
    this.options.log?.(line);
  }
}

function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** 401 for a request without the API token or the browser cookie: JSON for clients, a sentence for a browser. */
function refuse(res: ServerResponse, req: IncomingMessage): void {
  const message =
    "This workspace's MLflow server is private to the user who started it: clients send the apiToken of " +
    'its record (.hyperopt-runner/tracking-server.json) as MLFLOW_TRACKING_TOKEN, a browser opens it with ' +
    '"Open in MLflow" in the editor or `hyperopt-runner tracking ui`.';
  res.setHeader('www-authenticate', 'Bearer realm="hyperopt-runner"');
  if (/text\/html/.test(req.headers.accept ?? '')) sendText(res, 401, message);
  else sendJson(res, 401, { error_code: 'UNAUTHENTICATED', message });
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const at = part.indexOf('=');
    if (at > 0 && part.slice(0, at).trim() === name) return part.slice(at + 1).trim();
  }
  return undefined;
}

function otherCookies(header: string | undefined, name: string): string {
  return (header ?? '')
    .split(';')
    .map((part) => part.trim())
    .filter((part) => part.length > 0 && part.split('=')[0]?.trim() !== name)
    .join('; ');
}

function sendText(res: ServerResponse, status: number, text: string): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
