/**
 * Reading OpenSSH client configuration files (ssh_config(5)) for the settings this product
 * uses: HostName, User, Port, IdentityFile, IdentitiesOnly, IdentityAgent, ProxyJump,
 * UserKnownHostsFile, GlobalKnownHostsFile, HostKeyAlias, ConnectTimeout, ServerAliveInterval,
 * ServerAliveCountMax, StrictHostKeyChecking and HashKnownHosts. As ssh does, the first value
 * obtained for a keyword wins (IdentityFile accumulates), `Host` blocks match the name as
 * given with `*`, `?` and `!` patterns, and `Include` reads other files (globs allowed).
 * `Match` blocks are honoured for `all`, `host`, `originalhost`, `user` and `localuser`;
 * any other criterion (`exec`, `canonical`, ...) is treated as not matching.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { homedir, hostname as localHostname, userInfo } from 'node:os';
import { basename, dirname, isAbsolute, join } from 'node:path';

export interface SshHostConfig {
  hostName?: string;
  user?: string;
  port?: number;
  identityFiles: string[];
  identitiesOnly?: boolean;
  identityAgent?: string;
  proxyJump?: string;
  proxyCommand?: string;
  userKnownHostsFiles?: string[];
  globalKnownHostsFiles?: string[];
  hostKeyAlias?: string;
  connectTimeout?: number;
  serverAliveInterval?: number;
  serverAliveCountMax?: number;
  strictHostKeyChecking?: string;
  hashKnownHosts?: boolean;
}

interface Line {
  readonly keyword: string;
  readonly args: string[];
  readonly file: string;
  readonly line: number;
}

export class SshConfigError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    reason: string,
  ) {
    super(`${file}:${line}: ${reason}`);
    this.name = 'SshConfigError';
  }
}

/** Splits a configuration line into keyword and arguments; double quotes group words. */
export function splitConfigLine(text: string): { keyword: string; args: string[] } | undefined {
  const trimmed = text.trim();
  if (trimmed === '' || trimmed.startsWith('#')) return undefined;
  const match = /^([A-Za-z][A-Za-z0-9]*)(?:\s*=\s*|\s+|$)(.*)$/.exec(trimmed);
  if (!match) return undefined;
  const args: string[] = [];
  const rest = match[2] ?? '';
  let i = 0;
  while (i < rest.length) {
    while (i < rest.length && /\s/.test(rest[i]!)) i++;
    if (i >= rest.length) break;
    if (rest[i] === '#') break;
    let word = '';
    if (rest[i] === '"') {
      const end = rest.indexOf('"', i + 1);
      if (end === -1) throw new Error('unterminated quote');
      word = rest.slice(i + 1, end);
      i = end + 1;
    } else {
      while (i < rest.length && !/\s/.test(rest[i]!)) {
        if (rest[i] === '"') {
          const end = rest.indexOf('"', i + 1);
          if (end === -1) throw new Error('unterminated quote');
          word += rest.slice(i + 1, end);
          i = end + 1;
        } else {
          word += rest[i];
          i++;
        }
      }
    }
    args.push(word);
  }
  return { keyword: match[1]!.toLowerCase(), args };
}

