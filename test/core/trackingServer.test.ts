// The workspace's tracking server daemon (`hyperopt-runner tracking-server`, run from source) and
// the leases the CLI and the service hold on it, with a real `mlflow server` behind it.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { MlflowClient } from '../../core/src/mlflow/client';
import { readTrackingRecord, trackingServerPaths } from '../../core/src/mlflow/serverRecord';
import { acquireTrackingServer, handOffSync, stopTrackingServer, trackingServerStatus, type TrackingServerLease } from '../../core/src/mlflow/serverLease';
import { JournalWriter, readJournal } from '../../core/src/journal/journal';
import type { StudyInfo } from '../../core/src/journal/records';
import { unsyncedTrials } from '../../core/src/mlflow/sync';
import { defaultStoreUri } from '../../core/src/mlflow/supervisor';
import { pidAlive } from '../../core/src/lockFile';
import { VENV_PYTHON } from './helpers/mlflowServer';

const ROOT = resolve(__dirname, '../..');
const STUDY: StudyInfo = {
  id: 's', runId: 'r1', ordinal: 0, script: '/w/train.py', args: [], cwd: '/w', python: '/usr/bin/python3', executors: ['local:2'],
  callSite: { file: '/w/train.py', line: 3 }, maxEvals: 20, parallelism: 2, timeout: null, trialTimeout: null, lossThreshold: null,
  algo: 'rand.suggest', maxQueueLen: 1, space: [], createdAt: Date.now(),
};
const CLI = { node: process.execPath, args: ['--import', pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href, join(ROOT, 'cli/src/main.ts')] };

