/**
 * Where the embedded `mlflow server` listens: a Unix socket in the workspace's private state
 * folder (only its owner can enter the folder, so only its owner can connect), or, where Unix
 * sockets are not available to uvicorn (Windows), a loopback port.
 *
 * An endpoint is written as a URI: `http://127.0.0.1:<port>` or `unix:<socket path>`. The
 * tracking server daemon in front of it is what every client talks to (serverDaemon.ts); only the
 * daemon and the supervisor reach the endpoint itself.
 */
import { createHash } from 'node:crypto';
import { Agent, request as httpRequest } from 'node:http';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { ensurePrivateDir } from '../privateDir';

const UNIX_PREFIX = 'unix:';
/** Below the 104 (macOS) and 108 (Linux) bytes a socket path may have, with room to spare. */
const SOCKET_PATH_LIMIT = 100;

export type BackendEndpoint = { kind: 'socket'; path: string } | { kind: 'tcp'; host: string; port: number };

export function endpointUri(endpoint: BackendEndpoint): string {
  return endpoint.kind === 'socket' ? `${UNIX_PREFIX}${endpoint.path}` : `http://${endpoint.host}:${endpoint.port}`;
}

export function parseEndpoint(uri: string): BackendEndpoint {
  if (uri.startsWith(UNIX_PREFIX)) return { kind: 'socket', path: uri.slice(UNIX_PREFIX.length) };
  const url = new URL(uri);
  return { kind: 'tcp', host: url.hostname, port: Number(url.port) };
}

/**
 * The socket for the server of `stem` in `stateDir`; when that path is too long for a socket, one
 * in a private folder of this user under the system's temporary folder, named after the state folder.
 */
export function backendSocketPath(stateDir: string, stem: string): string {
  const beside = join(stateDir, `${stem}.sock`);
  if (Buffer.byteLength(beside) <= SOCKET_PATH_LIMIT) return beside;
  const folder = join(tmpdir(), `hyperopt-runner-${userInfo().uid}`);
  ensurePrivateDir(folder);
  return join(folder, `${createHash('sha256').update(beside).digest('hex').slice(0, 16)}.sock`);
}

/** What an `MlflowClient` needs to reach an endpoint: its base URI and, for a socket, a fetch over it. */
export function endpointClient(uri: string): { trackingUri: string; fetch?: typeof fetch } {
  const endpoint = parseEndpoint(uri);
  if (endpoint.kind === 'tcp') return { trackingUri: uri };
  return { trackingUri: 'http://localhost', fetch: unixSocketFetch(endpoint.path) };
}

const agents = new Map<string, Agent>();

/**
 * The part of `fetch` the MLflow client and the health probe use (method, headers, a string body,
 * a signal; status, headers and the body of the answer), sent over a Unix socket. The URL's host is
 * only the Host header.
 */
export function unixSocketFetch(socketPath: string): typeof fetch {
  let agent = agents.get(socketPath);
  if (!agent) {
    agent = new Agent({ keepAlive: true, maxSockets: 8 });
    agents.set(socketPath, agent);
  }
  const pooled = agent;
  const socketFetch = (input: string | URL | Request, init: RequestInit = {}): Promise<Response> =>
    new Promise<Response>((resolve, reject) => {
      const url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
      const headers: Record<string, string> = {};
      new Headers(init.headers).forEach((value, name) => (headers[name] = value));
      const body = typeof init.body === 'string' ? init.body : undefined;
      if (body !== undefined) headers['content-length'] = String(Buffer.byteLength(body));
      const signal = init.signal ?? undefined;
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      const req = httpRequest({ socketPath, agent: pooled, method: init.method ?? 'GET', path: url.pathname + url.search, headers: { host: url.host, ...headers } }, (answer) => {
        const chunks: Buffer[] = [];
        answer.on('data', (chunk: Buffer) => chunks.push(chunk));
        answer.once('error', reject);
        answer.once('end', () => {
          signal?.removeEventListener('abort', onAbort);
          const status = answer.statusCode ?? 502;
          const back = new Headers();
          for (const [name, value] of Object.entries(answer.headers)) {
            if (typeof value === 'string') back.set(name, value);
            else if (Array.isArray(value)) for (const item of value) back.append(name, item);
          }
          const empty = status === 204 || status === 304 || (status >= 100 && status < 200);
          resolve(new Response(empty ? null : Buffer.concat(chunks), { status, statusText: answer.statusMessage, headers: back }));
        });
      });
      const onAbort = (): void => {
        req.destroy(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      req.once('error', (error) => {
        signal?.removeEventListener('abort', onAbort);
        reject(signal?.aborted ? signal.reason : error);
      });
      req.end(body);
    });
  return socketFetch as typeof fetch;
}
