// A host whose sshd has no SFTP subsystem (hardened hosts switch it off), a real OpenSSH server
// configured so: the runtime and the script's folder reach it over exec channels, into the same
// cache, and a study on it runs as on any host.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fixturePids, PYTHON, ROOT, startSshFixture, type SshFixture } from './fixture';

const CLI = join(ROOT, 'bin', 'hyperopt-runner.js');
const SAMPLES = join(ROOT, 'samples');

let fx: SshFixture;
let hostsFile: string;

before(async () => {
  if (!existsSync(join(ROOT, 'dist', 'cli.js'))) execFileSync('npm', ['run', '--silent', 'build'], { cwd: ROOT, stdio: 'inherit' });
  fx = await startSshFixture(1, { withoutSftp: ['h1'] });
  hostsFile = fx.writeHostsFile({}, 'hosts.json');
});

after(async () => {
  await fx?.stop();
});

function cli(args: string[], cwd: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn('node', [CLI, ...args], { cwd, env: { ...fx.env, HYPEROPT_RUNNER_PYTHON: PYTHON }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (t: string) => (stdout += t));
  child.stderr!.setEncoding('utf8').on('data', (t: string) => (stderr += t));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

test('without SFTP: hosts check warns, a study whose objective is in a sibling module runs there, and the runtime is sent once', async () => {
  // The server really refuses SFTP: OpenSSH's own client says so.
  const sftp = (() => {
    try {
      execFileSync('sftp', ['-F', fx.sshConfig, '-b', '-', 'h1'], { input: 'pwd\n', env: fx.env, stdio: ['pipe', 'pipe', 'pipe'], timeout: 30_000 });
      return 'worked';
    } catch (error) {
      return String((error as { stderr?: Buffer }).stderr ?? error);
    }
  })();
  assert.match(sftp, /subsystem request failed|Connection closed/i, sftp);

  const check = await cli(['hosts', 'check', 'h1', '--hosts-file', hostsFile], fx.root);
  assert.equal(check.code, 0, check.stdout + check.stderr);
  assert.match(check.stdout + check.stderr, /no SFTP .*go over exec channels instead/);

  const folder = mkdtempSync(join(fx.root, 'sibling-'));
  copyFileSync(join(SAMPLES, 'sibling_objective.py'), join(folder, 'sibling_objective.py'));
  copyFileSync(join(SAMPLES, 'objectives.py'), join(folder, 'objectives.py'));
  const summary = join(folder, 'summary.json');
  const args = ['run', 'sibling_objective.py', '--executor', 'ssh:h1', '--hosts-file', hostsFile, '--no-tracking', '--journal-dir', join(folder, 'journal'), '--summary-json', summary];
  const first = await cli(args, folder);
  assert.equal(first.code, 0, first.stderr.slice(-3000));
  const study = (JSON.parse(readFileSync(summary, 'utf8')) as Array<{ trials: object }>)[0]!;
  assert.deepEqual(study.trials, { total: 30, ok: 30, failed: 0, cancelled: 0 });
  assert.deepEqual(fixturePids(fx), [], 'no worker left on the host');
  const runtime = join(fx.host('h1').cacheDir, 'runtime');
  const versions = readdirSync(runtime);
  assert.equal(versions.length, 1, 'one version, no temporary folder left');
  assert.ok(existsSync(join(runtime, versions[0]!, 'hyperopt_runner', '_worker.py')));
  const stamp = statSync(join(runtime, versions[0]!, '.complete')).mtimeMs;
  assert.deepEqual(readdirSync(join(fx.host('h1').cacheDir, 'runs')), [], "the run's folder is gone");

  const second = await cli(args, folder);
  assert.equal(second.code, 0, second.stderr.slice(-3000));
  assert.equal(statSync(join(runtime, versions[0]!, '.complete')).mtimeMs, stamp, 'the cached runtime was not sent again');
  assert.deepEqual(readdirSync(runtime), versions);
});
