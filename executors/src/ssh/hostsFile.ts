/**
 * The hosts file: per-host settings that ~/.ssh/config has no place for (the remote
 * interpreter, the number of slots, an environment per slot, a working directory). JSON; the
 * format is documented in docs/ssh.md.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { z } from 'zod';
import { RunnerError } from '../../../core/src/errors';
import { isEnvName } from './shellQuote';

const Env = z.record(z.string(), z.string());

const Settings = {
  /** Interpreter on the host: a path (`~/` allowed) or a command name on its PATH. */
  python: z.string().min(1).optional(),
  slots: z.number().int().min(1).max(256).optional(),
  /** Environment of every worker on the host. */
  env: Env.optional(),
  /** Environment per slot, merged over `env`: one object per slot. */
  slotEnv: z.array(Env).min(1).optional(),
  /** Working directory of the workers (remote path, `~/` allowed). */
  workdir: z.string().min(1).optional(),
  /** Where the runtime package is cached on the host (remote path, `~/` allowed). */
  cacheDir: z.string().min(1).optional(),
  /** A private key (local path) tried before the SSH config's IdentityFile entries. */
  identityFile: z.string().min(1).optional(),
  /** The environment variable that holds the key's passphrase. */
  passphraseEnv: z.string().min(1).optional(),
};

const HostEntry = z.object({ address: z.string().min(1).optional(), ...Settings }).strict();
const Defaults = z.object(Settings).strict();
const Reconnect = z
  .object({
    initialDelayMs: z.number().int().min(0).optional(),
    maxDelayMs: z.number().int().min(0).optional(),
    maxFailures: z.number().int().min(1).optional(),
  })
  .strict();

const HostsFileSchema = z
  .object({
    $schema: z.string().optional(),
    /** An ssh_config file read instead of ~/.ssh/config (as `ssh -F`); relative to this file. */
    sshConfig: z.string().min(1).optional(),
    defaults: Defaults.optional(),
    hosts: z.record(z.string(), HostEntry).optional(),
    reconnect: Reconnect.optional(),
  })
  .strict();

export type HostEntry = z.infer<typeof HostEntry>;
export type ReconnectSettings = z.infer<typeof Reconnect>;

export interface HostsFile {
  /** Where it was read from (undefined for an empty, built-in file). */
  readonly path?: string;
  readonly sshConfig?: string;
  readonly defaults: z.infer<typeof Defaults>;
  readonly hosts: Readonly<Record<string, HostEntry>>;
  readonly reconnect: ReconnectSettings;
}

/** Settings of one host after the defaults were applied. */
export interface HostSettings {
  readonly address?: string;
  readonly python: string;
  readonly slots: number;
  /** The environment of each slot (env merged with slotEnv[i]). */
  readonly slotEnvs: readonly Readonly<Record<string, string>>[];
  readonly workdir?: string;
  readonly cacheDir: string;
  readonly identityFile?: string;
  readonly passphraseEnv?: string;
}

export const DEFAULT_CACHE_DIR = '~/.cache/hyperopt-runner';
export const DEFAULT_REMOTE_PYTHON = 'python3';

export const EMPTY_HOSTS_FILE: HostsFile = { defaults: {}, hosts: {}, reconnect: {} };

function invalid(path: string, reason: string): RunnerError {
  return new RunnerError('ssh_hosts_file', { path, reason });
}

/** A JSON syntax error as the line and column an editor shows, from V8's position in the text. */
function jsonErrorAt(text: string, message: string): string {
  const position = /at position (\d+)/.exec(message)?.[1];
  const at = position === undefined ? text.length : Number(position);
  const line = text.slice(0, at).split('\n').length;
  const column = at - (text.lastIndexOf('\n', at - 1) + 1) + 1;
  const what = message.replace(/\s*(in JSON )?at position \d+.*$/, '').replace(/, ".*" is not valid JSON$/s, '').replace(/^Unexpected end of JSON input$/, 'the text ends before the JSON does');
  return `not valid JSON at line ${line}, column ${column}: ${what}`;
}

