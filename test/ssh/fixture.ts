/**
 * Real OpenSSH servers on loopback for the SSH tests: one `sshd -D -e` per host on 127.0.0.N
 * with its own port, host key and generated config, an authorized client key made for this
 * run, a known_hosts file (one entry hashed) and an ssh_config that names the hosts. Nothing
 * touches ~/.ssh. Every "host" is this machine, so each host's worker processes are told
 * apart by the cache folder in their command line (`<root>/<host>/cache/...`).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const ROOT = join(__dirname, '..', '..');
export const PYTHON = join(ROOT, '.venv', 'bin', 'python');
export const SSHD = '/usr/sbin/sshd';

export interface SshHost {
  readonly name: string;
  readonly address: string;
  readonly port: number;
  readonly dir: string;
  readonly cacheDir: string;
  /** "ssh-ed25519 AAAA..." */
  readonly hostKey: string;
  process: ChildProcess | undefined;
}

export interface SshFixture {
  readonly root: string;
  readonly hosts: SshHost[];
  readonly clientKey: string;
  readonly knownHosts: string;
  readonly sshConfig: string;
  /** An environment for clients: no agent, HOME inside the fixture. */
  readonly env: NodeJS.ProcessEnv;
  host(name: string): SshHost;
  /** Writes a hosts file (defaults: the project's .venv python, 2 slots, a cache per host). */
  writeHostsFile(extra?: { defaults?: object; hosts?: Record<string, object>; reconnect?: object }, name?: string): string;
  /** Kills a host's sshd, its sessions and its workers at once (as if the machine died). */
  killHost(name: string): void;
  /** Starts a killed host's sshd again. */
  restartHost(name: string): Promise<void>;
  /** Live processes of a host's workers (found by its cache folder in their command line). */
  workerPids(name: string): number[];
  stop(): Promise<void>;
}

function freePort(address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, address, () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

function waitForBanner(address: string, port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = (): void => {
      const socket = connect(port, address);
      socket.setEncoding('utf8');
      socket.once('data', (data: string) => {
        socket.destroy();
        if (data.startsWith('SSH-')) resolve();
        else retry();
      });
      socket.once('error', () => retry());
    };
    const retry = (): void => {
      if (Date.now() > deadline) reject(new Error(`sshd on ${address}:${port} did not answer`));
      else setTimeout(attempt, 50);
    };
    attempt();
  });
}

export interface ProcInfo {
  pid: number;
  ppid: number;
  cmdline: string;
  zombie: boolean;
}

export function processTable(): ProcInfo[] {
  const table: ProcInfo[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const after = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
      table.push({ pid: Number(entry), ppid: Number(after[1]), cmdline, zombie: after[0] === 'Z' });
    } catch {
      // Gone while we looked.
    }
  }
  return table;
}

export function descendants(pid: number, table: ProcInfo[]): number[] {
  const out: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const parent = queue.shift()!;
    for (const p of table) {
      if (p.ppid === parent && !out.includes(p.pid)) {
        out.push(p.pid);
        queue.push(p.pid);
      }
    }
  }
  return out;
}

function kill(pid: number, signal: NodeJS.Signals = 'SIGKILL'): void {
  try {
    process.kill(pid, signal);
  } catch {
    // Already gone.
  }
}

