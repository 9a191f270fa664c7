/**
 * What travels to a host before its workers start: the runtime package (once per version, in a
 * cache directory named by the hash of its files) and the script's folder's Python files (once
 * per run, so objectives that cloudpickle pickled by reference can be imported remotely).
 */
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync, existsSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import type { SFTPWrapper } from 'ssh2';
import { runtimeSourceDir } from '../../../core/src/runtimePath';

export interface Bundle {
  /** Paths relative to the bundle's root, with forward slashes. */
  readonly files: readonly { readonly path: string; readonly data: Buffer }[];
  readonly bytes: number;
}

export interface RuntimeBundle extends Bundle {
  /** First 16 hex digits of the SHA-256 over every file's path and content. */
  readonly hash: string;
}

const bundles = new Map<string, RuntimeBundle>();

/** The runtime package (hyperopt_runner/...), hashed; read once per process. */
export function runtimeBundle(sourceDir: string = runtimeSourceDir()): RuntimeBundle {
  const cached = bundles.get(sourceDir);
  if (cached) return cached;
  const files: { path: string; data: Buffer }[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      if (entry.name === '__pycache__' || entry.name.endsWith('.pyc')) continue;
      const full = join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.isFile()) files.push({ path: relative(sourceDir, full).split(sep).join('/'), data: readFileSync(full) });
    }
  };
  walk(join(sourceDir, 'hyperopt_runner'));
  const hash = createHash('sha256');
  for (const file of files) hash.update(file.path).update('\0').update(file.data).update('\0');
  const bundle = { files, bytes: files.reduce((n, f) => n + f.data.length, 0), hash: hash.digest('hex').slice(0, 16) };
  bundles.set(sourceDir, bundle);
  return bundle;
}

/** Folders never shipped with a script's code: environments, caches, VCS and build output. */
const SKIP_DIRS = new Set(['__pycache__', 'node_modules', 'site-packages', 'venv', 'env', 'build', 'dist', 'mlruns', 'wandb']);

export const CODE_LIMITS = { files: 2000, bytes: 20 * 1024 * 1024, depth: 6 };

/**
 * The Python files of a script's folder and its subfolders (packages), skipping hidden
 * folders, virtual environments and caches. `truncated` says why it stopped early.
 */
