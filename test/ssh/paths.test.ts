// Script paths and folders whose names hold shell syntax, quotes and unicode, on real sshd
// instances on loopback (fixture.ts): one host with SFTP, one without (the upload goes over exec
// channels there), and cache folders with hostile names too. Nothing may run as a shell command.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { processTable, PYTHON, ROOT, startSshFixture, type SshFixture } from './fixture';

const CLI = join(ROOT, 'bin', 'hyperopt-runner.js');
const HOSTILE = "$(touch pwned) `touch pwned`; 'q\" é";
const SCRIPT = '$(touch pwned).py';
// Shipped beside the script: their names reach the hosts through SFTP or a tar stream.
const SIBLINGS = ['-study.py', 'a;touch pwned.py', "it's.py", 'say "hi".py', 'étude_数.py'];

let fx: SshFixture;
let hostsFile: string;

before(async () => {
  if (!existsSync(join(ROOT, 'dist', 'cli.js'))) execFileSync('npm', ['run', '--silent', 'build'], { cwd: ROOT, stdio: 'inherit' });
  fx = await startSshFixture(2, { withoutSftp: ['h2'] });
  // h1's cache name has no quote, so a double-quoted path would run its $(...) rather than break the line.
  const caches = { h1: 'cache $(touch pwned)', h2: `cache ${HOSTILE}` };
  hostsFile = fx.writeHostsFile({ hosts: Object.fromEntries(fx.hosts.map((h) => [h.name, { cacheDir: join(h.dir, caches[h.name as keyof typeof caches]) }])) }, 'hosts.json');
});

after(async () => {
  await fx?.stop();
});

/** Every file named pwned* under a folder. */
function pwned(folder: string): string[] {
  const found: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.name.startsWith('pwned')) found.push(path);
      if (entry.isDirectory()) walk(path);
    }
  };
  walk(folder);
  return found;
}

test('a script and a folder named with shell syntax run on SSH hosts as the files they name; nothing runs as a shell command', async () => {
  // A remote shell that ran a name would run it in the login's home, which is outside the fixture.
  const home = userInfo().homedir;
  const homeBefore = ['pwned', 'pwned.py'].map((n) => (existsSync(join(home, n)) ? statSync(join(home, n)).mtimeMs : undefined));
  const folder = join(fx.root, `study ${HOSTILE}`);
  mkdirSync(folder);
  for (const name of SIBLINGS) writeFileSync(join(folder, name), 'VALUE = 1\n');
  writeFileSync(
    join(folder, SCRIPT),
    [
      'import json, os, socket, sys',
      'from hyperopt import Trials, fmin, hp, rand',
      '',
      'def objective(x):',
      '    import étude_数  # a sibling module with a unicode name, imported on the host',
      '    shipped = next(p for p in sys.path if os.path.isfile(os.path.join(p, "a;touch pwned.py")))',
      '    return {"loss": x * étude_数.VALUE, "status": "ok", "names": sorted(n for n in os.listdir(shipped) if n.endswith(".py"))}',
      '',
      'trials = Trials()',
      'fmin(objective, hp.uniform("x", 0, 1), algo=rand.suggest, max_evals=8, trials=trials)',
      'print("ARGS " + json.dumps(sys.argv[1:]))',
      'print("NAMES " + json.dumps(sorted({tuple(r["names"]) for r in trials.results})))',
      '',
    ].join('\n'),
  );
  const summaryPath = join(folder, 'summary.json');
  const args = ['run', SCRIPT, '--executor', 'ssh:h1,h2', '--hosts-file', hostsFile, '--no-tracking', '--journal-dir', join(folder, 'journal'), '--summary-json', summaryPath, '--', '$(touch pwned)'];
  const child = spawn('node', [CLI, ...args], { cwd: folder, env: { ...fx.env, HYPEROPT_RUNNER_PYTHON: PYTHON }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (t: string) => (stdout += t));
  child.stderr.setEncoding('utf8').on('data', (t: string) => (stderr += t));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));

  assert.equal(code, 0, stderr.slice(-3000));
  const study = (JSON.parse(readFileSync(summaryPath, 'utf8')) as Array<{ state: string; trials: object; journal: string }>)[0]!;
  assert.equal(study.state, 'max_evals');
  assert.deepEqual(study.trials, { total: 8, ok: 8, failed: 0, cancelled: 0 });
  const slots = readFileSync(study.journal, 'utf8')
    .split('\n')
    .filter((l) => l)
    .map((l) => JSON.parse(l) as { k: string; slot?: string })
    .filter((r) => r.k === 'start')
    .map((r) => String(r.slot).split('/')[0]);
  assert.deepEqual([...new Set(slots)].sort(), ['h1', 'h2'], 'trials ran on the host with SFTP and on the one without');
  const line = (prefix: string): unknown => JSON.parse(stdout.split('\n').find((l) => l.startsWith(prefix))!.slice(prefix.length));
  assert.deepEqual(line('ARGS '), ['$(touch pwned)']);
  assert.deepEqual(line('NAMES '), [[SCRIPT, ...SIBLINGS].sort()], 'every host got every file under its own name');

  assert.deepEqual(pwned(fx.root), [], 'nothing in the script folder, the hosts and their caches, or the fixture');
  assert.deepEqual(['pwned', 'pwned.py'].map((n) => (existsSync(join(home, n)) ? statSync(join(home, n)).mtimeMs : undefined)), homeBefore, 'nothing in the home of the hosts\' login');
  assert.equal(existsSync(join(ROOT, 'pwned')), false);
  const left = processTable().filter((p) => !p.zombie && p.cmdline.includes(fx.root) && !p.cmdline.includes('sshd'));
  assert.deepEqual(left, [], 'no worker left on either host');
});
