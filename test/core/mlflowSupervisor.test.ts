import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { MlflowClient } from '../../core/src/mlflow/client';
import {
  MlflowServerSupervisor,
  checkMlflowInstallation,
  defaultStoreUri,
  findFreePort,
  resolveTrackingUri,
  type SupervisorEvent,
} from '../../core/src/mlflow/supervisor';
import { VENV_PYTHON, processTable } from './helpers/mlflowServer';

/** Resolves with the next event of `type` (or rejects after `timeoutMs`). */
function nextEvent<T extends SupervisorEvent['type']>(
  supervisor: MlflowServerSupervisor,
  type: T,
  timeoutMs = 120_000,
): Promise<Extract<SupervisorEvent, { type: T }>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no ${type} event within ${timeoutMs} ms`));
    }, timeoutMs);
    const off = supervisor.onEvent((event) => {
      if (event.type !== type) return;
      clearTimeout(timer);
      off();
      resolve(event as Extract<SupervisorEvent, { type: T }>);
    });
  });
}

async function healthOk(uri: string): Promise<boolean> {
  try {
    const response = await fetch(`${uri}/health`, { signal: AbortSignal.timeout(3000) });
    return (await response.text()).trim() === 'OK';
  } catch {
    return false;
  }
}

/** Processes of group `pgid`, or whose command line names `dir`. */
async function leftovers(pgids: number[], dir?: string): Promise<string[]> {
  const rows = await processTable();
  return rows
    .filter((row) => pgids.includes(row.pgid) || (dir !== undefined && row.args.includes(dir) && !row.args.startsWith('ps ')))
    .map((row) => `${row.pid} ${row.pgid} ${row.args}`);
}

/** An HTTP server holding a loopback port; it answers 503, as a busy unrelated service might. */
async function holdPort(port: number): Promise<Server> {
  const server = createServer((_req, res) => {
    res.writeHead(503);
    res.end('busy');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return server;
}

describe('resolveTrackingUri', () => {
  const workspace = '/home/ann/project';

  it('takes the flag, then MLFLOW_TRACKING_URI, then the setting, then the embedded default', () => {
    const env = { MLFLOW_TRACKING_URI: 'http://env:5000' };
    assert.deepEqual(resolveTrackingUri({ cliUri: 'https://flag/', env, setting: 'http://s', workspace }), {
      kind: 'remote',
      uri: 'https://flag',
      source: 'flag',
    });
    assert.equal(resolveTrackingUri({ env, setting: 'http://s', workspace }).source, 'env');
    assert.deepEqual(resolveTrackingUri({ env: { MLFLOW_TRACKING_URI: ' ' }, setting: 'http://s:1', workspace }), {
      kind: 'remote',
      uri: 'http://s:1',
      source: 'setting',
    });
    assert.deepEqual(resolveTrackingUri({ env: {}, workspace }), {
      kind: 'embedded',
      storeUri: 'sqlite:////home/ann/project/.hyperopt-runner/mlflow.db',
      source: 'default',
    });
    assert.equal(defaultStoreUri(workspace), 'sqlite:////home/ann/project/.hyperopt-runner/mlflow.db');
  });

  it('serves file and SQLite stores, resolving relative ones against the workspace', () => {
    const embedded = (uri: string): unknown => {
      const target = resolveTrackingUri({ cliUri: uri, workspace });
      return target.kind === 'embedded' ? target.storeUri : target;
    };
    assert.equal(embedded('sqlite:///runs.db'), 'sqlite:////home/ann/project/runs.db');
    assert.equal(embedded('sqlite:////data/runs.db'), 'sqlite:////data/runs.db');
    assert.equal(embedded('file:///data/mlruns'), 'file:///data/mlruns');
    assert.equal(embedded('file:./mlruns'), 'file:///home/ann/project/mlruns');
    assert.equal(embedded('mlruns'), 'file:///home/ann/project/mlruns');
    const memory = resolveTrackingUri({ cliUri: 'sqlite://', workspace });
    assert.equal(memory.kind, 'unsupported');
    const databricks = resolveTrackingUri({ env: { MLFLOW_TRACKING_URI: 'databricks' }, workspace });
    assert.equal(databricks.kind, 'embedded', 'a bare word is a relative file store, as mlflow reads it');
    const db = resolveTrackingUri({ cliUri: 'databricks://profile', workspace });
    assert.equal(db.kind, 'unsupported');
    const pg = resolveTrackingUri({ cliUri: 'postgresql://u@h/db', workspace });
    assert.ok(pg.kind === 'unsupported' && pg.reason.includes('mlflow server --backend-store-uri'));
  });
});

describe('checkMlflowInstallation', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'hr-mlflow-check-'));
    execFileSync(VENV_PYTHON, ['-m', 'venv', '--without-pip', join(dir, 'bare')]);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('finds the full mlflow in the project virtualenv', async () => {
    const found = await checkMlflowInstallation(VENV_PYTHON);
    assert.equal(found.installed, true);
    assert.equal(found.canServe, true);
    assert.match(found.version ?? '', /^3\./);
    assert.equal(found.warning, undefined);
  });

  it('warns with the install command when mlflow is missing', async () => {
    const python = join(dir, 'bare', 'bin', 'python');
    const found = await checkMlflowInstallation(python);
    assert.equal(found.installed, false);
    assert.equal(found.canServe, false);
    assert.ok(found.warning?.includes(`${python} -m pip install mlflow`), found.warning);
  });

  it('tells mlflow-skinny apart: it logs but cannot serve', async () => {
    // A minimal mlflow-skinny distribution: a module and its dist-info, found through PYTHONPATH.
    const site = join(dir, 'skinny-site');
    mkdirSync(join(site, 'mlflow'), { recursive: true });
    writeFileSync(join(site, 'mlflow', '__init__.py'), '');
    mkdirSync(join(site, 'mlflow_skinny-3.17.2.dist-info'));
    writeFileSync(join(site, 'mlflow_skinny-3.17.2.dist-info', 'METADATA'), 'Metadata-Version: 2.1\nName: mlflow-skinny\nVersion: 3.17.2\n');
    const python = join(dir, 'bare', 'bin', 'python');
    const found = await checkMlflowInstallation(python, { env: { ...process.env, PYTHONPATH: site } });
    assert.equal(found.installed, true);
    assert.equal(found.canServe, false);
    assert.equal(found.skinnyVersion, '3.17.2');
    assert.match(found.warning ?? '', /only mlflow-skinny 3\.17\.2 is installed.*cannot run one.*pip install mlflow/);
  });

  it('says so when the interpreter does not run', async () => {
    const found = await checkMlflowInstallation(join(dir, 'no-such-python'));
    assert.equal(found.installed, false);
    assert.match(found.warning ?? '', /cannot run .*select a working Python interpreter/);
  });
});

describe('MlflowServerSupervisor with a real mlflow server', () => {
  let workspace: string;
  const supervisors: MlflowServerSupervisor[] = [];
  const groups: number[] = [];
  const held: Server[] = [];

  const supervisor = (label: string, port?: number): MlflowServerSupervisor => {
    const s = new MlflowServerSupervisor({ python: VENV_PYTHON, workspace, ownerLabel: label, port, watchIntervalMs: 200 });
    supervisors.push(s);
    return s;
  };

  before(() => {
    workspace = mkdtempSync(join(tmpdir(), 'hr-mlflow-ws-'));
  });
  after(async () => {
    await Promise.all(supervisors.map((s) => s.stop({ force: true })));
    await Promise.all(held.map((s) => new Promise((r) => s.close(r))));
    for (const pgid of groups) {
      try {
        process.kill(-pgid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    rmSync(workspace, { recursive: true, force: true });
  });

  it('starts on a free port when the preferred one is taken, reuses, adopts an orphan and stops cleanly', async (t) => {
    const busyPort = await findFreePort();
    held.push(await holdPort(busyPort));
    const a = supervisor('test-a', busyPort);
    const events: SupervisorEvent[] = [];
    a.onEvent((e) => events.push(e));
    const uri = await a.start();
    const pid = a.pid as number;
    groups.push(pid);
    assert.ok(events.some((e) => e.type === 'port-taken' && e.port === busyPort));
    assert.notEqual(new URL(uri).port, String(busyPort));
    assert.equal(new URL(uri).hostname, '127.0.0.1');
    assert.ok(await healthOk(uri));
    assert.equal(a.owned, true);
    const ready = events.find((e) => e.type === 'ready');
    assert.ok(ready && ready.type === 'ready' && !ready.reused);
    t.diagnostic(`mlflow server ready after ${ready.startupMs} ms (fresh SQLite store)`);

    // The store and artifacts live in the workspace; the state file records the server.
    const stateDir = join(workspace, '.hyperopt-runner');
    assert.ok(existsSync(join(stateDir, 'mlflow.db')));
    assert.ok(existsSync(join(stateDir, 'mlartifacts')));
    const journalMode = execFileSync(VENV_PYTHON, ['-c', 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("PRAGMA journal_mode").fetchone()[0])', join(stateDir, 'mlflow.db')]);
    assert.equal(journalMode.toString().trim(), 'wal', 'the default store keeps a write-ahead log');
    const state = JSON.parse(readFileSync(join(stateDir, 'mlflow-server.json'), 'utf8'));
    assert.equal(state.pid, pid);
    assert.equal(state.uri, uri);
    assert.equal(state.storeUri, defaultStoreUri(workspace));
    assert.deepEqual(state.owner, { pid: process.pid, label: 'test-a' });
    const rows = await processTable();
    assert.ok(rows.every((row) => row.pid !== pid || row.pgid === pid), 'the server leads its own process group');
    assert.ok(!rows.some((row) => row.pgid === pid && row.args.includes('_job_runner')), 'no job runner');

    const client = new MlflowClient({ trackingUri: uri });
    const experimentId = await client.getOrCreateExperiment('supervised');

    // A second caller in the same workspace reuses the live server.
    const b = supervisor('test-b');
    const reusedEvent = nextEvent(b, 'ready');
    assert.equal(await b.start(), uri);
    assert.equal((await reusedEvent).reused, true);
    assert.equal(b.owned, false);
    assert.equal(b.pid, pid);
    await b.stop();
    assert.ok(await healthOk(uri), 'a reusing caller leaves the server to its owner');

    // A server whose owner is gone is adopted by the next caller.
    const dead = execFileSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).toString();
    writeFileSync(join(stateDir, 'mlflow-server.json'), JSON.stringify({ ...state, owner: { pid: Number(dead), label: 'gone' } }));
    const c = supervisor('test-c');
    assert.equal(await c.start(), uri);
    assert.equal(c.owned, true);
    assert.equal(JSON.parse(readFileSync(join(stateDir, 'mlflow-server.json'), 'utf8')).owner.label, 'test-c');
    assert.equal((await client.getExperiment(experimentId)).name, 'supervised');

    await Promise.all([a.stop(), c.stop()]);
    assert.deepEqual(await leftovers([pid], workspace), []);
    assert.equal(existsSync(join(stateDir, 'mlflow-server.json')), false);
    assert.equal(await healthOk(uri), false);
    assert.equal(a.uri, undefined);
  });

  it('retries another port when the chosen one is grabbed while mlflow starts, and restarts a killed server once', async (t) => {
    const a = supervisor('test-race');
    const events: SupervisorEvent[] = [];
    a.onEvent((e) => events.push(e));
    // Take the port the supervisor picked right after it checked it: mlflow then fails to bind.
    let grabbed: number | undefined;
    const off = a.onEvent((e) => {
      if (e.type === 'starting' && e.attempt === 1) {
        grabbed = e.port;
        off();
        holdPort(e.port).then((server) => held.push(server), () => undefined);
      }
    });
    const uri = await a.start();
    const first = a.pid as number;
    groups.push(first);
    assert.ok(grabbed !== undefined);
    assert.ok(events.some((e) => e.type === 'port-taken' && e.port === grabbed), JSON.stringify(events));
    assert.notEqual(new URL(uri).port, String(grabbed));
    assert.ok(await healthOk(uri));

    // SIGKILL to the launcher alone: its uvicorn child is left holding the port until cleaned up.
    const restarted = nextEvent(a, 'ready');
    const exited = nextEvent(a, 'exited');
    process.kill(first, 'SIGKILL');
    assert.equal((await exited).signal, 'SIGKILL');
    const again = await restarted;
    groups.push(again.pid);
    assert.equal(again.reused, false);
    assert.equal(again.uri, uri, 'restarted on the same port, so the URI workers hold stays valid');
    assert.ok(await healthOk(uri));
    assert.deepEqual(await leftovers([first]), [], 'nothing of the killed server is left');
    t.diagnostic(`restart ready after ${again.startupMs} ms (existing store)`);

    // A second death is reported, not restarted.
    const failed = nextEvent(a, 'error');
    process.kill(-again.pid, 'SIGKILL');
    const { error } = await failed;
    assert.equal(error.code, 'died');
    assert.match(error.message, /again after one restart/);
    assert.equal(a.state, 'failed');
    assert.equal(a.uri, undefined);
    assert.deepEqual(await leftovers([first, again.pid], workspace), []);
    assert.equal(existsSync(join(workspace, '.hyperopt-runner', 'mlflow-server.json')), false);
  });

  it('serves a file store, which mlflow 3 refuses unless told to allow it', async () => {
    const storeUri = pathToFileURL(join(workspace, 'mlruns')).href;
    const files = new MlflowServerSupervisor({ python: VENV_PYTHON, workspace, storeUri });
    supervisors.push(files);
    const warning = nextEvent(files, 'warning');
    const uri = await files.start();
    groups.push(files.pid as number);
    assert.match((await warning).text, /mlflow migrate-filestore/);
    const client = new MlflowClient({ trackingUri: uri });
    const run = await client.createRun({ experimentId: await client.getOrCreateExperiment('files') });
    await client.logBatch(run.info.runId, { metrics: [{ key: 'loss', value: Infinity }] });
    assert.equal((await client.getRun(run.info.runId)).data.metrics.loss, Infinity);
    assert.ok(existsSync(join(workspace, 'mlruns')));
    await files.stop();
    assert.deepEqual(await leftovers([files.pid ?? -1, ...groups.slice(-1)], workspace), []);
  });

  it('reports a store mlflow cannot open, with the line of the server log that says why', async () => {
    const bad = new MlflowServerSupervisor({
      python: VENV_PYTHON,
      workspace,
      storeUri: `sqlite:///${join(workspace, 'not-a-database.db')}`,
      startTimeoutMs: 120_000,
    });
    supervisors.push(bad);
    // Longer than a SQLite header, so SQLite does not take it for an empty database.
    writeFileSync(join(workspace, 'not-a-database.db'), 'x'.repeat(4096));
    await assert.rejects(bad.start(), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'start_failed', error.message);
      assert.match(error.message, /before answering \/health: .*file is not a database/);
      assert.ok(!error.message.includes('\n'));
      return true;
    });
    assert.equal(bad.state, 'idle');
  });
});
