/**
 * From a host as the user names it (`gpu1`, `me@10.0.0.5:2222`, `ssh://me@box`) to everything
 * needed to reach it: address, user, keys, jump hosts and the known_hosts files, combining the
 * hosts file, the SSH config and ssh's defaults in that order of precedence.
 */
import { existsSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { join } from 'node:path';
import { RunnerError } from '../../../core/src/errors';
import { hostSettings, type HostSettings, type HostsFile } from './hostsFile';
import { KnownHosts, knownHostName } from './knownHosts';
import { expandTokens, SshConfig, SshConfigError, type SshHostConfig } from './sshConfig';

export interface HostTarget {
  /** The host as the user wrote it; names slots ("gpu1/0") and messages. */
  readonly name: string;
  readonly hostName: string;
  readonly port: number;
  readonly user: string;
  /** Private keys to try, in order (local paths). */
  readonly identityFiles: readonly string[];
  readonly identitiesOnly: boolean;
  /** ssh-agent socket, if one is to be used. */
  readonly agent?: string;
  /** The hop this host is reached through (ProxyJump), if any. */
  readonly via?: HostTarget;
  readonly knownHosts: KnownHosts;
  /** The name the host key is looked up and recorded under. */
  readonly hostKeyName: string;
  readonly hashKnownHosts: boolean;
  /** StrictHostKeyChecking accept-new (or no) in the SSH config: new keys are recorded. */
  readonly acceptNewHostKeys: boolean;
  readonly connectTimeoutMs: number;
  readonly keepaliveIntervalMs: number;
  readonly keepaliveCountMax: number;
  readonly passphraseEnv?: string;
  readonly settings: HostSettings;
}

export interface ResolveOptions {
  readonly sshConfig: SshConfig;
  readonly hostsFile: HostsFile;
  readonly env?: NodeJS.ProcessEnv;
  readonly home?: string;
  readonly localUser?: string;
}

/** `[user@]host[:port]`, `[user@][v6addr]:port` or `ssh://[user@]host[:port]`. */
export function parseDestination(text: string): { user?: string; host: string; port?: number } {
  let rest = text.trim();
  if (rest.startsWith('ssh://')) rest = rest.slice('ssh://'.length).replace(/\/$/, '');
  let user: string | undefined;
  const at = rest.lastIndexOf('@');
  if (at !== -1) {
    user = rest.slice(0, at);
    rest = rest.slice(at + 1);
  }
  let host = rest;
  let portText: string | undefined;
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(rest);
  if (bracket) {
    host = bracket[1]!;
    portText = bracket[2];
  } else if ((rest.match(/:/g) ?? []).length === 1) {
    [host, portText] = rest.split(':') as [string, string];
  }
  if (host === '' || (user !== undefined && user === '')) throw new Error(`cannot read ${JSON.stringify(text)} as [user@]host[:port]`);
  let port: number | undefined;
  if (portText !== undefined) {
    port = Number(portText);
    if (!/^\d+$/.test(portText) || port < 1 || port > 65535) throw new Error(`invalid port in ${JSON.stringify(text)}`);
  }
  return { user, host, ...(port !== undefined ? { port } : {}) };
}

const DEFAULT_IDENTITIES = ['id_rsa', 'id_ecdsa', 'id_ecdsa_sk', 'id_ed25519', 'id_ed25519_sk', 'id_dsa'];

function localUserName(): string {
  try {
    return userInfo().username;
  } catch {
    return process.env.USER ?? 'root';
  }
}

/** Resolves a host the user named; rejects with a RunnerError naming what is wrong. */
export function resolveHost(name: string, options: ResolveOptions): HostTarget {
  const settings = hostSettings(options.hostsFile, name);
  return resolveDestination(name, settings.address ?? name, settings, options, 0, undefined);
}

function resolveDestination(
  name: string,
  destination: string,
  settings: HostSettings,
  options: ResolveOptions,
  depth: number,
  jumpOverride: string | undefined,
): HostTarget {
  if (depth > 8) throw new RunnerError('ssh_config', { path: configPath(options), reason: `ProxyJump chain for ${name} is too long (a loop?)` });
  const env = options.env ?? process.env;
  const home = options.home ?? homedir();
  const localUser = options.localUser ?? localUserName();
  let dest: ReturnType<typeof parseDestination>;
  try {
    dest = parseDestination(destination);
  } catch (error) {
    throw new RunnerError('ssh_remote_failed', { host: name, what: 'invalid host', reason: (error as Error).message });
  }
  let config: SshHostConfig;
  try {
    config = options.sshConfig.lookup(dest.host, { localUser, home, env });
  } catch (error) {
    if (error instanceof SshConfigError) throw new RunnerError('ssh_config', { path: error.file, reason: error.message });
    throw error;
  }
  if (config.proxyCommand && config.proxyCommand.toLowerCase() !== 'none' && !config.proxyJump) {
    throw new RunnerError('ssh_config', {
      path: configPath(options),
      reason: `${name} uses ProxyCommand, which is not supported; use ProxyJump instead`,
    });
  }
  const hostName = config.hostName ? config.hostName.replace(/%h/g, dest.host).replace(/%%/g, '%') : dest.host;
  const port = dest.port ?? config.port ?? 22;
  const user = dest.user ?? config.user ?? localUser;
  const tokens = { host: hostName, originalHost: dest.host, port, user, localUser, home };
  const expand = (text: string): string => expandTokens(text, tokens, env);

  const configured = config.identityFiles.map(expand);
  const explicit = settings.identityFile ? [expandTokens(settings.identityFile, tokens, env)] : [];
  const defaults = configured.length === 0 ? DEFAULT_IDENTITIES.map((f) => join(home, '.ssh', f)) : [];
  const identityFiles = [...new Set([...explicit, ...configured, ...defaults])].filter((f) => existsSync(f));

  let agent: string | undefined = env.SSH_AUTH_SOCK || undefined;
  if (config.identityAgent) {
    const value = config.identityAgent;
    if (value.toLowerCase() === 'none') agent = undefined;
    else if (value === 'SSH_AUTH_SOCK') agent = env.SSH_AUTH_SOCK || undefined;
    else if (value.startsWith('$')) agent = env[value.slice(1)] || undefined;
    else agent = expand(value);
  }

  const listed = (values: string[] | undefined, fallback: string[]): string[] => {
    if (!values) return fallback;
    if (values.length === 1 && values[0]!.toLowerCase() === 'none') return [];
    return values.map(expand);
  };
  const knownHosts = new KnownHosts(
    listed(config.userKnownHostsFiles, [join(home, '.ssh', 'known_hosts'), join(home, '.ssh', 'known_hosts2')]),
    listed(config.globalKnownHostsFiles, ['/etc/ssh/ssh_known_hosts', '/etc/ssh/ssh_known_hosts2']),
  );
  const hostKeyName = config.hostKeyAlias ? config.hostKeyAlias : knownHostName(hostName, port);

  const jumpSpec = jumpOverride ?? config.proxyJump;
  let via: HostTarget | undefined;
  if (jumpSpec && jumpSpec.toLowerCase() !== 'none') {
    const hops = jumpSpec.split(',').map((h) => h.trim()).filter((h) => h.length > 0);
    const last = hops[hops.length - 1]!;
    const before = hops.slice(0, -1);
    const jumpSettings = hostSettings(options.hostsFile, last);
    via = resolveDestination(last, last, jumpSettings, options, depth + 1, before.length > 0 ? before.join(',') : undefined);
  }

  const strict = config.strictHostKeyChecking;
  return {
    name,
    hostName,
    port,
    user,
    identityFiles,
    identitiesOnly: config.identitiesOnly === true,
    ...(agent ? { agent } : {}),
    ...(via ? { via } : {}),
    knownHosts,
    hostKeyName,
    hashKnownHosts: config.hashKnownHosts === true,
    acceptNewHostKeys: strict === 'accept-new' || strict === 'no' || strict === 'off',
    connectTimeoutMs: (config.connectTimeout ?? 15) * 1000,
    keepaliveIntervalMs: (config.serverAliveInterval ?? 5) * 1000,
    keepaliveCountMax: config.serverAliveCountMax ?? 3,
    ...(settings.passphraseEnv ? { passphraseEnv: settings.passphraseEnv } : {}),
    settings,
  };
}

function configPath(options: ResolveOptions): string {
  return options.sshConfig.files[0] ?? '~/.ssh/config';
}

/** "gpu1 (me@10.0.0.5:2222)" for messages. */
export function describeTarget(target: HostTarget): string {
  const address = `${target.user}@${target.hostName.includes(':') ? `[${target.hostName}]` : target.hostName}:${target.port}`;
  return target.name === address ? target.name : `${target.name} (${address})`;
}

export function targetAddress(target: HostTarget): string {
  return `${target.hostName.includes(':') ? `[${target.hostName}]` : target.hostName}:${target.port}`;
}

/** The SSH config to read: the hosts file's `sshConfig`, HYPEROPT_RUNNER_SSH_CONFIG, else ssh's defaults. */
export function sshConfigFor(hostsFile: HostsFile, env: NodeJS.ProcessEnv = process.env, home: string = homedir()): SshConfig {
  const path = hostsFile.sshConfig ?? env.HYPEROPT_RUNNER_SSH_CONFIG;
  if (!path) return SshConfig.default(home);
  try {
    return SshConfig.file(path, home);
  } catch (error) {
    if (error instanceof SshConfigError) throw new RunnerError('ssh_config', { path, reason: 'the file does not exist' });
    throw error;
  }
}
