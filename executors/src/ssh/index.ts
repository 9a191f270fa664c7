/** The SSH executor and the pieces the CLI and the editor use around it. */
import { delimiter, dirname } from 'node:path';
import type { ExecutorSpec } from '../../../core/src/executorSpec';
import { probeInterpreter } from '../../../core/src/interpreter';
import { runtimeSourceDir } from '../../../core/src/runtimePath';
import type { HostKeyPrompt } from './connection';
import { findHostsFile } from './hostsFile';
import { terminalPassphrase } from './passphrasePrompt';
import { SshExecutor, type ReverseForward } from './sshExecutor';
import { sshConfigFor } from './target';

export { SshExecutor, type HostStatus, type HostState, type ReverseForward, type SshExecutorOptions } from './sshExecutor';
export { SshConnection, isPermanentFailure, type ConnectOptions, type HostKeyInfo, type HostKeyPrompt } from './connection';
export { checkHost, checkHosts, type HostCheck, type CheckOptions } from './hostCheck';
export { findHostsFile, hostSettings, parseHostsFile, readHostsFile, type HostEntry, type HostSettings, type HostsFile } from './hostsFile';
export { KnownHosts, fingerprint, keyTypeOf, knownHostName } from './knownHosts';
export { SshConfig } from './sshConfig';
export { describeTarget, parseDestination, resolveHost, sshConfigFor, type HostTarget } from './target';
export { shellJoin, shellPath, shellQuote } from './shellQuote';
export { compareVersions, type VersionFinding, type Versions } from './versions';
export { terminalPassphrase } from './passphrasePrompt';

/**
 * An `ssh:` specification with the command line's SSH settings attached, so they travel with
 * the specification to whatever builds the executors.
 */
export type SshExecutorSpec = Extract<ExecutorSpec, { kind: 'ssh' }> & {
  readonly hostsFile?: string;
  readonly acceptNewHostKeys?: boolean;
  /** The local folder whose Python files are shipped (the script's folder). */
  readonly codeDir?: string;
};

/** Attaches SSH settings to the `ssh:` specifications of a list; others are returned as they are. */
export function withSshSettings(specs: readonly ExecutorSpec[], settings: { hostsFile?: string; acceptNewHostKeys?: boolean; codeDir?: string }): ExecutorSpec[] {
  const extra = Object.fromEntries(Object.entries(settings).filter(([, v]) => v !== undefined && v !== false));
  return specs.map((spec) => (spec.kind === 'ssh' ? ({ ...spec, ...extra } as SshExecutorSpec) : spec));
}

/** The script's folder when only the workers' PYTHONPATH (runtime first, then the script's folder) tells it. */
function codeDirFromPythonPath(env: NodeJS.ProcessEnv): string | undefined {
  const entries = (env.PYTHONPATH ?? '').split(delimiter);
  try {
    return entries.length >= 2 && entries[0] === runtimeSourceDir() && entries[1] ? entries[1] : undefined;
  } catch {
    return undefined;
  }
}

/** What a run passes to the SSH executor besides the host names. */
export interface SshRunSettings {
  /** The hosts file (--hosts-file); else HYPEROPT_RUNNER_HOSTS_FILE or .hyperopt-runner/hosts.json. */
  readonly hostsFile?: string | null;
  /** Record the keys of hosts not yet in known_hosts (--accept-new-host-keys). */
  readonly acceptNewHostKeys?: boolean;
  readonly reverseForwards?: readonly ReverseForward[];
  /** Asked about unknown host keys (the editor); the CLI refuses them unless accepted by flag. */
  readonly onUnknownHostKey?: (prompt: HostKeyPrompt) => Promise<boolean>;
  /** Asked for key passphrases; by default a terminal prompt when there is a terminal. */
  readonly passphrase?: (keyPath: string, host: string, options?: { retry: boolean }) => Promise<string | undefined>;
}

export interface SshExecutorContext {
  readonly python: string;
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
  readonly script?: string;
  readonly ssh?: SshRunSettings;
}

/** The executor for an `ssh:HOST[,HOST...]` specification. */
export function createSshExecutor(spec: SshExecutorSpec, context: SshExecutorContext): SshExecutor {
  const settings = context.ssh ?? {};
  const hostsFile = findHostsFile(spec.hostsFile ?? settings.hostsFile ?? undefined, context.env, context.cwd);
  const sshConfig = sshConfigFor(hostsFile, context.env);
  return new SshExecutor({
    hosts: spec.hosts,
    label: spec.label,
    hostsFile,
    sshConfig,
    codeDir: context.script ? dirname(context.script) : (spec.codeDir ?? codeDirFromPythonPath(context.env) ?? context.cwd),
    env: context.env,
    acceptNewHostKeys: spec.acceptNewHostKeys === true || settings.acceptNewHostKeys === true,
    ...(settings.reverseForwards ? { reverseForwards: settings.reverseForwards } : {}),
    ...(settings.onUnknownHostKey ? { onUnknownHostKey: settings.onUnknownHostKey } : {}),
    passphrase: settings.passphrase ?? terminalPassphrase,
    driverPython: context.python,
    ...(context.env.HYPEROPT_RUNNER_DEBUG ? { debug: (text: string) => void process.stderr.write(`hyperopt-runner: debug: ${text}\n`) } : {}),
  });
}

/** The driver interpreter's versions, for comparisons (undefined when it cannot be probed). */
export function driverVersions(python: string): Promise<{ python: string; packages: Record<string, string | null> } | undefined> {
  return probeInterpreter(python).then(
    (info) => ({ python: info.version, packages: info.packages }),
    () => undefined,
  );
}