export function parseHostsFile(text: string, path: string): HostsFile {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw invalid(path, jsonErrorAt(text, (error as Error).message));
  }
  const parsed = HostsFileSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const where = issue.path.length > 0 ? issue.path.join('.') : '(top level)';
    throw invalid(path, `${where}: ${issue.message}`);
  }
  const file = parsed.data;
  const base = dirname(path);
  const local = (p: string | undefined): string | undefined =>
    p === undefined ? undefined : p.startsWith('~') || isAbsolute(p) ? p : resolve(base, p);
  const hosts: Record<string, HostEntry> = {};
  for (const [name, entry] of Object.entries(file.hosts ?? {})) {
    checkEntry(path, `hosts.${name}`, entry);
    hosts[name] = { ...entry, identityFile: local(entry.identityFile) };
  }
  if (file.defaults) checkEntry(path, 'defaults', file.defaults);
  return {
    path,
    sshConfig: local(file.sshConfig),
    defaults: { ...(file.defaults ?? {}), identityFile: local(file.defaults?.identityFile) },
    hosts,
    reconnect: file.reconnect ?? {},
  };
}

function checkEntry(path: string, where: string, entry: z.infer<typeof Defaults>): void {
  const envs = [entry.env ?? {}, ...(entry.slotEnv ?? [])];
  for (const env of envs) {
    for (const name of Object.keys(env)) {
      if (!isEnvName(name)) throw invalid(path, `${where}: ${JSON.stringify(name)} is not a valid environment variable name`);
    }
  }
  if (entry.passphraseEnv !== undefined && !isEnvName(entry.passphraseEnv)) {
    throw invalid(path, `${where}.passphraseEnv: ${JSON.stringify(entry.passphraseEnv)} is not a valid environment variable name`);
  }
  if (entry.slots !== undefined && entry.slotEnv !== undefined && entry.slotEnv.length !== entry.slots) {
    throw invalid(path, `${where}: slots is ${entry.slots} but slotEnv has ${entry.slotEnv.length} entries; give one environment per slot`);
  }
}

export function readHostsFile(path: string): HostsFile {
  if (!existsSync(path)) throw invalid(path, 'the file does not exist');
  return parseHostsFile(readFileSync(path, 'utf8'), path);
}

/**
 * The hosts file to use: the one named (flag), else HYPEROPT_RUNNER_HOSTS_FILE, else
 * .hyperopt-runner/hosts.json in the workspace when it exists, else none.
 */
export function findHostsFile(named: string | undefined, env: NodeJS.ProcessEnv, workspace: string): HostsFile {
  const chosen = named ?? env.HYPEROPT_RUNNER_HOSTS_FILE;
  if (chosen) return readHostsFile(resolve(workspace, chosen));
  const fallback = join(workspace, '.hyperopt-runner', 'hosts.json');
  return existsSync(fallback) ? readHostsFile(fallback) : EMPTY_HOSTS_FILE;
}

export function hostSettings(file: HostsFile, name: string): HostSettings {
  const entry = file.hosts[name] ?? {};
  const d = file.defaults;
  const slotEnv = entry.slotEnv ?? (entry.slots === undefined ? d.slotEnv : undefined);
  const slots = entry.slots ?? entry.slotEnv?.length ?? d.slots ?? slotEnv?.length ?? 1;
  if (slotEnv && slotEnv.length !== slots) {
    throw invalid(file.path ?? '(hosts file)', `hosts.${name}: ${slots} slots but slotEnv has ${slotEnv.length} entries`);
  }
  const common = { ...(d.env ?? {}), ...(entry.env ?? {}) };
  const slotEnvs = Array.from({ length: slots }, (_, i) => ({ ...common, ...(slotEnv?.[i] ?? {}) }));
  return {
    address: entry.address,
    python: entry.python ?? d.python ?? DEFAULT_REMOTE_PYTHON,
    slots,
    slotEnvs,
    workdir: entry.workdir ?? d.workdir,
    cacheDir: entry.cacheDir ?? d.cacheDir ?? DEFAULT_CACHE_DIR,
    identityFile: entry.identityFile ?? d.identityFile,
    passphraseEnv: entry.passphraseEnv ?? d.passphraseEnv,
  };
}