export function codeBundle(dir: string, limits = CODE_LIMITS): Bundle & { truncated?: string } {
  const files: { path: string; data: Buffer }[] = [];
  let bytes = 0;
  let truncated: string | undefined;
  const walk = (folder: string, depth: number): void => {
    let entries;
    try {
      entries = readdirSync(folder, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      if (truncated) return;
      const full = join(folder, entry.name);
      if (entry.isDirectory()) {
        if (entry.name.startsWith('.') || SKIP_DIRS.has(entry.name) || depth >= limits.depth) continue;
        if (existsSync(join(full, 'pyvenv.cfg'))) continue;
        walk(full, depth + 1);
      } else if (entry.isFile() && entry.name.endsWith('.py')) {
        const size = statSync(full).size;
        if (files.length + 1 > limits.files || bytes + size > limits.bytes) {
          truncated = `more than ${limits.files} files or ${Math.round(limits.bytes / 1024 / 1024)} MB of Python in ${dir}`;
          return;
        }
        files.push({ path: relative(dir, full).split(sep).join('/'), data: readFileSync(full) });
        bytes += size;
      }
    }
  };
  walk(dir, 0);
  return { files, bytes, ...(truncated ? { truncated } : {}) };
}

// ---- SFTP, as promises ------------------------------------------------------------------------

export function sftpExists(sftp: SFTPWrapper, path: string): Promise<boolean> {
  return new Promise((resolve) => sftp.stat(path, (error) => resolve(!error)));
}

function sftpMkdir(sftp: SFTPWrapper, path: string): Promise<void> {
  return new Promise((resolve, reject) =>
    sftp.mkdir(path, { mode: 0o755 }, (error) => {
      if (!error) return resolve();
      // Already there (OpenSSH answers a generic failure): fine when it is a directory.
      sftp.stat(path, (statError, stats) => (!statError && stats.isDirectory() ? resolve() : reject(error)));
    }),
  );
}

export function sftpRealpath(sftp: SFTPWrapper, path: string): Promise<string> {
  return new Promise((resolve, reject) => sftp.realpath(path, (error, resolved) => (error ? reject(error) : resolve(resolved))));
}

/** `mkdir -p` for absolute paths: every missing component is created, parents first. */
export async function sftpMkdirs(sftp: SFTPWrapper, paths: readonly string[]): Promise<void> {
  const needed: string[] = [];
  for (const path of paths) {
    const parts = path.split('/').filter((p) => p.length > 0);
    for (let i = 1; i <= parts.length; i++) {
      const dir = `/${parts.slice(0, i).join('/')}`;
      if (!needed.includes(dir)) needed.push(dir);
    }
  }
  // Walk down from the deepest existing folder: most components exist already.
  const exists = await Promise.all(needed.map((dir) => sftpExists(sftp, dir)));
  for (let i = 0; i < needed.length; i++) if (!exists[i]) await sftpMkdir(sftp, needed[i]!);
}

function sftpWrite(sftp: SFTPWrapper, path: string, data: Buffer): Promise<void> {
  return new Promise((resolve, reject) => sftp.writeFile(path, data, { mode: 0o644 }, (error) => (error ? reject(error) : resolve())));
}

function sftpRename(sftp: SFTPWrapper, from: string, to: string): Promise<void> {
  return new Promise((resolve, reject) => sftp.rename(from, to, (error) => (error ? reject(error) : resolve())));
}

/** Writes a bundle under `root` (which exists): folders first, then files, a few at a time. */
export async function writeBundle(sftp: SFTPWrapper, root: string, bundle: Bundle): Promise<void> {
  const dirs = new Set<string>();
  for (const file of bundle.files) {
    const parts = file.path.split('/');
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
  }
  for (const dir of [...dirs].sort((a, b) => a.split('/').length - b.split('/').length || a.localeCompare(b))) {
    await sftpMkdir(sftp, `${root}/${dir}`);
  }
  const queue = [...bundle.files];
  const lanes = Array.from({ length: Math.min(16, queue.length) }, async () => {
    for (let file = queue.shift(); file; file = queue.shift()) await sftpWrite(sftp, `${root}/${file.path}`, file.data);
  });
  await Promise.all(lanes);
}

/** The marker written last: a version directory without it is incomplete. */
export const COMPLETE_MARKER = '.complete';

/**
 * Makes sure `<runtimeRoot>/<hash>` holds the runtime. Uploads into a temporary folder and
 * renames it into place, so a concurrent run (or a lost connection) never leaves a half
 * written version behind. Resolves with whether it uploaded.
 */
export async function ensureRuntime(
  sftp: SFTPWrapper,
  runtimeRoot: string,
  bundle: RuntimeBundle,
  cleanup: (path: string) => Promise<void>,
): Promise<{ dir: string; uploaded: boolean }> {
  const dir = `${runtimeRoot}/${bundle.hash}`;
  if (await sftpExists(sftp, `${dir}/${COMPLETE_MARKER}`)) return { dir, uploaded: false };
  const temp = `${runtimeRoot}/.tmp-${bundle.hash}-${randomBytes(4).toString('hex')}`;
  await sftpMkdir(sftp, temp);
  try {
    await writeBundle(sftp, temp, bundle);
    await sftpWrite(sftp, `${temp}/${COMPLETE_MARKER}`, Buffer.from(`${bundle.hash}\n`));
    if (await sftpExists(sftp, dir)) {
      // An incomplete version left by an interrupted upload, or one that just landed.
      if (await sftpExists(sftp, `${dir}/${COMPLETE_MARKER}`)) {
        await cleanup(temp);
        return { dir, uploaded: false };
      }
      await cleanup(dir);
    }
    try {
      await sftpRename(sftp, temp, dir);
    } catch (error) {
      if (!(await sftpExists(sftp, `${dir}/${COMPLETE_MARKER}`))) throw error;
      await cleanup(temp);
    }
  } catch (error) {
    await cleanup(temp).catch(() => undefined);
    throw error;
  }
  return { dir, uploaded: true };
}
