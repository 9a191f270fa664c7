/**
 * `hosts check`: for each host, whether it is reachable and authenticates, which interpreter
 * and package versions it has against the driver's, its slots, and the round-trip time.
 */
import type { SFTPWrapper } from 'ssh2';
import { messageOf, RunnerError } from '../../../core/src/errors';
import { SshConnection, type ConnectOptions, type HostKeyInfo } from './connection';
import type { HostsFile } from './hostsFile';
import { viaSh } from './remoteWorker';
import { shellPath, shellQuote } from './shellQuote';
import type { SshConfig } from './sshConfig';
import { describeTarget, resolveHost } from './target';
import { compareVersions, type VersionFinding, type Versions } from './versions';

export interface HostCheck {
  readonly host: string;
  readonly address?: string;
  readonly reachable: boolean;
  readonly authenticated: boolean;
  readonly connectMs?: number;
  readonly auth?: string;
  readonly hostKey?: HostKeyInfo;
  readonly python?: { readonly command: string; readonly executable: string; readonly version: string };
  readonly versions: readonly VersionFinding[];
  readonly slots?: number;
  readonly slotEnvs?: readonly Readonly<Record<string, string>>[];
  /** Median time of a request/response over the established connection (SFTP realpath). */
  readonly rttMs?: number;
  readonly errors: readonly string[];
  readonly warnings: readonly string[];
}

export interface CheckOptions extends ConnectOptions {
  readonly hostsFile: HostsFile;
  readonly sshConfig: SshConfig;
  /** The driver's interpreter, to compare with. */
  readonly driver?: Versions;
}

const PROBE = [
  'import json, sys',
  'from importlib import metadata',
  'def v(name):',
  '    try:',
  '        return metadata.version(name)',
  '    except Exception:',
  '        return None',
  'names = ("hyperopt", "cloudpickle", "numpy", "mlflow", "mlflow-skinny")',
  'print(json.dumps({"executable": sys.executable, "version": "%d.%d.%d" % sys.version_info[:3], "packages": {n: v(n) for n in names}}))',
].join('\n');

function sftpRealpath(sftp: SFTPWrapper): Promise<void> {
  return new Promise((resolve, reject) => sftp.realpath('.', (error) => (error ? reject(error) : resolve())));
}

async function roundTrip(connection: SshConnection): Promise<number> {
  const sftp = await connection.sftp();
  try {
    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      await sftpRealpath(sftp);
      times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    return times[2]!;
  } finally {
    sftp.end();
  }
}

export async function checkHost(name: string, options: CheckOptions): Promise<HostCheck> {
  const errors: string[] = [];
  const warnings: string[] = [];
  let target;
  try {
    target = resolveHost(name, { sshConfig: options.sshConfig, hostsFile: options.hostsFile, env: options.env });
  } catch (error) {
    return { host: name, reachable: false, authenticated: false, versions: [], errors: [messageOf(error)], warnings };
  }
  const base = { host: name, address: describeTarget(target), slots: target.settings.slots, slotEnvs: target.settings.slotEnvs };
  let connection: SshConnection;
  try {
    connection = await SshConnection.open(target, options);
  } catch (error) {
    const code = error instanceof RunnerError ? error.code : undefined;
    const reachable = code !== undefined && code !== 'ssh_connect_failed';
    return { ...base, reachable, authenticated: false, versions: [], errors: [messageOf(error)], warnings };
  }
  try {
    const settings = target.settings;
    const python = settings.python.includes('/') ? shellPath(settings.python) : shellQuote(settings.python);
    const cache = settings.cacheDir.replace(/\/+$/, '');
    const script = [
      settings.workdir ? `cd -- ${shellPath(settings.workdir)} 2>/dev/null || echo 'hr-error: the working directory ${settings.workdir.replace(/'/g, '')} does not exist'` : '',
      `{ mkdir -p -- ${shellPath(cache)} && test -w ${shellPath(cache)}; } 2>/dev/null || echo 'hr-error: the cache folder ${cache.replace(/'/g, '')} is not writable'`,
      `exec ${python} -c ${shellQuote(PROBE)}`,
    ]
      .filter((l) => l)
      .join('\n');
    const probe = await connection.exec(viaSh(script), { timeoutMs: 60_000 });
    // Measured on a quiet connection, after the probe.
    const rtt = await roundTrip(connection).catch((error: unknown) => {
      warnings.push(`${name}: no SFTP (${messageOf(error)}): the runtime and the script's code go over exec channels instead`);
      return undefined;
    });
    const lines = probe.stdout.trim().split('\n');
    for (const line of lines) if (line.startsWith('hr-error: ')) errors.push(`${name}: ${line.slice('hr-error: '.length)}`);
    let info: { executable: string; version: string; packages: Record<string, string | null> } | undefined;
    try {
      info = probe.code === 0 ? JSON.parse(lines[lines.length - 1] ?? '') : undefined;
    } catch {
      info = undefined;
    }
    if (!info) {
      const why = probe.code === 127 || probe.code === 126 ? 'the interpreter was not found or cannot run' : `the interpreter failed (${probe.stderr.trim().split('\n').pop() || `exit code ${probe.code}`})`;
      errors.push(new RunnerError('ssh_remote_python', { host: describeTarget(target), what: why, python: settings.python }).message);
      return { ...base, reachable: true, authenticated: true, connectMs: connection.connectMs, auth: connection.auth, hostKey: connection.hostKey, versions: [], ...(rtt !== undefined ? { rttMs: rtt } : {}), errors, warnings };
    }
    const versions = compareVersions({ python: info.version, packages: info.packages }, options.driver);
    for (const finding of versions) {
      const text = `${name}: ${finding.name} ${finding.remote ?? '(missing)'}${finding.local ? ` (driver: ${finding.local})` : ''}: ${finding.note ?? ''}`;
      if (finding.level === 'error') errors.push(text);
      else if (finding.level === 'warning') warnings.push(text);
    }
    return {
      ...base,
      reachable: true,
      authenticated: true,
      connectMs: connection.connectMs,
      auth: connection.auth,
      hostKey: connection.hostKey,
      python: { command: settings.python, executable: info.executable, version: info.version },
      versions,
      ...(rtt !== undefined ? { rttMs: rtt } : {}),
      errors,
      warnings,
    };
  } finally {
    connection.end();
  }
}

export function checkHosts(names: readonly string[], options: CheckOptions): Promise<HostCheck[]> {
  return Promise.all(names.map((name) => checkHost(name, options)));
}
