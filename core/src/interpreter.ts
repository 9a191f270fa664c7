/** What the chosen Python interpreter offers, read without importing the heavy packages. */
import { execFile } from 'node:child_process';
import { RunnerError } from './errors';

export interface InterpreterInfo {
  python: string;
  version: string;
  packages: Record<string, string | null>;
}

const PROBE = `
import json, sys
from importlib import metadata
def v(name):
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
print(json.dumps({"version": sys.version.split()[0], "packages": {n: v(n) for n in ("hyperopt", "cloudpickle", "numpy", "mlflow", "mlflow-skinny")}}))
`;

/** Rejects with `interrupted` when `signal` aborts or the interpreter dies of SIGINT (Ctrl+C reaches it too). */
export function probeInterpreter(python: string, env: NodeJS.ProcessEnv = process.env, signal?: AbortSignal): Promise<InterpreterInfo> {
  return new Promise((resolve, reject) => {
    execFile(python, ['-c', PROBE], { env, timeout: 30_000, ...(signal ? { signal } : {}) }, (error, stdout, stderr) => {
      if (error && (error.name === 'AbortError' || error.signal === 'SIGINT')) {
        reject(new RunnerError('interrupted'));
        return;
      }
      const lastError = stderr.trim().split('\n').slice(-1)[0];
      if (error && typeof error.code !== 'number') {
        // Not started (ENOENT, EACCES: the message is the one line) or killed by a signal.
        const why = lastError || (error.signal ? `killed by ${error.signal}` : error.message.split('\n')[0]!);
        reject(new RunnerError('interpreter_not_found', { python: `${python} (${why})` }));
        return;
      }
      if (error && lastError) {
        reject(new RunnerError('interpreter_not_found', { python: `${python} (${lastError})` }));
        return;
      }
      const parsed = error ? undefined : parseProbe(stdout);
      // It ran and said nothing a Python interpreter would have (a traceback, at least).
      if (!parsed) reject(silentInterpreter(python, stdout, `exit code ${error?.code ?? 0}`));
      else resolve({ python, ...parsed });
    });
  });
}

function parseProbe(stdout: string): Omit<InterpreterInfo, 'python'> | undefined {
  try {
    const parsed = JSON.parse(stdout) as Partial<Omit<InterpreterInfo, 'python'>> | null;
    return typeof parsed?.version === 'string' && parsed.packages ? { version: parsed.version, packages: parsed.packages } : undefined;
  } catch {
    return undefined;
  }
}

/** An executable that ran without the output or error a Python interpreter would give. */
export function silentInterpreter(python: string, stdout: string, exit: string): RunnerError {
  const shown = stdout.trim().split('\n')[0]?.slice(0, 80);
  const what = shown ? `printed '${shown}' instead of its version` : `printed nothing and exited with ${exit}`;
  return new RunnerError('interpreter_not_python', { python, what });
}

function older(version: string, than: readonly number[]): boolean {
  const parts = version.split(/[.+-]/).map((p) => Number.parseInt(p, 10) || 0);
  for (let i = 0; i < than.length; i++) {
    if ((parts[i] ?? 0) !== than[i]) return (parts[i] ?? 0) < than[i]!;
  }
  return false;
}

/** hyperopt 0.2.7 or newer and cloudpickle must be importable by the script's interpreter. */
export function requireHyperopt(info: InterpreterInfo): void {
  const hyperopt = info.packages.hyperopt;
  if (!hyperopt) throw new RunnerError('hyperopt_missing', { what: 'hyperopt is not installed', python: info.python });
  if (older(hyperopt, [0, 2, 7])) {
    throw new RunnerError('hyperopt_missing', { what: `hyperopt ${hyperopt} is older than 0.2.7`, python: info.python });
  }
  if (!info.packages.cloudpickle) throw new RunnerError('hyperopt_missing', { what: 'cloudpickle is not installed', python: info.python });
}
