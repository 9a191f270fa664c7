/**
 * The workspace tracking server's own paths, beside the MLflow API it fronts (see
 * core/src/mlflow/serverDaemon.ts). Every request to them carries the token of the server's
 * private record in the `x-hyperopt-runner-token` header.
 *
 * - `GET  /_hyperopt-runner/lease`: held open while a client uses the server; the daemon writes
 *   one `TrackingServerState` line at once and one at every change. The server does not end while
 *   a lease is open.
 * - `GET  /_hyperopt-runner/status`: one `TrackingServerStatus`.
 * - `POST /_hyperopt-runner/stop`: the daemon stops its `mlflow server` and exits.
 * - `POST /_hyperopt-runner/sync` with a `SyncRequest`: the daemon writes what the journals named
 *   still lack in MLflow (as `hyperopt-runner sync` would), in the background; a command that
 *   ended before its runs were written hands them over so it need not wait.
 * - `POST /_hyperopt-runner/browser-code`, with the API token (`Authorization: Bearer`) instead of
 *   the record's token: one `BrowserCode`, valid once, for a short while.
 * - `GET  /_hyperopt-runner/browser/<code>[/<route>]`, without a token: what a browser opens; it
 *   sets the cookie that lets the browser use MLflow's UI and goes on to `#/<route>` of it.
 *
 * Every other path is MLflow's, and needs the API token or that cookie.
 */
import * as z from 'zod';

export const CONTROL_PREFIX = '/_hyperopt-runner/';
export const TOKEN_HEADER = 'x-hyperopt-runner-token';

/** `starting`: requests wait for MLflow; `ready`: they go through; `failed`: they are refused at once. */
export const BackendState = z.enum(['starting', 'ready', 'failed']);
export type BackendState = z.infer<typeof BackendState>;

export const TrackingServerState = z.object({
  type: z.literal('state'),
  state: BackendState,
  pid: z.number().int(),
  storeUri: z.string(),
  /** Why it failed, or what the user should know (a file store in maintenance mode, say). */
  message: z.string().optional(),
});
export type TrackingServerState = z.infer<typeof TrackingServerState>;

export const TrackingServerStatus = z.object({
  pid: z.number().int(),
  storeUri: z.string(),
  python: z.string(),
  state: BackendState,
  message: z.string().optional(),
  /** The `mlflow server` process behind it, once it runs. */
  mlflowPid: z.number().int().optional(),
  leases: z.number().int(),
  startedAt: z.number(),
  /** When it ends if nobody uses it meanwhile (absent while in use). */
  idleUntil: z.number().optional(),
});
export type TrackingServerStatus = z.infer<typeof TrackingServerStatus>;

export const SyncRequest = z.object({ journals: z.array(z.string().regex(/\.jsonl$/)).max(10_000) });
export type SyncRequest = z.infer<typeof SyncRequest>;

/** The first line a daemon writes on its handshake pipe (fd 3) to the process that started it. */
export const DaemonHandshake = z.union([
  z.object({ started: z.literal(true), pid: z.number().int(), port: z.number().int() }),
  /** Another daemon already serves this store. */
  z.object({ started: z.literal(false), runningPid: z.number().int() }),
]);
export type DaemonHandshake = z.infer<typeof DaemonHandshake>;

/** How long a browser code can be used (once). */
export const BROWSER_CODE_TTL_MS = 60_000;

export const BrowserCode = z.object({
  code: z.string(),
  /** The path (with the code) a browser opens on the server's address. */
  path: z.string(),
});
export type BrowserCode = z.infer<typeof BrowserCode>;
