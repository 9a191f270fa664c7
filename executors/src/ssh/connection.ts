/**
 * One authenticated SSH connection to a host (through its ProxyJump hops, if any), with its
 * host key checked against known_hosts before anything else happens.
 */
import { readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import type { Duplex } from 'node:stream';
import type * as Ssh2 from 'ssh2';
import type { AgentAuthMethod, AuthenticationType, Client, ClientChannel, ParsedKey, PublicKeyAuthMethod, SFTPWrapper } from 'ssh2';
import { RunnerError } from '../../../core/src/errors';
import { fingerprint, keyTypeOf, preferredHostKeyAlgorithms } from './knownHosts';
import { describeTarget, targetAddress, type HostTarget } from './target';

// ssh2 is loaded when a host is first reached: loading it costs every command its WebAssembly
// heap (about 16 MB of external memory), and most commands never open a connection.
function loadSsh2(): typeof Ssh2 {
  // A CommonJS package: require gives its whole exports (import() would lose `utils`).
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('ssh2') as typeof Ssh2;
}

export interface HostKeyPrompt {
  readonly host: string;
  /** The name the key is recorded under in known_hosts. */
  readonly hostKeyName: string;
  readonly type: string;
  readonly fingerprint: string;
  /** The known_hosts file it would be recorded in. */
  readonly file: string;
}

export interface ConnectOptions {
  /** Record keys of hosts not yet in known_hosts (the CLI's --accept-new-host-keys). */
  readonly acceptNewHostKeys?: boolean;
  /** Asked about an unknown host key (the editor shows a prompt); true records and accepts it. */
  readonly onUnknownHostKey?: (prompt: HostKeyPrompt) => Promise<boolean>;
  /**
   * Asked for the passphrase of an encrypted key none of the environment variables unlock; asked
   * once more, with `retry`, when its answer does not decrypt the key. A rejection is reported
   * with the key in the authentication error.
   */
  readonly passphrase?: (keyPath: string, host: string, options?: { retry: boolean }) => Promise<string | undefined>;
  /** Told when a new host key was recorded. */
  readonly onHostKeyRecorded?: (text: string) => void;
  readonly env?: NodeJS.ProcessEnv;
}

export interface ExecResult {
  readonly code: number | null;
  readonly signal: string | undefined;
  readonly stdout: string;
  readonly stderr: string;
}

/** Codes that no retry can fix: the host is dropped instead of being reconnected. */
const PERMANENT = new Set(['ssh_host_key_unknown', 'ssh_host_key_changed', 'ssh_host_key_revoked', 'ssh_auth_failed', 'ssh_config']);

export function isPermanentFailure(error: unknown): boolean {
  return error instanceof RunnerError && PERMANENT.has(error.code);
}

function shortPath(path: string): string {
  const home = homedir();
  return path.startsWith(home + '/') ? `~${path.slice(home.length)}` : path;
}

/** Why the socket could not be used, in a few words. */
function socketReason(error: NodeJS.ErrnoException & { level?: string }, target: HostTarget): string {
  switch (error.code) {
    case 'ECONNREFUSED':
      return 'connection refused (no SSH server listening on that port?)';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `cannot resolve the host name ${target.hostName}`;
    case 'EHOSTUNREACH':
      return 'host unreachable';
    case 'ENETUNREACH':
      return 'network unreachable';
    case 'ECONNRESET':
      return 'connection reset by the host';
    case 'ETIMEDOUT':
      return 'connection timed out';
    default:
      if (error.level === 'client-timeout') return `no SSH handshake within ${Math.round(target.connectTimeoutMs / 1000)} s`;
      return error.message;
  }
}

type Method = AgentAuthMethod | PublicKeyAuthMethod;

/** Private keys already read (and decrypted), by path and modification time. */
const unlockedKeys = new Map<string, ParsedKey>();

interface Attempt {
  readonly method: Method | false;
}

/** The authentication methods to try, in ssh's order: the agent, then key files. */
class Authenticator {
  readonly tried: string[] = [];
  private readonly queue: Array<{ kind: 'agent'; socket: string } | { kind: 'key'; path: string }> = [];
  usedMethod: string | undefined;

  constructor(
    private readonly target: HostTarget,
    private readonly options: ConnectOptions,
  ) {
    if (target.agent && !target.identitiesOnly) this.queue.push({ kind: 'agent', socket: target.agent });
    for (const path of target.identityFiles) this.queue.push({ kind: 'key', path });
  }

  async next(authsLeft: AuthenticationType[] | null): Promise<Attempt> {
    if (authsLeft && !authsLeft.includes('publickey')) {
      this.tried.push(`the server accepts only ${authsLeft.join(', ')}`);
      return { method: false };
    }
    for (;;) {
      const item = this.queue.shift();
      if (!item) return { method: false };
      if (item.kind === 'agent') {
        this.tried.push('ssh-agent');
        this.usedMethod = 'ssh-agent';
        return { method: { type: 'agent', username: this.target.user, agent: item.socket } };
      }
      const method = await this.keyMethod(item.path);
      if (method) {
        this.usedMethod = `key ${shortPath(item.path)}`;
        return { method };
      }
    }
  }

  private async keyMethod(path: string): Promise<Method | undefined> {
    const label = shortPath(path);
    let data: Buffer;
    let stamp: string;
    try {
      data = readFileSync(path);
      stamp = `${path}\0${statSync(path).mtimeMs}`;
    } catch (error) {
      this.tried.push(`${label} (unreadable: ${(error as NodeJS.ErrnoException).code ?? 'error'})`);
      return undefined;
    }
    // Decrypting a key costs a key derivation (seconds in JavaScript): once per process.
    const cached = unlockedKeys.get(stamp);
    if (cached) {
      this.tried.push(label);
      return { type: 'publickey', username: this.target.user, key: cached };
    }
    const { utils } = loadSsh2();
    let parsed = utils.parseKey(data);
    if (!(parsed instanceof Error)) {
      const key = Array.isArray(parsed) ? parsed[0]! : parsed;
      unlockedKeys.set(stamp, key);
      this.tried.push(label);
      return { type: 'publickey', username: this.target.user, key };
    }
    if (!/encrypted|passphrase/i.test(parsed.message)) {
      this.tried.push(`${label} (not a usable private key: ${parsed.message})`);
      return undefined;
    }
    const env = this.options.env ?? process.env;
    const candidates = [this.target.passphraseEnv ? env[this.target.passphraseEnv] : undefined, env.HYPEROPT_RUNNER_SSH_PASSPHRASE];
    let passphrase = candidates.find((p) => p !== undefined && p !== '');
    const ask = passphrase === undefined ? this.options.passphrase : undefined;
    for (let attempt = 0; ; attempt++) {
      if (ask) {
        try {
          passphrase = await ask(path, this.target.name, { retry: attempt > 0 });
        } catch (error) {
          this.tried.push(`${label} (encrypted; ${(error as Error).message})`);
          return undefined;
        }
      }
      if (passphrase === undefined) {
        const where = this.target.passphraseEnv ?? 'HYPEROPT_RUNNER_SSH_PASSPHRASE';
        this.tried.push(`${label} (encrypted; no passphrase in ${where})`);
        return undefined;
      }
      parsed = utils.parseKey(data, passphrase);
      if (!(parsed instanceof Error)) break;
      if (!ask || attempt > 0) {
        this.tried.push(`${label} (wrong passphrase)`);
        return undefined;
      }
    }
    const key = Array.isArray(parsed) ? parsed[0]! : parsed;
    unlockedKeys.set(stamp, key);
    this.tried.push(label);
    return { type: 'publickey', username: this.target.user, key };
  }

  /** An attempt that threw is named in the error, not taken for "nothing tried". */
  noteFailure(error: unknown): void {
    this.tried.push(`an error (${error instanceof Error ? error.message : String(error)})`);
  }

  describeTried(): string {
    if (this.tried.length > 0) return this.tried.join(', ');
    return 'nothing: no ssh-agent (SSH_AUTH_SOCK) and no key file found';
  }
}

export interface HostKeyInfo {
  readonly type: string;
  readonly fingerprint: string;
  /** Where it is on record ("file:line"), or that it was just recorded. */
  readonly source: string;
}

/** Connects one client over `sock` (or TCP), verifying the host key. */
function connectClient(target: HostTarget, options: ConnectOptions, sock: Duplex | undefined): Promise<{ client: Client; hostKey: HostKeyInfo; auth: string }> {
  const { Client } = loadSsh2();
  return new Promise((resolve, reject) => {
    const client = new Client();
    const host = describeTarget(target);
    const auth = new Authenticator(target, options);
    let refusal: RunnerError | undefined;
    let hostKey: HostKeyInfo | undefined;
    let settled = false;
    const fail = (error: RunnerError): void => {
      if (settled) return;
      settled = true;
      client.removeAllListeners('ready');
      client.on('error', () => undefined);
      client.end();
      reject(error);
    };

    const verify = (key: Buffer, done: (ok: boolean) => void): void => {
      const type = keyTypeOf(key);
      const print = fingerprint(key);
      const check = target.knownHosts.check(target.hostKeyName, key);
      const file = target.knownHosts.userFiles[0] ?? '~/.ssh/known_hosts';
      if (check.status === 'known') {
        hostKey = { type, fingerprint: print, source: `${shortPath(check.entry.file)}:${check.entry.line}` };
        done(true);
        return;
      }
      if (check.status === 'revoked') {
        refusal = new RunnerError('ssh_host_key_revoked', { host, type, fingerprint: print, expected: `${check.entry.file}:${check.entry.line}` });
        done(false);
        return;
      }
      if (check.status === 'changed') {
        refusal = new RunnerError('ssh_host_key_changed', {
          host,
          type,
          fingerprint: print,
          expected: `the ${check.expected.keyType} key in ${check.expected.file}:${check.expected.line}`,
          name: target.hostKeyName,
          file: check.expected.file,
        });
        done(false);
        return;
      }
      const record = (): void => {
        try {
          const where = target.knownHosts.record(target.hostKeyName, key, target.hashKnownHosts);
          hostKey = { type, fingerprint: print, source: `recorded in ${shortPath(where)}` };
          options.onHostKeyRecorded?.(`${host}: recorded the new host key ${type} ${print} in ${shortPath(where)}`);
          done(true);
        } catch (error) {
          refusal = new RunnerError('ssh_remote_failed', { host, what: 'cannot record the host key', reason: (error as Error).message });
          done(false);
        }
      };
      if (options.acceptNewHostKeys || target.acceptNewHostKeys) {
        record();
        return;
      }
      const unknown = new RunnerError('ssh_host_key_unknown', { host, type, fingerprint: print, file: shortPath(file) });
      if (options.onUnknownHostKey) {
        options.onUnknownHostKey({ host, hostKeyName: target.hostKeyName, type, fingerprint: print, file }).then(
          (accepted) => {
            if (accepted) record();
            else {
              refusal = unknown;
              done(false);
            }
          },
          (error: unknown) => {
            // The question got no answer (timed out, or the run stopped): say so in the refusal.
            refusal = new RunnerError('ssh_host_key_unknown', { host, type, fingerprint: print, how: `trust it when asked (${(error as Error).message})` });
            done(false);
          },
        );
        return;
      }
      refusal = unknown;
      done(false);
    };

    client.on('ready', () => {
      if (settled) return;
      settled = true;
      resolve({ client, hostKey: hostKey!, auth: auth.usedMethod ?? 'none' });
    });
    client.on('error', (error: Error & { level?: string; code?: string }) => {
      if (refusal) return fail(refusal);
      if (error.level === 'client-authentication') {
        return fail(new RunnerError('ssh_auth_failed', { host, user: target.user, tried: auth.describeTried() }));
      }
      const through = target.via ? ` (through ${target.via.name})` : '';
      fail(new RunnerError('ssh_connect_failed', { host: target.name, address: `${targetAddress(target)}${through}`, reason: socketReason(error, target) }));
    });
    client.on('close', () => {
      if (refusal) fail(refusal);
      else fail(new RunnerError('ssh_connect_failed', { host: target.name, address: targetAddress(target), reason: 'the connection closed during the handshake' }));
    });

    const known = target.knownHosts.keysFor(target.hostKeyName);
    const preferred = preferredHostKeyAlgorithms(known);
    try {
      client.connect({
        host: target.hostName,
        port: target.port,
        username: target.user,
        ...(sock ? { sock } : {}),
        readyTimeout: target.connectTimeoutMs,
        keepaliveInterval: target.keepaliveIntervalMs,
        keepaliveCountMax: target.keepaliveCountMax,
        hostVerifier: (key: Buffer, done: (ok: boolean) => void) => verify(key, done),
        authHandler: (authsLeft, _partial, next) => {
          auth.next(authsLeft).then(
            (attempt) => next(attempt.method === false ? (false as never) : attempt.method),
            (error: unknown) => {
              auth.noteFailure(error);
              next(false as never);
            },
          );
        },
        ...(preferred.length > 0 ? { algorithms: { serverHostKey: hostKeyOrder(preferred) as never } } : {}),
      });
      // Worker messages are small and answered at once: without TCP_NODELAY, Nagle's algorithm
      // holds a message behind the host's delayed ACK (about 40 ms on Linux) on every trial.
      client.setNoDelay(true);
    } catch (error) {
      fail(new RunnerError('ssh_connect_failed', { host: target.name, address: targetAddress(target), reason: (error as Error).message }));
    }
  });
}

/** ssh2's default host key algorithms with the ones on record for the host moved to the front. */
function hostKeyOrder(preferred: readonly string[]): string[] {
  // ssh2 keeps its algorithm tables in an internal module without type declarations; it is
  // required here, not at load, for the reason ssh2 itself is (loadSsh2).
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const constants = require('ssh2/lib/protocol/constants') as { DEFAULT_SERVER_HOST_KEY: string[]; SUPPORTED_SERVER_HOST_KEY: string[] };
  const supported = new Set(constants.SUPPORTED_SERVER_HOST_KEY);
  const first = preferred.filter((name) => supported.has(name));
  return [...first, ...constants.DEFAULT_SERVER_HOST_KEY.filter((name) => !first.includes(name))];
}

function forwardOut(client: Client, host: string, port: number): Promise<ClientChannel> {
  return new Promise((resolve, reject) => {
    try {
      client.forwardOut('127.0.0.1', 0, host, port, (error, stream) => (error ? reject(error) : resolve(stream)));
    } catch (error) {
      reject(error as Error);
    }
  });
}

export class SshConnection {
  private ended = false;
  private closeReason = 'the connection closed';
  /** Resolves with why the connection ended. */
  readonly closed: Promise<string>;

  private constructor(
    readonly target: HostTarget,
    readonly client: Client,
    private readonly hops: readonly SshConnection[],
    readonly hostKey: HostKeyInfo,
    readonly auth: string,
    /** Milliseconds from the first TCP packet to an authenticated session (hops included). */
    readonly connectMs: number,
  ) {
    this.closed = new Promise((resolve) => {
      client.on('error', (error: Error) => {
        this.closeReason = error.message;
      });
      client.on('close', () => {
        this.ended = true;
        for (const hop of hops) hop.end();
        resolve(this.closeReason);
      });
    });
  }

  /** Connects to a host, through its ProxyJump hops; rejects with a one-line RunnerError. */
  static async open(target: HostTarget, options: ConnectOptions = {}): Promise<SshConnection> {
    const started = performance.now();
    const hops: SshConnection[] = [];
    let sock: Duplex | undefined;
    if (target.via) {
      const hop = await SshConnection.open(target.via, options);
      hops.push(hop);
      try {
        sock = await forwardOut(hop.client, target.hostName, target.port);
      } catch (error) {
        hop.end();
        throw new RunnerError('ssh_connect_failed', {
          host: target.name,
          address: `${targetAddress(target)} (through ${target.via.name})`,
          reason: (error as Error).message,
        });
      }
    }
    try {
      const { client, hostKey, auth } = await connectClient(target, options, sock);
      return new SshConnection(target, client, hops, hostKey, auth, performance.now() - started);
    } catch (error) {
      for (const hop of hops) hop.end();
      throw error;
    }
  }

  get alive(): boolean {
    return !this.ended;
  }

  /** Runs a command to its end and collects its output. */
  exec(command: string, options: { stdin?: string | Buffer; timeoutMs?: number } = {}): Promise<ExecResult> {
    return this.openExec(command).then(
      (stream) =>
        new Promise<ExecResult>((resolve) => {
          let stdout = '';
          let stderr = '';
          let code: number | null = null;
          let signal: string | undefined;
          stream.setEncoding('utf8');
          stream.stderr.setEncoding('utf8');
          stream.on('data', (chunk: string) => (stdout += chunk));
          stream.stderr.on('data', (chunk: string) => (stderr += chunk));
          stream.on('exit', (exitCode: number | null, signalName?: string) => {
            code = exitCode;
            signal = signalName ?? undefined;
          });
          const timer = options.timeoutMs
            ? setTimeout(() => {
                signal = 'timeout';
                stream.close();
              }, options.timeoutMs)
            : undefined;
          stream.on('close', () => {
            clearTimeout(timer);
            resolve({ code, signal, stdout, stderr });
          });
          if (options.stdin !== undefined) stream.end(options.stdin);
          else stream.end();
        }),
    );
  }

  /** Opens an exec channel; the caller owns the stream. */
  openExec(command: string): Promise<ClientChannel> {
    return new Promise((resolve, reject) => {
      if (this.ended) {
        reject(new Error(this.closeReason));
        return;
      }
      try {
        this.client.exec(command, (error, stream) => {
          if (!error) {
            resolve(stream);
            return;
          }
          const hint = /open failed|prohibited|resource shortage/i.test(error.message)
            ? ' (the server refused another session on this connection: raise MaxSessions in its sshd_config or use fewer slots)'
            : '';
          reject(new Error(`${error.message}${hint}`));
        });
      } catch (error) {
        reject(error as Error);
      }
    });
  }

  sftp(): Promise<SFTPWrapper> {
    return new Promise((resolve, reject) => {
      try {
        this.client.sftp((error, sftp) => (error ? reject(error) : resolve(sftp)));
      } catch (error) {
        reject(error as Error);
      }
    });
  }

  end(): void {
    if (this.ended) return;
    this.client.end();
    for (const hop of this.hops) hop.end();
  }

  /** Drops the connection at once (no goodbye to the server). */
  destroy(): void {
    this.client.destroy();
    for (const hop of this.hops) hop.destroy();
  }
}
