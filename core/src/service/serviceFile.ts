/**
 * Where a workspace's background service is recorded: `.hyperopt-runner/service.json` (mode 0600:
 * pid, port, token, version) and `.hyperopt-runner/service.lock` (held by the one service of the
 * workspace from its start to its exit), with its log beside them.
 */
import { existsSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { STATE_DIR } from '../mlflow/supervisor';
import { acquireLockFile, pidAlive } from '../lockFile';
import { ensurePrivateDir } from '../privateDir';
import { ServiceFile } from '../protocol/control';

export { pidAlive };

export function stateDir(workspace: string): string {
  return join(resolve(workspace), STATE_DIR);
}

export function serviceFilePath(workspace: string): string {
  return join(stateDir(workspace), 'service.json');
}

export function serviceLockPath(workspace: string): string {
  return join(stateDir(workspace), 'service.lock');
}

export function serviceLogPath(workspace: string): string {
  return join(stateDir(workspace), 'service.log');
}

/** The record, or undefined when it is missing or unreadable. */
export function readServiceFile(workspace: string): ServiceFile | undefined {
  try {
    const parsed = ServiceFile.safeParse(JSON.parse(readFileSync(serviceFilePath(workspace), 'utf8')));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** Written to a private temporary file first, then renamed: a reader never sees half a record. */
export function writeServiceFile(workspace: string, record: ServiceFile): void {
  const path = serviceFilePath(workspace);
  ensurePrivateDir(dirname(path));
  const temp = `${path}.${process.pid}.tmp`;
  writeFileSync(temp, JSON.stringify(record, null, 2) + '\n', { mode: 0o600 });
  renameSync(temp, path);
}

/** Removes the record when it is still the one of `pid`. */
export function removeServiceFile(workspace: string, pid: number): void {
  const current = readServiceFile(workspace);
  if (current === undefined || current.pid === pid) rmSync(serviceFilePath(workspace), { force: true });
}

/**
 * Takes the workspace's service lock; returns a release function, or the pid of the live service
 * that holds it. A lock left by a dead process is taken over.
 */
export function acquireServiceLock(workspace: string): { release: () => void } | { heldBy: number } {
  return acquireLockFile(serviceLockPath(workspace));
}

/**
 * The build the service and its clients compare: the package version and the modification time of
 * the bundle that runs (so a rebuilt extension replaces a service started from the old build).
 */
export function buildVersion(entry: string | undefined): string {
  let version = '0.0.0';
  let dir = entry ? dirname(resolve(entry)) : __dirname;
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        const parsed = JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string; version?: string };
        if (parsed.name === 'hyperopt-runner' && parsed.version) {
          version = parsed.version;
          break;
        }
      } catch {
        // keep looking
      }
    }
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  let stamp = '';
  try {
    if (entry) stamp = `+${Math.round(statSync(entry).mtimeMs)}`;
  } catch {
    // no stamp
  }
  return `${version}${stamp}`;
}