/** ssh's pattern syntax: `*` any run of characters, `?` one character, case-insensitive. */
export function matchPattern(name: string, pattern: string): boolean {
  const source = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${source}$`, 'i').test(name);
}

/**
 * A pattern list (`a,b,!c` or separate words): false when any negated pattern matches,
 * otherwise true when a positive one does.
 */
export function matchPatternList(name: string, patterns: readonly string[]): boolean {
  let matched = false;
  for (const raw of patterns.flatMap((p) => p.split(','))) {
    if (raw === '') continue;
    if (raw.startsWith('!')) {
      if (matchPattern(name, raw.slice(1))) return false;
    } else if (matchPattern(name, raw)) {
      matched = true;
    }
  }
  return matched;
}

function expandHome(path: string, home: string): string {
  if (path === '~') return home;
  if (path.startsWith('~/')) return join(home, path.slice(2));
  return path;
}

const ACCUMULATE = new Set(['identityfile']);

export interface LookupContext {
  /** The user running the product (for %u and Match localuser). */
  readonly localUser?: string;
  readonly home?: string;
  readonly env?: NodeJS.ProcessEnv;
}

export class SshConfig {
  private readonly cache = new Map<string, Line[]>();

  /**
   * `files` are read in order, as ssh reads ~/.ssh/config and then /etc/ssh/ssh_config.
   * Missing files are skipped.
   */
  constructor(
    readonly files: readonly string[],
    private readonly home: string = homedir(),
  ) {}

  /** The user's configuration as ssh reads it by default. */
  static default(home: string = homedir()): SshConfig {
    return new SshConfig([join(home, '.ssh', 'config'), '/etc/ssh/ssh_config'], home);
  }

  /** A single file, as `ssh -F FILE` reads it (no system-wide file). */
  static file(path: string, home: string = homedir()): SshConfig {
    if (!existsSync(path)) throw new SshConfigError(path, 0, 'the file does not exist');
    return new SshConfig([path], home);
  }

  /** The settings that apply to `host` (the name as the user gave it). */
  lookup(host: string, context: LookupContext = {}): SshHostConfig {
    const localUser = context.localUser ?? safeUserName();
    const home = context.home ?? this.home;
    const values = new Map<string, string[]>();
    const identityFiles: string[] = [];
    const state = { host, localUser, home, values, identityFiles, env: context.env ?? process.env };
    for (const file of this.files) {
      if (!existsSync(file)) continue;
      this.walk(file, state, true, 0);
    }
    return this.build(state);
  }

  private read(file: string): Line[] {
    const cached = this.cache.get(file);
    if (cached) return cached;
    const lines: Line[] = [];
    const text = readFileSync(file, 'utf8');
    text.split(/\r?\n/).forEach((raw, index) => {
      let parsed;
      try {
        parsed = splitConfigLine(raw);
      } catch (error) {
        throw new SshConfigError(file, index + 1, (error as Error).message);
      }
      if (parsed) lines.push({ ...parsed, file, line: index + 1 });
    });
    this.cache.set(file, lines);
    return lines;
  }

  private walk(
    file: string,
    state: { host: string; localUser: string; home: string; values: Map<string, string[]>; identityFiles: string[]; env: NodeJS.ProcessEnv },
    startActive: boolean,
    depth: number,
  ): void {
    if (depth > 16) throw new SshConfigError(file, 0, 'Include nested too deeply');
    let active = startActive;
    for (const line of this.read(file)) {
      switch (line.keyword) {
        case 'host':
          active = matchPatternList(state.host, line.args);
          break;
        case 'match':
          active = this.matchCriteria(line, state);
          break;
        case 'include':
          if (!active) break;
          for (const pattern of line.args) {
            for (const included of this.globInclude(pattern, file, state.home)) this.walk(included, state, active, depth + 1);
          }
          break;
        default:
          if (!active) break;
          if (ACCUMULATE.has(line.keyword)) {
            if (line.args[0] !== undefined) state.identityFiles.push(line.args[0]);
          } else if (!state.values.has(line.keyword)) {
            state.values.set(line.keyword, line.args);
          }
      }
    }
  }

  private matchCriteria(line: Line, state: { host: string; localUser: string; values: Map<string, string[]> }): boolean {
    const args = line.args;
    if (args.length === 1 && args[0]!.toLowerCase() === 'all') return true;
    for (let i = 0; i < args.length; i++) {
      let criterion = args[i]!.toLowerCase();
      const negate = criterion.startsWith('!');
      if (negate) criterion = criterion.slice(1);
      if (criterion === 'all') continue;
      const value = args[++i];
      if (value === undefined) throw new SshConfigError(line.file, line.line, `Match ${criterion} needs an argument`);
      let result: boolean;
      switch (criterion) {
        case 'host':
          result = matchPatternList(state.values.get('hostname')?.[0]?.replace(/%h/g, state.host) ?? state.host, [value]);
          break;
        case 'originalhost':
          result = matchPatternList(state.host, [value]);
          break;
        case 'user':
          result = matchPatternList(state.values.get('user')?.[0] ?? state.localUser, [value]);
          break;
        case 'localuser':
          result = matchPatternList(state.localUser, [value]);
          break;
        default:
          return false;
      }
      if (result === negate) return false;
    }
    return true;
  }

  private globInclude(pattern: string, from: string, home: string): string[] {
    let path = expandHome(pattern, home);
    if (!isAbsolute(path)) {
      // ssh resolves relative Include paths against ~/.ssh for user files and /etc/ssh otherwise.
      const base = from.startsWith('/etc/') ? '/etc/ssh' : join(home, '.ssh');
      path = join(base, path);
    }
    const name = basename(path);
    if (!/[*?]/.test(name)) return existsSync(path) ? [path] : [];
    const dir = dirname(path);
    let entries: string[];
    try {
      entries = readdirSync(dir);
    } catch {
      return [];
    }
    return entries.filter((entry) => matchPattern(entry, name)).sort().map((entry) => join(dir, entry));
  }

  private build(state: { host: string; localUser: string; home: string; values: Map<string, string[]>; identityFiles: string[]; env: NodeJS.ProcessEnv }): SshHostConfig {
    const v = state.values;
    const first = (key: string): string | undefined => v.get(key)?.[0];
    const number = (key: string): number | undefined => {
      const text = first(key);
      if (text === undefined) return undefined;
      const n = Number(text);
      return Number.isFinite(n) ? n : undefined;
    };
    const yes = (key: string): boolean | undefined => {
      const text = first(key)?.toLowerCase();
      return text === undefined ? undefined : text === 'yes' || text === 'true';
    };
    const config: SshHostConfig = { identityFiles: [...state.identityFiles] };
    const set = <K extends keyof SshHostConfig>(key: K, value: SshHostConfig[K] | undefined): void => {
      if (value !== undefined) config[key] = value;
    };
    set('hostName', first('hostname'));
    set('user', first('user'));
    set('port', number('port'));
    set('identitiesOnly', yes('identitiesonly'));
    set('identityAgent', first('identityagent'));
    set('proxyJump', first('proxyjump'));
    set('proxyCommand', v.get('proxycommand')?.join(' '));
    set('userKnownHostsFiles', v.get('userknownhostsfile'));
    set('globalKnownHostsFiles', v.get('globalknownhostsfile'));
    set('hostKeyAlias', first('hostkeyalias'));
    set('connectTimeout', number('connecttimeout'));
    set('serverAliveInterval', number('serveraliveinterval'));
    set('serverAliveCountMax', number('serveralivecountmax'));
    set('strictHostKeyChecking', first('stricthostkeychecking')?.toLowerCase());
    set('hashKnownHosts', yes('hashknownhosts'));
    return config;
  }
}

function safeUserName(): string {
  try {
    return userInfo().username;
  } catch {
    return process.env.USER ?? 'root';
  }
}

/** Values for ssh's percent tokens. */
export interface TokenValues {
  readonly host: string;
  readonly originalHost: string;
  readonly port: number;
  readonly user: string;
  readonly localUser: string;
  readonly home: string;
}

/** Expands %h, %n, %p, %r, %u, %d, %i, %l, %% and ${VAR}, then a leading ~. */
export function expandTokens(text: string, values: TokenValues, env: NodeJS.ProcessEnv = process.env): string {
  const expanded = text
    .replace(/%([%hnprudil])/g, (_, token: string) => {
      switch (token) {
        case '%':
          return '%';
        case 'h':
          return values.host;
        case 'n':
          return values.originalHost;
        case 'p':
          return String(values.port);
        case 'r':
          return values.user;
        case 'u':
          return values.localUser;
        case 'd':
          return values.home;
        case 'i':
          return String(typeof process.getuid === 'function' ? process.getuid() : 0);
        default:
          return localHostname().split('.')[0] ?? '';
      }
    })
    .replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, name: string) => env[name] ?? '');
  return expandHome(expanded, values.home);
}
