/**
 * Where a workspace's tracking server is recorded. One daemon per store (see serverDaemon.ts):
 * `.hyperopt-runner/tracking-server.json` for the default store, `tracking-server-<hash>.json`
 * for any other, mode 0600, with its lock and log beside it. The daemon's `mlflow server` keeps
 * the supervisor's own files under a matching stem (`mlflow-server[-<hash>]`).
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as z from 'zod';
import { ensurePrivateDir } from '../privateDir';
import { defaultStoreUri, STATE_DIR } from './supervisor';

export const TrackingServerRecord = z.object({
  version: z.literal(2),
  /** The daemon's pid (it leads its own process group). */
  pid: z.number().int(),
  /** Its loopback port: the tracking URI every process gets, and its control paths. */
  port: z.number().int(),
  /** Proves a client read this private file: required by the control paths. */
  token: z.string(),
  /**
   * Required by the MLflow API behind it (`Authorization: Bearer`): what drivers and workers get as
   * MLFLOW_TRACKING_TOKEN, here and on SSH hosts, without the power to stop the server.
   */
  apiToken: z.string(),
  storeUri: z.string(),
  python: z.string(),
  startedAt: z.number(),
});
export type TrackingServerRecord = z.infer<typeof TrackingServerRecord>;

export interface TrackingServerPaths {
  readonly stateDir: string;
  readonly record: string;
  readonly lock: string;
  readonly log: string;
  /** File stem for the supervisor of the daemon's `mlflow server`. */
  readonly mlflowStem: string;
}

export function trackingServerPaths(workspace: string, storeUri: string): TrackingServerPaths {
  const stateDir = join(resolve(workspace), STATE_DIR);
  const suffix = storeUri === defaultStoreUri(workspace) ? '' : `-${createHash('sha256').update(storeUri).digest('hex').slice(0, 10)}`;
  return {
    stateDir,
    record: join(stateDir, `tracking-server${suffix}.json`),
    lock: join(stateDir, `tracking-server${suffix}.lock`),
    log: join(stateDir, `tracking-server${suffix}.log`),
    mlflowStem: `mlflow-server${suffix}`,
  };
}

export function readTrackingRecord(path: string): TrackingServerRecord | undefined {
  try {
    const parsed = TrackingServerRecord.safeParse(JSON.parse(readFileSync(path, 'utf8')));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** A record an earlier version's daemon wrote (no API token: its MLflow is open to anyone), to stop it. */
export function readEarlierRecord(path: string): Pick<TrackingServerRecord, 'pid' | 'port' | 'token'> | undefined {
  try {
    const parsed = TrackingServerRecord.pick({ pid: true, port: true, token: true })
      .extend({ version: z.literal(1) })
      .safeParse(JSON.parse(readFileSync(path, 'utf8')));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** Every tracking server recorded in a workspace (one per store). */
export function listTrackingRecords(workspace: string): Array<{ path: string; record: TrackingServerRecord }> {
  const dir = join(resolve(workspace), STATE_DIR);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .filter((name) => /^tracking-server(-[0-9a-f]+)?\.json$/.test(name))
    .flatMap((name) => {
      const record = readTrackingRecord(join(dir, name));
      return record ? [{ path: join(dir, name), record }] : [];
    });
}

/** Written to a private temporary file, then renamed: a reader never sees half a record. */
export function writeTrackingRecord(path: string, record: TrackingServerRecord): void {
  ensurePrivateDir(resolve(path, '..'));
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, JSON.stringify(record, null, 2) + '\n', { mode: 0o600 });
  renameSync(temporary, path);
}

/** Removes the record when it still describes daemon `pid`. */
export function removeTrackingRecord(path: string, pid: number): void {
  const current = readTrackingRecord(path);
  if (current === undefined || current.pid === pid) rmSync(path, { force: true });
}
