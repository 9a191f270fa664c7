/**
 * Host key verification against OpenSSH known_hosts files (sshd(8), "SSH_KNOWN_HOSTS FILE
 * FORMAT"): plain and hashed (`|1|salt|hash`) host names, `[host]:port` for ports other than
 * 22, `*`/`?`/`!` patterns, and `@revoked` markers. `@cert-authority` lines are skipped: host
 * certificates are not supported.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { appendFileSync, chmodSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { matchPattern } from './sshConfig';

export interface KnownHostEntry {
  readonly file: string;
  readonly line: number;
  readonly marker: 'revoked' | 'cert-authority' | undefined;
  readonly hosts: string;
  readonly keyType: string;
  readonly key: Buffer;
}

export type HostKeyCheck =
  | { readonly status: 'known'; readonly entry: KnownHostEntry }
  | { readonly status: 'unknown' }
  /** The host is known with other keys: either the key changed or someone is in between. */
  | { readonly status: 'changed'; readonly expected: KnownHostEntry }
  | { readonly status: 'revoked'; readonly entry: KnownHostEntry };

/** The algorithm name inside an SSH public key blob ("ssh-ed25519", "ssh-rsa", ...). */
export function keyTypeOf(blob: Buffer): string {
  if (blob.length < 4) return 'unknown';
  const length = blob.readUInt32BE(0);
  if (length > 64 || 4 + length > blob.length) return 'unknown';
  return blob.subarray(4, 4 + length).toString('latin1');
}

/** OpenSSH's fingerprint: "SHA256:" and the unpadded base64 of the blob's SHA-256. */
export function fingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** The name a host is recorded under: "host" on port 22, "[host]:port" otherwise. */
export function knownHostName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

function hashedMatches(pattern: string, name: string): boolean {
  const parts = pattern.split('|');
  // |1|base64(salt)|base64(HMAC-SHA1(salt, name))
  if (parts.length !== 4 || parts[1] !== '1') return false;
  const salt = Buffer.from(parts[2]!, 'base64');
  const expected = Buffer.from(parts[3]!, 'base64');
  const actual = createHmac('sha1', salt).update(name).digest();
  return expected.length === actual.length && expected.equals(actual);
}

/** Whether an entry's host field covers `name`. */
export function hostFieldMatches(field: string, name: string): boolean {
  if (field.startsWith('|')) return hashedMatches(field, name);
  let matched = false;
  for (const pattern of field.split(',')) {
    if (pattern === '') continue;
    const negated = pattern.startsWith('!');
    const body = negated ? pattern.slice(1) : pattern;
    if (matchPattern(name, body)) {
      if (negated) return false;
      matched = true;
    }
  }
  return matched;
}

export function parseKnownHosts(text: string, file: string): KnownHostEntry[] {
  const entries: KnownHostEntry[] = [];
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const fields = line.split(/\s+/);
    let marker: KnownHostEntry['marker'];
    if (fields[0]?.startsWith('@')) {
      const name = fields.shift()!.slice(1);
      if (name !== 'revoked' && name !== 'cert-authority') return;
      marker = name;
    }
    const [hosts, keyType, keyText] = fields;
    if (!hosts || !keyType || !keyText) return;
    const key = Buffer.from(keyText, 'base64');
    if (key.length === 0) return;
    entries.push({ file, line: index + 1, marker, hosts, keyType, key });
  });
  return entries;
}

export class KnownHosts {
  constructor(
    /** Files that are read; the first one is where new keys are recorded. */
    readonly userFiles: readonly string[],
    readonly globalFiles: readonly string[] = ['/etc/ssh/ssh_known_hosts', '/etc/ssh/ssh_known_hosts2'],
  ) {}

  entries(): KnownHostEntry[] {
    const all: KnownHostEntry[] = [];
    for (const file of [...this.userFiles, ...this.globalFiles]) {
      if (file === '/dev/null' || !existsSync(file)) continue;
      try {
        if (!statSync(file).isFile()) continue;
        all.push(...parseKnownHosts(readFileSync(file, 'utf8'), file));
      } catch {
        // An unreadable file holds no usable keys.
      }
    }
    return all;
  }

  /** Entries (not revoked, not CA) that name this host, in file order. */
  keysFor(name: string): KnownHostEntry[] {
    return this.entries().filter((e) => e.marker === undefined && hostFieldMatches(e.hosts, name));
  }

  check(name: string, key: Buffer): HostKeyCheck {
    const entries = this.entries();
    const revoked = entries.find((e) => e.marker === 'revoked' && e.key.equals(key));
    if (revoked) return { status: 'revoked', entry: revoked };
    const forHost = entries.filter((e) => e.marker === undefined && hostFieldMatches(e.hosts, name));
    const match = forHost.find((e) => e.key.equals(key));
    if (match) return { status: 'known', entry: match };
    if (forHost.length === 0) return { status: 'unknown' };
    const type = keyTypeOf(key);
    return { status: 'changed', expected: forHost.find((e) => e.keyType === type) ?? forHost[0]! };
  }

  /** Appends a key for `name` to the first user file, creating it (mode 600) when needed. */
  record(name: string, key: Buffer, hashed = false): string {
    const file = this.userFiles[0];
    if (!file) throw new Error('no known_hosts file to record the key in');
    const dir = dirname(file);
    if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o700 });
    let field = name;
    if (hashed) {
      const salt = randomBytes(20);
      field = `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`;
    }
    let prefix = '';
    if (existsSync(file)) {
      const text = readFileSync(file, 'utf8');
      if (text.length > 0 && !text.endsWith('\n')) prefix = '\n';
    }
    const created = !existsSync(file);
    appendFileSync(file, `${prefix}${field} ${keyTypeOf(key)} ${key.toString('base64')}\n`, { mode: 0o600 });
    if (created) chmodSync(file, 0o600);
    return file;
  }
}

/** Host key algorithms to offer first so the server presents a key type that is on record. */
export function preferredHostKeyAlgorithms(entries: readonly KnownHostEntry[]): string[] {
  const algorithms: string[] = [];
  for (const entry of entries) {
    const names = entry.keyType === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [entry.keyType];
    for (const name of names) if (!algorithms.includes(name)) algorithms.push(name);
  }
  return algorithms;
}