/** `withoutSftp`: hosts whose sshd has no SFTP subsystem, as hardened hosts are configured. */
export async function startSshFixture(count = 4, options: { withoutSftp?: readonly string[] } = {}): Promise<SshFixture> {
  if (!existsSync(SSHD)) throw new Error(`${SSHD} is missing: run scripts/setup-sshd.sh`);
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const root = mkdtempSync(join(tmpdir(), 'hr-ssh-'));
  const home = join(root, 'home');
  mkdirSync(home);
  const clientKey = join(root, 'client_key');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'hyperopt-runner-test', '-f', clientKey]);
  writeFileSync(join(root, 'authorized_keys'), readFileSync(`${clientKey}.pub`));

  const hosts: SshHost[] = [];
  for (let i = 0; i < count; i++) {
    const name = `h${i + 1}`;
    const address = `127.0.0.${i + 2}`;
    const dir = join(root, name);
    mkdirSync(dir);
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', join(dir, 'ssh_host_ed25519_key')]);
    const port = await freePort(address);
    writeFileSync(
      join(dir, 'sshd_config'),
      [
        `Port ${port}`,
        `ListenAddress ${address}:${port}`,
        `HostKey ${join(dir, 'ssh_host_ed25519_key')}`,
        `PidFile ${join(dir, 'sshd.pid')}`,
        `AuthorizedKeysFile ${join(root, 'authorized_keys')}`,
        'PermitRootLogin yes',
        'UsePAM no',
        'StrictModes no',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'PubkeyAuthentication yes',
        'AllowTcpForwarding yes',
        'MaxSessions 32',
        'MaxStartups 100',
        'PrintMotd no',
        'LogLevel ERROR',
        ...(options.withoutSftp?.includes(name) ? [] : ['Subsystem sftp internal-sftp']),
        // Sessions of this machine's root would run its ~/.bashrc (bash reads it under sshd while
        // SHLVL < 2), which can be slow or take locks that a killed host leaves behind. The tests
        // measure the product, not that file.
        'SetEnv SHLVL=1',
        '',
      ].join('\n'),
    );
    const hostKey = readFileSync(join(dir, 'ssh_host_ed25519_key.pub'), 'utf8').trim().split(' ').slice(0, 2).join(' ');
    hosts.push({ name, address, port, dir, cacheDir: join(dir, 'cache'), hostKey, process: undefined });
  }

  // known_hosts: every host but h2 in plain form; h2 hashed by ssh-keygen -H.
  const knownHosts = join(root, 'known_hosts');
  const plain = hosts.filter((h) => h.name !== 'h2').map((h) => `[${h.address}]:${h.port} ${h.hostKey}`);
  const hashedSource = join(root, 'hashed_known_hosts');
  const h2 = hosts.find((h) => h.name === 'h2');
  let hashed = '';
  if (h2) {
    writeFileSync(hashedSource, `[${h2.address}]:${h2.port} ${h2.hostKey}\n`);
    execFileSync('ssh-keygen', ['-q', '-H', '-f', hashedSource], { stdio: 'ignore' });
    hashed = readFileSync(hashedSource, 'utf8');
  }
  writeFileSync(knownHosts, `# generated for the SSH tests\n${plain.join('\n')}\n${hashed}`);

  const sshConfig = join(root, 'ssh_config');
  writeFileSync(
    sshConfig,
    [
      ...hosts.flatMap((h) => [`Host ${h.name}`, `  HostName ${h.address}`, `  Port ${h.port}`]),
      'Host *',
      '  User root',
      `  IdentityFile ${clientKey}`,
      '  IdentitiesOnly yes',
      `  UserKnownHostsFile ${knownHosts}`,
      '  GlobalKnownHostsFile /dev/null',
      // Generous: a loaded machine can take seconds to decrypt a key in JavaScript.
      '  ConnectTimeout 20',
      '',
    ].join('\n'),
  );

  const children: ChildProcess[] = [];
  const startHost = async (host: SshHost): Promise<void> => {
    if (host.process && host.process.exitCode === null && host.process.signalCode === null) return;
    const child = spawn(SSHD, ['-D', '-e', '-f', join(host.dir, 'sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
    let log = '';
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (t: string) => (log = (log + t).slice(-4000)));
    host.process = child;
    children.push(child);
    try {
      await waitForBanner(host.address, host.port);
    } catch (error) {
      throw new Error(`${(error as Error).message}: ${log}`, { cause: error });
    }
  };
  await Promise.all(hosts.map(startHost));

  const env: NodeJS.ProcessEnv = { ...process.env, HOME: home };
  delete env.SSH_AUTH_SOCK;
  delete env.HYPEROPT_RUNNER_HOSTS_FILE;
  delete env.HYPEROPT_RUNNER_SSH_CONFIG;
  let hostsFiles = 0;

  const fixture: SshFixture = {
    root,
    hosts,
    clientKey,
    knownHosts,
    sshConfig,
    env,
    host(name) {
      const host = hosts.find((h) => h.name === name);
      if (!host) throw new Error(`no host ${name}`);
      return host;
    },
    writeHostsFile(extra = {}, name) {
      const path = join(root, name ?? `hosts-${++hostsFiles}.json`);
      const perHost: Record<string, object> = {};
      for (const h of hosts) perHost[h.name] = { cacheDir: h.cacheDir, ...(extra.hosts?.[h.name] ?? {}) };
      for (const [hostName, settings] of Object.entries(extra.hosts ?? {})) perHost[hostName] ??= settings;
      writeFileSync(
        path,
        JSON.stringify(
          {
            sshConfig,
            defaults: { python: PYTHON, slots: 2, ...(extra.defaults ?? {}) },
            hosts: perHost,
            reconnect: { initialDelayMs: 200, maxDelayMs: 1000, maxFailures: 3, ...(extra.reconnect ?? {}) },
          },
          null,
          2,
        ),
      );
      return path;
    },
    killHost(name) {
      const host = fixture.host(name);
      const table = processTable();
      const victims = new Set<number>();
      if (host.process?.pid) {
        victims.add(host.process.pid);
        for (const pid of descendants(host.process.pid, table)) victims.add(pid);
      }
      for (const pid of fixture.workerPids(name)) {
        victims.add(pid);
        for (const child of descendants(pid, table)) victims.add(child);
      }
      for (const pid of victims) kill(pid);
      host.process = undefined;
    },
    async restartHost(name) {
      await startHost(fixture.host(name));
    },
    workerPids(name) {
      const host = fixture.host(name);
      const marker = `${host.cacheDir}/`;
      return processTable()
        .filter((p) => !p.zombie && p.cmdline.includes(marker))
        .map((p) => p.pid);
    },
    async stop() {
      for (const host of hosts) fixture.killHost(host.name);
      // Each sshd was started in a process group of its own: end the groups too.
      for (const child of children) {
        if (!child.pid) continue;
        kill(child.pid);
        kill(-child.pid);
      }
      rmSync(root, { recursive: true, force: true });
    },
  };
  return fixture;
}

/** Processes of any host of the fixture (workers and their children), for leak checks. */
export function fixturePids(fixture: SshFixture): number[] {
  return fixture.hosts.flatMap((h) => fixture.workerPids(h.name));
}

export async function waitFor<T>(predicate: () => T | undefined | false, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = predicate();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
