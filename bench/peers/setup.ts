/**
 * What the peers benchmark needs before it measures anything: its own virtual environment
 * (bench/peers/.venv, from requirements.txt; the project's .venv is never touched), the CLI
 * bundle, OpenSSH's server for the loopback hosts, and the versions and machine facts the
 * report names.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';

export const HERE = __dirname;
export const ROOT = join(HERE, '..', '..');
export const VENV = join(HERE, '.venv');
export const PYTHON = join(VENV, 'bin', 'python');
const REQUIREMENTS = join(HERE, 'requirements.txt');

function run(command: string, args: string[], what: string): void {
  const result = spawnSync(command, args, { stdio: 'inherit', cwd: ROOT });
  if (result.status !== 0) throw new Error(`${what} failed (${command} ${args.join(' ')}: exit ${result.status ?? result.signal})`);
}

/** Creates or updates bench/peers/.venv; returns the seconds it took (0 when it was ready). */
export function ensureVenv(log: (line: string) => void): number {
  const started = performance.now();
  const want = createHash('sha256').update(readFileSync(REQUIREMENTS)).digest('hex').slice(0, 16);
  const stamp = join(VENV, '.peers-requirements');
  if (!existsSync(PYTHON)) {
    const base = process.env.PEERS_PYTHON ?? 'python3';
    log(`creating ${VENV} with ${base}`);
    run(base, ['-m', 'venv', VENV], 'creating the benchmark venv');
  }
  if (!existsSync(stamp) || readFileSync(stamp, 'utf8').trim() !== want) {
    log('installing hyperopt, scikit-learn, pyspark and ray[tune] into bench/peers/.venv (first time: a few minutes)');
    run(PYTHON, ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '--upgrade', 'pip'], 'upgrading pip');
    run(PYTHON, ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '-r', REQUIREMENTS], 'installing the benchmark requirements');
    writeFileSync(stamp, `${want}\n`);
  }
  return (performance.now() - started) / 1000;
}

/** Builds the CLI bundle from the sources every time (a second or two): a stale bundle would be measured otherwise. */
export function ensureBuild(log: (line: string) => void): void {
  log('building the CLI bundle');
  run('npm', ['run', '--silent', 'build'], 'npm run build');
}

/** Installs OpenSSH's server when it is missing; returns why the SSH runner cannot run, if so. */
export function ensureSshd(log: (line: string) => void): string | undefined {
  if (existsSync('/usr/sbin/sshd')) return undefined;
  log('installing openssh-server for the loopback SSH hosts');
  const result = spawnSync('bash', [join(ROOT, 'scripts', 'setup-sshd.sh')], { stdio: 'inherit', cwd: ROOT });
  return result.status === 0 ? undefined : `scripts/setup-sshd.sh failed (exit ${result.status}): /usr/sbin/sshd is missing`;
}

/** Reads the page cache full of what the studies import, so the first measured run is not the only cold one. */
export function warmImports(): void {
  spawnSync(PYTHON, ['-c', 'import hyperopt, sklearn.ensemble, sklearn.datasets, pyspark.sql, hyperopt.spark\ntry:\n import ray.tune\nexcept Exception:\n pass'], { stdio: 'ignore' });
}

export interface Versions {
  python: string;
  hyperopt: string;
  cloudpickle: string;
  numpy: string;
  sklearn: string;
  pyspark: string;
  ray: string;
  java: string;
  node: string;
  openssh: string;
  hyperoptRunner: string;
  commit: string;
}

function firstLine(text: string | null | undefined): string {
  return (text ?? '').trim().split('\n')[0]?.trim() ?? '';
}

export function versions(): Versions {
  const script = [
    'import json, sys',
    'out = {"python": sys.version.split()[0]}',
    'for name, module in [("hyperopt", "hyperopt"), ("cloudpickle", "cloudpickle"), ("numpy", "numpy"), ("sklearn", "sklearn"), ("pyspark", "pyspark"), ("ray", "ray")]:',
    '    try:',
    '        out[name] = __import__(module).__version__',
    '    except Exception as error:',
    '        out[name] = f"not importable: {type(error).__name__}: {error}"',
    'print(json.dumps(out))',
  ].join('\n');
  const python = JSON.parse(spawnSync(PYTHON, ['-c', script], { encoding: 'utf8' }).stdout.trim() || '{}') as Record<string, string>;
  const java = spawnSync('java', ['-version'], { encoding: 'utf8' });
  const ssh = spawnSync('ssh', ['-V'], { encoding: 'utf8' });
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  return {
    python: python.python ?? '?',
    hyperopt: python.hyperopt ?? '?',
    cloudpickle: python.cloudpickle ?? '?',
    numpy: python.numpy ?? '?',
    sklearn: python.sklearn ?? '?',
    pyspark: python.pyspark ?? '?',
    ray: python.ray ?? '?',
    java: firstLine(java.stderr) || 'java not found',
    node: process.version,
    openssh: firstLine(ssh.stderr) || 'ssh not found',
    hyperoptRunner: pkg.version,
    commit: firstLine(spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).stdout),
  };
}

export interface Machine {
  cores: number;
  cpu: string;
  memoryGiB: number;
  loadAtStart: number[];
  /** Share of CPU time idle over a few seconds right before the first round (other work shows here; the load average lags). */
  idleBefore?: number;
}

function cpuTimes(): { idle: number; total: number } {
  // /proc/stat's first line: cpu user nice system idle iowait irq softirq steal ...
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  return { idle: fields[3]! + (fields[4] ?? 0), total: fields.slice(0, 8).reduce((a, b) => a + b, 0) };
}

/** The share of CPU time the machine spent idle over the next `ms` (Linux; undefined elsewhere). */
export async function idleShare(ms: number): Promise<number | undefined> {
  if (!existsSync('/proc/stat')) return undefined;
  const before = cpuTimes();
  await new Promise((resolve) => setTimeout(resolve, ms));
  const after = cpuTimes();
  const total = after.total - before.total;
  return total > 0 ? Math.round(((after.idle - before.idle) / total) * 1000) / 1000 : undefined;
}

/**
 * What one `import hyperopt` costs in the benchmark's venv, warm page cache: the median of three
 * interpreters that import it, less the median of three that do nothing. Every worker pays it.
 */
export function hyperoptImportSeconds(): number {
  const time = (code: string): number => {
    const runs = [0, 1, 2].map(() => {
      const started = performance.now();
      spawnSync(PYTHON, ['-c', code], { stdio: 'ignore' });
      return (performance.now() - started) / 1000;
    });
    return runs.sort((a, b) => a - b)[1]!;
  };
  return Math.round((time('import hyperopt') - time('pass')) * 100) / 100;
}

export function machine(): Machine {
  return {
    cores: cpus().length,
    cpu: cpus()[0]?.model.trim() ?? 'unknown CPU',
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    loadAtStart: loadavg().map((l) => Math.round(l * 100) / 100),
  };
}
