// The chaos soak in its short version (bench/soakRun.ts; `npm run soak` is the long one): a tracked
// study on local:4 and two real sshd hosts on loopback while workers, hosts, the tracking server and
// the CLI itself are killed, then resumed and stopped. Nothing finished may be lost or run twice,
// and nothing may be left running.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { runSoak, type SoakOptions } from '../../bench/soakRun';
import { ROOT, startSshFixture, type SshFixture } from './fixture';

const SHORT_SOAK: SoakOptions = {
  stopAt: 240,
  maxEvals: 400,
  durationScale: 0.5,
  chaos: true,
  seed: 20261203,
  workerKillEveryMs: [1500, 3500],
  maxWorkerKills: 10,
  hostDownMs: 4000,
};

let fx: SshFixture;

before(async () => {
  if (!existsSync(join(ROOT, 'dist', 'cli.js'))) execFileSync('npm', ['run', '--silent', 'build'], { cwd: ROOT, stdio: 'inherit' });
  fx = await startSshFixture(2);
});

after(async () => {
  await fx?.stop();
});

test('chaos soak, short: under worker kills, host drops, tracking server kills and a killed CLI resumed, nothing finished is lost or run twice and nothing is left running', async () => {
  const report = await runSoak(fx, { ...SHORT_SOAK, log: (line) => console.log(`  ${line}`) });
  console.log(`  ${JSON.stringify({ ...report, lostDetails: undefined })}`);
  assert.deepEqual(report.lostDetails, [], 'every finished trial is in fmin\'s Trials and in MLflow with its loss');
  assert.equal(report.ranTwice, 0);
  assert.deepEqual(report.processesLeft, []);
  assert.deepEqual(report.exitCodes, { run: null, resume: 0, sync: 0 }, 'the run was killed; resume and sync succeed');
  assert.ok(report.finished >= SHORT_SOAK.stopAt, `${report.finished} trials finished`);
  assert.ok(report.failed > 0 && report.ok > 0, 'the mix has raising trials and good ones');
  for (const [kind, count] of Object.entries(report.faults)) assert.ok(count >= 1, `${kind} was injected`);
  assert.ok(report.requeued >= 1, 'killed workers and dropped hosts sent attempts back to the queue');
});
