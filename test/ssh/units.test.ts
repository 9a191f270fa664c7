// The SSH executor's parts that need no server: quoting (checked by real shells), ssh_config and
// known_hosts reading (checked against OpenSSH's own tools), hosts files, version comparison.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RunnerError } from '../../core/src/errors';
import { hostSettings, parseHostsFile } from '../../executors/src/ssh/hostsFile';
import { fingerprint, hostFieldMatches, KnownHosts, knownHostName, parseKnownHosts } from '../../executors/src/ssh/knownHosts';
import { killGroupScript, viaSh } from '../../executors/src/ssh/remoteWorker';
import { envWord, shellJoin, shellPath, shellQuote } from '../../executors/src/ssh/shellQuote';
import { expandTokens, matchPatternList, SshConfig, splitConfigLine } from '../../executors/src/ssh/sshConfig';
import { parseDestination, resolveHost } from '../../executors/src/ssh/target';
import { compareVersions } from '../../executors/src/ssh/versions';

const scratch = mkdtempSync(join(tmpdir(), 'hr-ssh-units-'));
const canary = join(scratch, 'pwned');
after(() => rmSync(scratch, { recursive: true, force: true }));

/** Values a user, a file or a host could hand us; none may run as shell code. */
export const HOSTILE = [
  'plain',
  '',
  'two words',
  "it's",
  "'",
  "''",
  '"double"',
  'semi;colon',
  `$(touch ${canary})`,
  `\`touch ${canary}\``,
  `; touch ${canary}; #`,
  `&& touch ${canary}`,
  `| touch ${canary}`,
  'line one\nline two',
  'back\\slash \\\\ and \\n',
  '$HOME ${PATH} $1 $@',
  '*.py ? [a-z]',
  '~ ~root',
  '-n',
  '--',
  'tab\there',
  'unicode é ✓',
  "'\\''",
  '!bang !!',
  '#comment',
  'a=b',
  '{a,b}',
  '<in >out 2>&1',
];

function runShell(shell: string, script: string): string {
  return execFileSync(shell, ['-c', script], { encoding: 'utf8' });
}

for (const shell of ['/bin/sh', 'bash', 'dash']) {
  test(`shellQuote: ${shell} reads every hostile value back unchanged, and runs none of it`, () => {
    for (const value of HOSTILE) {
      assert.equal(runShell(shell, `printf '%s' ${shellQuote(value)}`), value, JSON.stringify(value));
      // Twice quoted, as the remote commands are (login shell, then /bin/sh -c).
      assert.equal(runShell(shell, viaSh(`printf '%s' ${shellQuote(value)}`)), value, JSON.stringify(value));
      // As an environment assignment and as an argument vector.
      assert.equal(runShell(shell, `export X=${shellQuote(value)}; printf '%s' "$X"`), value);
      assert.equal(runShell(shell, `env ${envWord('X', value)} /bin/sh -c 'printf "%s" "$X"'`), value);
      assert.equal(runShell(shell, `printf '%s|' ${shellJoin([value, value])}`), `${value}|${value}|`);
    }
    assert.equal(existsSync(canary), false, 'no hostile value ran as code');
  });
}

test('shellQuote leaves plain words alone, quotes the rest, and refuses NUL', () => {
  assert.equal(shellQuote('abc/def-1.2_x:y@z%,+'), 'abc/def-1.2_x:y@z%,+');
  assert.equal(shellQuote('a b'), "'a b'");
  assert.equal(shellQuote("it's"), "'it'\\''s'");
  assert.equal(shellQuote(''), "''");
  assert.equal(shellQuote('a=b'), "'a=b'");
  assert.throws(() => shellQuote('a\0b'), /NUL/);
  assert.throws(() => envWord('BAD NAME', 'x'), /invalid environment variable name/);
  assert.throws(() => envWord('1X', 'x'));
});

test('shellPath expands ~ on the remote side only, and quotes the rest', () => {
  const home = runShell('/bin/sh', 'printf %s "$HOME"');
  assert.equal(runShell('/bin/sh', `printf '%s' ${shellPath('~/a b/$(x)')}`), `${home}/a b/$(x)`);
  assert.equal(runShell('/bin/sh', `printf '%s' ${shellPath('~')}`), home);
  assert.equal(runShell('/bin/sh', `printf '%s' ${shellPath('/abs/~x')}`), '/abs/~x');
  assert.equal(runShell('/bin/sh', `printf '%s' ${shellPath('~other')}`), '~other');
});