/** Live processes whose command line names `text`. */
function processesNaming(text: string): Array<{ pid: number; cmdline: string }> {
  const found: Array<{ pid: number; cmdline: string }> = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ');
      const state = readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ')[1]?.split(' ')[0];
      if (cmdline.includes(text) && state !== 'Z') found.push({ pid: Number(entry), cmdline });
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

function stateChange(lease: TrackingServerLease, state: string, timeoutMs = 120_000): Promise<void> {
  return new Promise((resolveChange, reject) => {
    if (lease.state === state) return resolveChange();
    const timer = setTimeout(() => reject(new Error(`the lease never became ${state} (it is ${lease.state})`)), timeoutMs);
    const off = lease.changes.on((change) => {
      if (change.state !== state) return;
      clearTimeout(timer);
      off();
      resolveChange();
    });
  });
}

async function until(what: string, check: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  // The test watches the process table; the daemon itself never polls.
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('the workspace tracking server', () => {
  let workspace: string;
  let storeUri: string;
  const notices: string[] = [];
  const leases: TrackingServerLease[] = [];

  const acquire = async (idleTimeoutSeconds = 600): Promise<TrackingServerLease> => {
    const lease = await acquireTrackingServer({ workspace, storeUri, python: VENV_PYTHON, cli: CLI, idleTimeoutSeconds, notice: (text) => notices.push(text) });
    leases.push(lease);
    return lease;
  };

  const stopAll = async (): Promise<void> => {
    for (const lease of leases.splice(0)) lease.release();
    const record = readTrackingRecord(trackingServerPaths(workspace, storeUri).record);
    if (record) await stopTrackingServer(record);
  };

  before(() => {
    workspace = mkdtempSync(join(tmpdir(), 'hr-tracking-server-'));
    storeUri = defaultStoreUri(workspace);
  });
  after(async () => {
    await stopAll();
    for (const { pid } of processesNaming(workspace)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    rmSync(workspace, { recursive: true, force: true });
  });

  it('is shared by two callers at once, holds requests until MLflow answers, outlives its leases and ends when idle', async () => {
    const [a, b] = await Promise.all([acquire(3), acquire(3)]);
    assert.equal(a!.record.pid, b!.record.pid, 'one daemon for the store');
    assert.equal(a!.uri, b!.uri);
    assert.equal([a!.started, b!.started].filter(Boolean).length, 1, 'one of the two started it');
    const paths = trackingServerPaths(workspace, storeUri);
    assert.equal(statSync(paths.record).mode & 0o777, 0o600, 'the record (it holds the token) is private');
    // Made while MLflow still starts: the request waits for it instead of failing.
    const experiment = await new MlflowClient({ trackingUri: a!.uri, auth: a!.auth, maxRetries: 0, requestTimeoutMs: 120_000 }).getOrCreateExperiment('shared');
    await stateChange(a!, 'ready');
    assert.equal(b!.state, 'ready');
    assert.ok(experiment);

    a!.release();
    b!.release();
    leases.splice(0);
    const status = await trackingServerStatus(a!.record);
    assert.ok(status && status.leases === 0 && status.idleUntil !== undefined, JSON.stringify(status));
    assert.ok(pidAlive(a!.record.pid), 'it stays up for the next command');
    const mlflowPid = status.mlflowPid!;
    await until('the idle daemon to exit', () => !pidAlive(a!.record.pid) && !pidAlive(mlflowPid), 30_000);
    assert.equal(existsSync(paths.record), false, 'its record is gone with it');
    assert.deepEqual(processesNaming(workspace), []);
  });

  it('a stop asked right after a command handed over its journals writes their runs before MLflow stops', async () => {
    const lease = await acquire();
    await stateChange(lease, 'ready');
    const journals = mkdtempSync(join(tmpdir(), 'hr-tracking-journals-'));
    try {
      const paths: string[] = [];
      for (const n of [1, 2, 3]) {
        const path = join(journals, `study-${n}.jsonl`);
        const w = new JournalWriter(path);
        w.append({ k: 'study', v: 1, study: { ...STUDY, id: `20261202-00000${n}-abcdef` } });
        for (let tid = 0; tid < 20; tid++) {
          w.append({ k: 'trial', tid, vals: { x: [tid] }, params: { x: tid }, at: Date.now() });
          w.append({ k: 'end', tid, state: 'done', summary: { status: 'ok', loss: tid }, result: 'AA==', startedAt: Date.now(), endedAt: Date.now() });
        }
        w.append({ k: 'state', state: 'ended', reason: 'max_evals', at: Date.now() });
        w.close();
        paths.push(path);
      }
      assert.equal(await handOffSync(lease.record, paths), true);
      lease.release();
      leases.splice(0);
      assert.equal(await stopTrackingServer(lease.record), true);
      for (const path of paths) {
        const study = readJournal(path);
        assert.equal(unsyncedTrials(study), 0, `${path}: every trial's run written before the stop returned`);
        assert.equal(study.tracking?.owned, true);
      }
    } finally {
      rmSync(journals, { recursive: true, force: true });
    }
  });

  it('replaces a stale record with one notice and leaves the program that now holds its port alone', async () => {
    const paths = trackingServerPaths(workspace, storeUri);
    // A record whose daemon is gone.
    const gone = spawn(process.execPath, ['-e', '0']);
    await new Promise((r) => gone.once('exit', r));
    writeFileSync(paths.record, JSON.stringify({ version: 2, pid: gone.pid, port: 9, token: 'x', apiToken: 'y', storeUri, python: VENV_PYTHON, startedAt: 1 }), { mode: 0o600 });
    notices.length = 0;
    const first = await acquire();
    assert.equal(notices.length, 1, notices.join('\n'));
    assert.match(notices[0]!, /pid \d+, which is gone; starting a new server/);
    assert.notEqual(first.record.pid, gone.pid);
    await stopAll();

    // A record whose port now answers for another program (its pid alive, not a daemon of ours).
    const other: Server = createServer((_req, res) => {
      res.statusCode = 404;
      res.end('not mlflow');
    });
    await new Promise<void>((r) => other.listen(0, '127.0.0.1', () => r()));
    const port = (other.address() as { port: number }).port;
    try {
      writeFileSync(paths.record, JSON.stringify({ version: 2, pid: process.pid, port, token: 'x', apiToken: 'y', storeUri, python: VENV_PYTHON, startedAt: 1 }), { mode: 0o600 });
      notices.length = 0;
      const second = await acquire();
      assert.equal(notices.length, 1, notices.join('\n'));
      assert.match(notices[0]!, new RegExp(`port ${port} .* now belongs to another program`));
      assert.notEqual(second.record.port, port);
      const answer = await fetch(`http://127.0.0.1:${port}/`);
      assert.equal(await answer.text(), 'not mlflow', 'the other program is left alone');
      await stopAll();
    } finally {
      await new Promise((r) => other.close(r));
    }
  });

  it('stops the daemon of an earlier version (its record has no API token) and starts one that has', async () => {
    // An earlier build of the daemon cannot run here: a server that answers its stop path stands in for it.
    const paths = trackingServerPaths(workspace, storeUri);
    const asked: string[] = [];
    const earlier: Server = createServer((req, res) => {
      asked.push(`${req.method} ${req.url} ${String(req.headers['x-hyperopt-runner-token'])}`);
      res.setHeader('content-type', 'application/json');
      res.end('{"stopped":true}');
    });
    await new Promise<void>((r) => earlier.listen(0, '127.0.0.1', () => r()));
    try {
      const port = (earlier.address() as { port: number }).port;
      writeFileSync(paths.record, JSON.stringify({ version: 1, pid: process.pid, port, token: 'old', storeUri, python: VENV_PYTHON, startedAt: 1 }), { mode: 0o600 });
      notices.length = 0;
      const lease = await acquire();
      assert.deepEqual(asked, ['POST /_hyperopt-runner/stop old']);
      assert.match(notices.join('\n'), /earlier version \(pid \d+\)/);
      assert.equal(readTrackingRecord(paths.record)?.apiToken, lease.record.apiToken);
      assert.ok(lease.record.apiToken.length >= 32);
      await stopAll();
    } finally {
      await new Promise((r) => earlier.close(r));
    }
  });

  it('restarts MLflow behind the same URI; a killed daemon leaves an orphan that the next one adopts instead of starting a second server', async () => {
    const lease = await acquire();
    await stateChange(lease, 'ready');
    const client = new MlflowClient({ trackingUri: lease.uri, auth: lease.auth, maxRetries: 0, requestTimeoutMs: 120_000 });
    const experimentId = await client.getOrCreateExperiment('restarts');
    const before = (await trackingServerStatus(lease.record))!.mlflowPid!;

    // MLflow dies: the daemon restarts it and the URI every process holds stays valid.
    const restarting = stateChange(lease, 'starting');
    process.kill(-before, 'SIGKILL');
    await restarting;
    assert.equal((await client.getExperiment(experimentId)).name, 'restarts', 'answered on the same URI once restarted');
    const restarted = (await trackingServerStatus(lease.record))!.mlflowPid!;
    assert.notEqual(restarted, before);

    // The daemon alone is killed: its MLflow lives on, and the next daemon adopts it.
    const lost = stateChange(lease, 'lost');
    process.kill(lease.record.pid, 'SIGKILL');
    await lost;
    assert.ok(pidAlive(restarted), 'the orphan is still there');
    notices.length = 0;
    const next = await acquire();
    assert.notEqual(next.record.pid, lease.record.pid);
    assert.match(notices.join('\n'), /which is gone/);
    await stateChange(next, 'ready');
    assert.equal((await trackingServerStatus(next.record))!.mlflowPid, restarted, 'the orphan was adopted');
    const servers = processesNaming(storeUri).filter((p) => / -m mlflow server /.test(` ${p.cmdline} `));
    assert.equal(servers.length, 1, servers.map((s) => s.cmdline).join('\n'));

    await stopAll();
    await until('everything of the store to end', () => processesNaming(workspace).length === 0, 30_000);
  });

  it('never kills a server another program started on the same store', async () => {
    // Started by hand over the workspace's store, as a user might for the MLflow UI.
    const port = 40000 + (process.pid % 20000);
    const foreign = spawn(VENV_PYTHON, ['-m', 'mlflow', 'server', '--backend-store-uri', storeUri, '--host', '127.0.0.1', '--port', String(port), '--workers', '1'], {
      cwd: workspace,
      detached: true,
      stdio: 'ignore',
      env: { ...process.env, MLFLOW_SERVER_ENABLE_JOB_EXECUTION: 'false' },
    });
    try {
      const lease = await acquire();
      await stateChange(lease, 'ready');
      assert.notEqual((await trackingServerStatus(lease.record))!.mlflowPid, foreign.pid);
      await stopAll();
      await until('our daemon to end', () => !pidAlive(lease.record.pid), 30_000);
      assert.ok(pidAlive(foreign.pid!), 'the foreign server is left running');
    } finally {
      process.kill(-foreign.pid!, 'SIGKILL');
      await new Promise((r) => foreign.once('exit', r));
    }
  });
});
