/** Where the Python runtime package (hyperopt_runner) ships next to this code. */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

export function runtimeSourceDir(start: string = __dirname): string {
  let dir = start;
  for (;;) {
    const candidate = join(dir, 'runtime', 'src');
    if (existsSync(join(candidate, 'hyperopt_runner', '__init__.py'))) return candidate;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`the Python runtime package was not found above ${start}`);
    dir = parent;
  }
}

/** PYTHONPATH for the driver and the workers: the runtime first, then the script's folder. */
export function pythonPath(runtimeDir: string, scriptDir: string, existing: string | undefined): string {
  const sep = process.platform === 'win32' ? ';' : ':';
  return [runtimeDir, scriptDir, ...(existing ? [existing] : [])].join(sep);
}