function groupMembers(pgid: number): string[] {
  const members: string[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // Zombies waiting for a parent to reap them run nothing.
      if (Number(fields[2]) === pgid && fields[0] !== 'Z') members.push(entry);
    } catch {
      // Gone while we looked.
    }
  }
  return members;
}

test('killGroupScript ends a process group (TERM, then KILL for what ignores TERM) under dash and bash', async () => {
  for (const shell of ['dash', 'bash']) {
    // A group whose leader ignores TERM and has a child: only the KILL after the grace ends it.
    const child = spawn('python3', ['-c', 'import signal, subprocess, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); subprocess.Popen(["sleep", "60"]); print("up", flush=True); time.sleep(60)'], {
      detached: true,
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    await new Promise((resolve) => child.stdout!.once('data', resolve));
    const pgid = child.pid!;
    assert.equal(groupMembers(pgid).length, 2);
    const started = Date.now();
    await new Promise((resolve) => spawn(shell, ['-c', killGroupScript([pgid], 300)], { stdio: 'ignore' }).once('exit', resolve));
    const took = Date.now() - started;
    // KILL is delivered asynchronously: give the kernel a moment to finish the processes.
    for (let i = 0; i < 40 && groupMembers(pgid).length > 0; i++) await new Promise((resolve) => setTimeout(resolve, 25));
    assert.deepEqual(groupMembers(pgid), [], `${shell}: group ${pgid} gone`);
    assert.ok(took >= 250, `${shell}: waited for the grace before KILL (${took} ms)`);
  }
  assert.equal(killGroupScript([], 1000), 'exit 0');
  assert.equal(killGroupScript([0, 1, -5, 1.5], 1000), 'exit 0', 'never signals pid 0, 1 or negative groups');
});

// ---- ssh_config ---------------------------------------------------------------------------------

function writeConfig(text: string, name = 'config'): string {
  const dir = mkdtempSync(join(scratch, 'cfg-'));
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

test('ssh_config: first value wins, Host patterns with * ? and !, IdentityFile accumulates', () => {
  const path = writeConfig(`
# comment
Host gpu? !gpu9
  HostName %h.cluster.example
  User alice
  Port 2222
  IdentityFile ~/.ssh/gpu_key
Host gpu9
  HostName other
Host *
  User=nobody
  Port 22
  IdentityFile "~/.ssh/id with space"
  ProxyJump bastion
  ServerAliveInterval 7
`);
  const config = SshConfig.file(path, '/home/me');
  const gpu1 = config.lookup('gpu1', { localUser: 'me' });
  assert.equal(gpu1.hostName, '%h.cluster.example');
  assert.equal(gpu1.user, 'alice');
  assert.equal(gpu1.port, 2222);
  assert.deepEqual(gpu1.identityFiles, ['~/.ssh/gpu_key', '~/.ssh/id with space']);
  assert.equal(gpu1.proxyJump, 'bastion');
  assert.equal(gpu1.serverAliveInterval, 7);
  const gpu9 = config.lookup('gpu9', { localUser: 'me' });
  assert.equal(gpu9.hostName, 'other');
  assert.equal(gpu9.user, 'nobody');
  assert.equal(gpu9.port, 22);
  assert.equal(config.lookup('gpu10', { localUser: 'me' }).hostName, undefined, 'gpu? matches one character only');
});

test('ssh_config: Include with globs (relative to ~/.ssh), Match all / host / user, quoted words', () => {
  const home = mkdtempSync(join(scratch, 'home-'));
  mkdirSync(join(home, '.ssh', 'conf.d'), { recursive: true });
  writeFileSync(join(home, '.ssh', 'conf.d', '10-a.conf'), 'Host alpha\n  Port 1001\n');
  writeFileSync(join(home, '.ssh', 'conf.d', '20-b.conf'), 'Host beta\n  Port 1002\n');
  writeFileSync(join(home, '.ssh', 'conf.d', 'ignored.txt'), 'Host alpha\n  Port 9999\n');
  writeFileSync(
    join(home, '.ssh', 'config'),
    'Include conf.d/*.conf\nMatch host 10.0.0.* user root\n  IdentityFile /k/root\nMatch originalhost beta\n  HostName 10.0.0.2\nMatch exec "true"\n  Port 7\nMatch all\n  User root\n',
  );
  const config = SshConfig.default(home);
  assert.equal(config.lookup('alpha').port, 1001);
  const beta = config.lookup('beta');
  assert.equal(beta.port, 1002);
  assert.equal(beta.hostName, '10.0.0.2');
  assert.equal(beta.user, 'root');
  assert.deepEqual(config.lookup('10.0.0.9', { localUser: 'me' }).identityFiles, [], 'Match user root: the user is still unknown (root comes later)');
  assert.equal(config.lookup('gamma').port, undefined, 'Match exec is never taken');
  assert.deepEqual(splitConfigLine('IdentityFile "a b" c'), { keyword: 'identityfile', args: ['a b', 'c'] });
  assert.deepEqual(splitConfigLine('  Port=22'), { keyword: 'port', args: ['22'] });
  assert.equal(splitConfigLine('   # nothing'), undefined);
  assert.equal(matchPatternList('db1', ['db*', '!db2']), true);
  assert.equal(matchPatternList('db2', ['db*,!db2']), false);
});

test('ssh_config tokens and destinations', () => {
  const values = { host: 'h.example', originalHost: 'h', port: 2200, user: 'u', localUser: 'me', home: '/home/me' };
  assert.equal(expandTokens('~/.ssh/%n-%h-%p-%r-%u-%%', values, {}), '/home/me/.ssh/h-h.example-2200-u-me-%');
  assert.equal(expandTokens('${KEYS}/id', values, { KEYS: '/keys' }), '/keys/id');
  assert.deepEqual(parseDestination('alice@box:2222'), { user: 'alice', host: 'box', port: 2222 });
  assert.deepEqual(parseDestination('box'), { user: undefined, host: 'box' });
  assert.deepEqual(parseDestination('ssh://bob@[::1]:22'), { user: 'bob', host: '::1', port: 22 });
  assert.deepEqual(parseDestination('fe80::1'), { user: undefined, host: 'fe80::1' });
  assert.throws(() => parseDestination('box:99999'), /invalid port/);
  assert.throws(() => parseDestination('@box'));
});

test('resolveHost: destination beats the config, the config beats defaults; ProxyJump chains; ProxyCommand is refused', () => {
  const home = mkdtempSync(join(scratch, 'home-'));
  mkdirSync(join(home, '.ssh'));
  writeFileSync(join(home, '.ssh', 'id_ed25519'), 'not used here');
  const path = writeConfig(
    'Host gpu1\n  HostName 10.1.1.1\n  User alice\n  Port 2201\n  ProxyJump hop1,hop2\nHost hop2\n  HostName 10.0.0.2\nHost old\n  ProxyCommand nc %h %p\nHost *\n  UserKnownHostsFile ~/kh %d/kh2\n',
  );
  const options = { sshConfig: SshConfig.file(path, home), hostsFile: parseHostsFile('{}', join(home, 'hosts.json')), env: {}, home, localUser: 'me' };
  const gpu1 = resolveHost('gpu1', options);
  assert.equal(gpu1.hostName, '10.1.1.1');
  assert.equal(gpu1.user, 'alice');
  assert.equal(gpu1.port, 2201);
  assert.equal(gpu1.hostKeyName, '[10.1.1.1]:2201');
  assert.deepEqual(gpu1.identityFiles, [join(home, '.ssh', 'id_ed25519')], 'ssh default keys when none is configured (existing ones only)');
  assert.deepEqual(gpu1.knownHosts.userFiles, [join(home, 'kh'), join(home, 'kh2')]);
  assert.equal(gpu1.via?.name, 'hop2');
  assert.equal(gpu1.via?.hostName, '10.0.0.2');
  assert.equal(gpu1.via?.via?.name, 'hop1', 'ProxyJump a,b: through a, then b');
  assert.equal(gpu1.via?.via?.via, undefined);
  const explicit = resolveHost('bob@gpu1:22', options);
  assert.equal(explicit.user, 'bob');
  assert.equal(explicit.port, 22);
  assert.equal(explicit.hostKeyName, '10.1.1.1');
  assert.equal(resolveHost('plain', options).user, 'me');
  assert.throws(() => resolveHost('old', options), (error: unknown) => error instanceof RunnerError && /ProxyCommand/.test(error.message));
});

// ---- known_hosts ---------------------------------------------------------------------------------

test('known_hosts: plain, hashed by ssh-keygen -H, [host]:port, patterns, revoked, changed; fingerprints as ssh-keygen prints them', () => {
  const dir = mkdtempSync(join(scratch, 'kh-'));
  const keyA = join(dir, 'a');
  const keyB = join(dir, 'b');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', keyA]);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', keyB]);
  const pubA = readFileSync(`${keyA}.pub`, 'utf8').trim().split(' ').slice(0, 2).join(' ');
  const pubB = readFileSync(`${keyB}.pub`, 'utf8').trim().split(' ').slice(0, 2).join(' ');
  const blobA = Buffer.from(pubA.split(' ')[1]!, 'base64');
  const blobB = Buffer.from(pubB.split(' ')[1]!, 'base64');
  const hashed = join(dir, 'hashed');
  writeFileSync(hashed, `[secret.example]:2222 ${pubA}\n`);
  execFileSync('ssh-keygen', ['-q', '-H', '-f', hashed], { stdio: 'ignore' });
  assert.match(readFileSync(hashed, 'utf8'), /^\|1\|/);
  const plain = join(dir, 'known_hosts');
  writeFileSync(plain, `# c\nbox,10.0.0.7 ${pubA}\n*.lab,!bad.lab ${pubA}\n@revoked * ${pubB}\n@cert-authority *.ca ${pubB}\nbroken line\n`);
  const known = new KnownHosts([plain, hashed], []);
  assert.equal(known.check('box', blobA).status, 'known');
  assert.equal(known.check('10.0.0.7', blobA).status, 'known');
  assert.equal(known.check('gpu.lab', blobA).status, 'known');
  assert.equal(known.check('bad.lab', blobA).status, 'unknown');
  assert.equal(known.check('[secret.example]:2222', blobA).status, 'known', 'hashed entry');
  assert.equal(known.check('secret.example', blobA).status, 'unknown', 'the port is part of the name');
  const changed = known.check('box', Buffer.from(blobA.toString('base64').replace(/.{4}$/, 'AAAA'), 'base64'));
  assert.equal(changed.status, 'changed');
  assert.equal(known.check('anything', blobB).status, 'revoked');
  assert.equal(parseKnownHosts(readFileSync(plain, 'utf8'), plain).length, 4);
  // Fingerprints: the same text as ssh-keygen -l.
  const printed = execFileSync('ssh-keygen', ['-l', '-f', `${keyA}.pub`], { encoding: 'utf8' }).split(' ')[1];
  assert.equal(fingerprint(blobA), printed);
  assert.equal(knownHostName('h', 22), 'h');
  assert.equal(knownHostName('h', 2222), '[h]:2222');
  assert.equal(hostFieldMatches('a,b', 'b'), true);
});

test('known_hosts: a recorded key (plain or hashed) is what ssh-keygen -F finds', () => {
  const dir = mkdtempSync(join(scratch, 'rec-'));
  const key = join(dir, 'k');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
  const blob = Buffer.from(readFileSync(`${key}.pub`, 'utf8').split(' ')[1]!, 'base64');
  const file = join(dir, 'sub', 'known_hosts');
  const known = new KnownHosts([file], []);
  known.record('[10.9.9.9]:2200', blob);
  known.record('hashed.example', blob, true);
  assert.equal(known.check('[10.9.9.9]:2200', blob).status, 'known');
  assert.equal(known.check('hashed.example', blob).status, 'known');
  for (const name of ['[10.9.9.9]:2200', 'hashed.example']) {
    const found = execFileSync('ssh-keygen', ['-F', name, '-f', file], { encoding: 'utf8' });
    assert.match(found, /ssh-ed25519/, `ssh-keygen -F ${name}`);
  }
  assert.equal((readFileSync(file, 'utf8').match(/\n/g) ?? []).length, 2);
});

// ---- hosts file ----------------------------------------------------------------------------------

test('hosts file: defaults, per-slot environments, relative paths, and one-line errors for mistakes', () => {
  const path = join(scratch, 'hosts.json');
  const file = parseHostsFile(
    JSON.stringify({
      sshConfig: 'ssh_config',
      defaults: { python: '~/venv/bin/python', env: { OMP_NUM_THREADS: '2' } },
      hosts: {
        gpu1: { slotEnv: [{ CUDA_VISIBLE_DEVICES: '0' }, { CUDA_VISIBLE_DEVICES: '1' }], workdir: '~/runs', identityFile: 'keys/id' },
        cpu: { address: 'me@10.0.0.3:2222', slots: 3, python: 'python3.11' },
      },
    }),
    path,
  );
  assert.equal(file.sshConfig, join(scratch, 'ssh_config'));
  const gpu1 = hostSettings(file, 'gpu1');
  assert.equal(gpu1.slots, 2);
  assert.deepEqual(gpu1.slotEnvs, [{ OMP_NUM_THREADS: '2', CUDA_VISIBLE_DEVICES: '0' }, { OMP_NUM_THREADS: '2', CUDA_VISIBLE_DEVICES: '1' }]);
  assert.equal(gpu1.python, '~/venv/bin/python');
  assert.equal(gpu1.identityFile, join(scratch, 'keys', 'id'));
  assert.equal(gpu1.cacheDir, '~/.cache/hyperopt-runner');
  const cpu = hostSettings(file, 'cpu');
  assert.equal(cpu.slots, 3);
  assert.equal(cpu.address, 'me@10.0.0.3:2222');
  assert.equal(hostSettings(file, 'unlisted').slots, 1);
  const bad = (text: string, pattern: RegExp): void =>
    assert.throws(() => parseHostsFile(text, path), (error: unknown) => error instanceof RunnerError && error.code === 'ssh_hosts_file' && pattern.test(error.message));
  bad('{', /not valid JSON at line 1, column 2: /);
  bad('{\n  "hosts": {\n    "a": {"slots": 2,}\n  }\n}', /not valid JSON at line 3, column 22: Expected double-quoted property name$/);
  bad('{"hosts": {"a": {"slots": 0}}}', /hosts\.a\.slots/);
  bad('{"hosts": {"a": {"sluts": 2}}}', /hosts\.a/);
  bad('{"hosts": {"a": {"env": {"BAD-NAME": "x"}}}}', /not a valid environment variable name/);
  bad('{"hosts": {"a": {"slots": 3, "slotEnv": [{}]}}}', /give one environment per slot/);
  bad('{"passwords": {}}', /top level|passwords/);
});

test('versions: a Python minor or cloudpickle major mismatch is an error, others are warnings', () => {
  const local = { python: '3.11.7', packages: { hyperopt: '0.2.7', cloudpickle: '3.1.1', numpy: '1.26.4', mlflow: '2.9.0' } };
  const same = compareVersions({ python: '3.11.2', packages: { hyperopt: '0.2.7', cloudpickle: '3.1.1', numpy: '1.26.4', mlflow: '2.9.0' } }, local);
  assert.ok(same.every((f) => f.level === 'ok'), JSON.stringify(same));
  const levels = (remote: object): Record<string, string> =>
    Object.fromEntries(compareVersions(remote as never, local).map((f) => [f.name, f.level]));
  assert.deepEqual(levels({ python: '3.12.1', packages: { hyperopt: '0.2.7', cloudpickle: '2.2.1', numpy: '2.0.0', mlflow: null } }), {
    python: 'error',
    hyperopt: 'ok',
    cloudpickle: 'error',
    numpy: 'warning',
    mlflow: 'warning',
  });
  assert.deepEqual(levels({ python: '3.11.0', packages: { hyperopt: null, cloudpickle: '3.0.0', numpy: null, mlflow: '2.9.0' } }), {
    python: 'ok',
    hyperopt: 'error',
    cloudpickle: 'warning',
    numpy: 'warning',
    mlflow: 'ok',
  });
  assert.equal(compareVersions({ python: '3.11.0', packages: { hyperopt: '0.2.5', cloudpickle: '3.0.0' } }, undefined).find((f) => f.name === 'hyperopt')?.level, 'error');
});
