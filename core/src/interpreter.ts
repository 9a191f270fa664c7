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

export function probeInterpreter(python: string, env: NodeJS.ProcessEnv = process.env): Promise<InterpreterInfo> {
  return new Promise((resolve, reject) => {
    execFile(python, ['-c', PROBE], { env, timeout: 30_000 }, (error, stdout, stderr) => {
      if (error) {
        const why = stderr.trim().split('\n').slice(-1)[0] || error.message;
        reject(new RunnerError('interpreter_not_found', { python: `${python} (${why})` }));
        return;
      }
      const parsed = JSON.parse(stdout) as Omit<InterpreterInfo, 'python'>;
      resolve({ python, ...parsed });
    });
  });
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
