/**
 * The workspace's state folder (`.hyperopt-runner`) holds the tracking store, its server's
 * records (port and tokens) and the journals: only its owner may enter it, whatever the umask.
 */
import { chmodSync, mkdirSync, statSync } from 'node:fs';

/** Creates the folder (and its parents) for the owner alone; narrows one that exists wider. */
export function ensurePrivateDir(path: string): void {
  mkdirSync(path, { recursive: true, mode: 0o700 });
  try {
    if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o700);
  } catch {
    // Not ours to change (another owner): the files inside keep their own 0600.
  }
}

/** Narrows a file the owner's umask left readable by others (MLflow's SQLite store); absent is fine. */
export function makePrivateFile(path: string): void {
  try {
    if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o600);
  } catch {
    // absent, or not ours
  }
}
