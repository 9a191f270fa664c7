// A real background service (`hyperopt-runner serve`, from source) running a real study
// (samples/quickstart.py on local:2), reached over the control protocol.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { connectService, ControlClient, ControlRequestError, type PushMessage } from '../../core/src/service/client';
import { pidAlive, readServiceFile, serviceFilePath } from '../../core/src/service/serviceFile';
import { MlflowClient, MlflowError } from '../../core/src/mlflow/client';
import { listTrackingRecords } from '../../core/src/mlflow/serverRecord';
import { stopTrackingServer } from '../../core/src/mlflow/serverLease';

const ROOT = resolve(__dirname, '../..');
const PYTHON = join(ROOT, '.venv/bin/python');
const CLI = ['--import', pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href, join(ROOT, 'cli/src/main.ts')];

let workspace: string;
let servicePid = 0;
const clients: ControlClient[] = [];

async function connect(name: string): Promise<ControlClient> {
  const { client } = await connectService({ workspace, node: process.execPath, cli: CLI, client: name, idleTimeoutSeconds: 60 });
  clients.push(client);
  servicePid = client.service?.pid ?? servicePid;
  return client;
}

function collect(client: ControlClient): PushMessage[] {
  const seen: PushMessage[] = [];
  client.messages.on((m) => seen.push(m));
  return seen;
}

function waitFor(client: ControlClient, match: (m: PushMessage) => boolean, timeoutMs = 60_000): Promise<PushMessage> {
  return new Promise((resolveWait, reject) => {
    const timer = setTimeout(() => reject(new Error('timed out waiting for a message')), timeoutMs);
    const off = client.messages.on((m) => {
      if (!match(m)) return;
      clearTimeout(timer);
      off();
      resolveWait(m);
    });
  });
}

/** Processes whose command line or environment mentions the test workspace (the script, its workers). */
function processesOfWorkspace(): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid || Number(entry) === servicePid) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      const environ = readFileSync(`/proc/${entry}/environ`, 'utf8');
      if (cmdline.includes(workspace) || environ.includes(workspace)) found.push(Number(entry));
    } catch {
      // gone, or not ours to read
    }
  }
  return found;
}

before(() => {
  workspace = mkdtempSync(join(tmpdir(), 'hr-service-test-'));
  copyFileSync(join(ROOT, 'samples/quickstart.py'), join(workspace, 'quickstart.py'));
});

after(async () => {
  const client = clients.find((c) => !c.isClosed) ?? (await connect('cleanup').catch(() => undefined));
  await client?.request({ type: 'shutdown' }).catch(() => undefined);
  for (const c of clients) c.close();
  const deadline = Date.now() + 15_000;
  while (servicePid && pidAlive(servicePid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  // The tracking server outlives the service by design: this test ends it.
  for (const { record } of listTrackingRecords(workspace)) await stopTrackingServer(record);
  rmSync(workspace, { recursive: true, force: true });
});

test('the service starts on demand and records itself in a private service.json', async () => {
  const client = await connect('first');
  assert.ok(client.service);
  const record = readServiceFile(workspace);
  assert.ok(record, 'service.json is readable');
  assert.equal(record.pid, client.service.pid);
  assert.equal(statSync(serviceFilePath(workspace)).mode & 0o777, 0o600);
  assert.ok(pidAlive(record.pid));
  // A second connection reaches the same service instead of starting another.
  const again = await connect('second');
  assert.equal(again.service?.pid, record.pid);
  again.close();
});

test('a wrong token is refused and the connection closed', async () => {
  const record = readServiceFile(workspace);
  assert.ok(record);
  await assert.rejects(ControlClient.connect(record.port, 'f'.repeat(64)), (error: unknown) => {
    assert.ok(error instanceof ControlRequestError);
    assert.equal(error.code, 'unauthorized');
    return true;
  });
  // Nothing but hello is answered before the token is proven.
  const { connect: rawConnect } = await import('node:net');
  const socket = rawConnect({ host: '127.0.0.1', port: record.port });
  socket.setEncoding('utf8');
  let received = '';
  socket.on('data', (text: string) => (received += text));
  await new Promise<void>((r) => socket.once('connect', () => r()));
  socket.write(JSON.stringify({ type: 'snapshot', id: 'x1' }) + '\n');
  await new Promise<void>((r) => socket.once('close', () => r()));
  const reply = JSON.parse(received.trim()) as { ok: boolean; error: { code: string } };
  assert.equal(reply.ok, false);
  assert.equal(reply.error.code, 'unauthorized');
  assert.ok(!received.includes('"snapshot":'), 'no snapshot leaked');
});

test('a study runs: events arrive, a second client re-attaches mid-study from the snapshot, both see it end', async () => {
  const first = await connect('window-1');
  await first.request({ type: 'subscribe' });
  const seen = collect(first);
  const reply = await first.request({ type: 'run', spec: { script: 'quickstart.py', python: PYTHON, executors: ['local:2'], trackingUri: null } });
  const run = reply.run;
  assert.ok(run);
  await waitFor(first, (m) => m.type === 'event' && m.event.type === 'trial.finished' && m.event.tid >= 3);

  // A window reload: a new client subscribes while the study runs.
  const second = await connect('window-2');
  const attached = await second.request({ type: 'subscribe' });
  const later = collect(second);
  const snap = attached.snapshot?.runs.find((r) => r.run === run);
  assert.ok(snap, 'the snapshot has the run');
  assert.equal(snap.state, 'running');
  assert.equal(snap.studies.length, 1);
  const study = snap.studies[0]!;
  assert.equal(study.state, 'running');
  const finishedAtAttach = study.trials.filter((t) => t.state === 'done').length;
  assert.ok(finishedAtAttach >= 1, `the snapshot holds finished trials (${finishedAtAttach})`);
  assert.ok(study.trials.every((t) => Object.keys(t.params).length === 2), 'trials carry their params');

  const ended = (await waitFor(second, (m) => m.type === 'runEnded' && m.run === run)) as Extract<PushMessage, { type: 'runEnded' }>;
  assert.equal(ended.code, 0, JSON.stringify(ended.error));
  // What the snapshot held plus what came after covers every trial.
  const laterFinished = new Set(later.flatMap((m) => (m.type === 'event' && m.event.type === 'trial.finished' ? [m.event.tid] : [])));
  const all = new Set([...study.trials.filter((t) => t.state === 'done').map((t) => t.tid), ...laterFinished]);
  assert.equal(all.size, 40);
  assert.ok(seen.some((m) => m.type === 'event' && m.event.type === 'study.opened'));
  assert.ok(seen.some((m) => m.type === 'output' && m.text.includes('best point')), 'the script output is forwarded');
  const final = (await second.request({ type: 'snapshot' })).snapshot?.runs.find((r) => r.run === run);
  assert.equal(final?.state, 'ended');
  assert.equal(final?.studies[0]?.state, 'ended');
  assert.equal(final?.studies[0]?.reason, 'max_evals');
  const lastTrialEnd = Math.max(...final!.studies[0]!.trials.map((t) => t.endedAt ?? 0));
  // Trials' ends are stamped where they are measured (fractional ms, another clock than Date.now()):
  // the study's end is at the last one's, give or take a few ms.
  assert.ok(final!.studies[0]!.endedAt! >= lastTrialEnd - 50 && final!.studies[0]!.endedAt! <= Date.now(), `the snapshot says when the study ended (${final!.studies[0]!.endedAt} after the last trial's end at ${lastTrialEnd})`);
  assert.ok(existsSync(final!.studies[0]!.journal));
  first.close();
  second.close();
});

test('cancel ends the study at once and leaves no process behind', async () => {
  const client = await connect('window-3');
  await client.request({ type: 'subscribe' });
  const reply = await client.request({ type: 'run', spec: { script: 'quickstart.py', python: PYTHON, executors: ['local:2'], trackingUri: null } });
  // Two trials finish first: with none finished, fmin would raise AllTrialsFailed as hyperopt does.
  const finished = (await waitFor(client, (m) => m.type === 'event' && m.event.type === 'trial.finished' && m.event.tid >= 1)) as Extract<PushMessage, { type: 'event' }>;
  assert.ok(processesOfWorkspace().length >= 2, 'the script and its workers run');
  const study = finished.event.type === 'trial.finished' ? finished.event.study : '';
  await client.request({ type: 'cancel', study });
  const ended = (await waitFor(client, (m) => m.type === 'runEnded' && m.run === reply.run, 30_000)) as Extract<PushMessage, { type: 'runEnded' }>;
  assert.equal(ended.code, 0, 'fmin returns what finished and the script exits normally');
  const snap = (await client.request({ type: 'snapshot' })).snapshot?.runs.find((r) => r.run === reply.run);
  assert.equal(snap?.studies[0]?.reason, 'cancelled');
  let left = processesOfWorkspace();
  const deadline = Date.now() + 5_000;
  while (left.length > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    left = processesOfWorkspace();
  }
  assert.deepEqual(left, [], 'no process of the run is left');
  // Controls for a study that has ended are refused with a reason.
  await assert.rejects(client.request({ type: 'setTimeout', study, seconds: 60 }), (error: unknown) => error instanceof ControlRequestError && error.code === 'not_running');
  await assert.rejects(client.request({ type: 'stop', study: 'no-such-study' }), (error: unknown) => error instanceof ControlRequestError && error.code === 'unknown_study');
  client.close();
});

test('a run that cannot start is refused in its reply', async () => {
  const client = await connect('window-4');
  await assert.rejects(
    client.request({ type: 'run', spec: { script: 'missing.py', python: PYTHON, executors: ['local:1'] } }),
    (error: unknown) => error instanceof ControlRequestError && error.code === 'script_not_found',
  );
  await assert.rejects(
    client.request({ type: 'run', spec: { script: 'quickstart.py', python: PYTHON, executors: ['cluster:9'] } }),
    (error: unknown) => error instanceof ControlRequestError && error.code === 'invalid_executor',
  );
  client.close();
});

test("with the workspace's tracking server, the service gives its clients the server's token and the study's runs are written", async () => {
  const client = await connect('window-6');
  await client.request({ type: 'subscribe' });
  const tracking = (await client.request({ type: 'tracking', trackingUri: '', python: PYTHON }, 180_000)).tracking;
  assert.ok(tracking?.uri && tracking.kind === 'embedded' && tracking.token, JSON.stringify(tracking));
  // The Runs view reads with the token; without it the server refuses.
  await assert.rejects(new MlflowClient({ trackingUri: tracking.uri, maxRetries: 0 }).searchAllExperiments(), (error: unknown) => error instanceof MlflowError && error.code === 'unauthorized');
  const mlflow = new MlflowClient({ trackingUri: tracking.uri, auth: { kind: 'bearer', token: tracking.token }, maxRetries: 0, requestTimeoutMs: 120_000 });
  const reply = await client.request({ type: 'run', spec: { script: 'quickstart.py', python: PYTHON, executors: ['local:2'], trackingUri: '' } });
  const ended = (await waitFor(client, (m) => m.type === 'runEnded' && m.run === reply.run, 180_000)) as Extract<PushMessage, { type: 'runEnded' }>;
  assert.equal(ended.code, 0, JSON.stringify(ended.error));
  const deadline = Date.now() + 120_000;
  let children = 0;
  while (children < 40 && Date.now() < deadline) {
    children = (await mlflow.searchAllRuns({ experimentIds: ['0'], filter: "tags.trial_status = 'ok'" })).length;
    if (children < 40) await new Promise((r) => setTimeout(r, 500));
  }
  assert.equal(children, 40, "every trial's child run, written through the token-checking server");
  client.close();
});

test('a study a killed command left RUNNING in MLflow is closed when a window asks the service where runs go', async () => {
  const client = await connect('window-7');
  const notices = collect(client);
  await client.request({ type: 'subscribe' });
  writeFileSync(
    join(workspace, 'slow.py'),
    'import time\nfrom hyperopt import fmin, hp, rand\nfmin(lambda x: time.sleep(0.3) or x, hp.uniform("x", 0, 1), algo=rand.suggest, max_evals=60)\n',
  );
  const env: NodeJS.ProcessEnv = { ...process.env, HYPEROPT_RUNNER_PYTHON: PYTHON };
  delete env.MLFLOW_TRACKING_URI;
  const cli = spawn(process.execPath, [...CLI, 'run', 'slow.py', '--executor', 'local:2'], { cwd: workspace, env, stdio: 'ignore' });
  const exited = new Promise((r) => cli.once('exit', r));
  const journalDir = join(workspace, '.hyperopt-runner', 'journal');
  const before = new Set(existsSync(journalDir) ? readdirSync(journalDir) : []);
  // The study is tracked and two trials have run: then the command is killed, as `kill -9` would.
  let parentRunId: string | undefined;
  for (const deadline = Date.now() + 120_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 100))) {
    const journal = (existsSync(journalDir) ? readdirSync(journalDir) : []).find((name) => name.endsWith('.jsonl') && !before.has(name));
    const lines = journal ? readFileSync(join(journalDir, journal), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { k: string; parentRunId?: string }) : [];
    parentRunId = lines.find((r) => r.k === 'tracking')?.parentRunId;
    if (parentRunId && lines.filter((r) => r.k === 'end').length >= 2) break;
  }
  assert.ok(parentRunId, 'the study opened its parent run');
  cli.kill('SIGKILL');
  await exited;
  const tracking = (await client.request({ type: 'tracking', trackingUri: '', python: PYTHON }, 180_000)).tracking!;
  const mlflow = new MlflowClient({ trackingUri: tracking.uri!, auth: { kind: 'bearer', token: tracking.token! }, maxRetries: 0 });
  let status = (await mlflow.getRun(parentRunId)).info.status;
  for (const deadline = Date.now() + 60_000; status === 'RUNNING' && Date.now() < deadline; await new Promise((r) => setTimeout(r, 250))) {
    status = (await mlflow.getRun(parentRunId)).info.status;
  }
  assert.equal(status, 'KILLED', 'the parent the dead command left is closed');
  assert.ok(notices.some((m) => m.type === 'serviceNotice' && /closed the runs of 1 study/.test(m.text)), JSON.stringify(notices.filter((m) => m.type === 'serviceNotice')));
  client.close();
});

test('asked to shut down, the service exits and removes service.json', async () => {
  const client = await connect('window-5');
  const pid = client.service!.pid;
  await client.request({ type: 'shutdown' });
  const deadline = Date.now() + 15_000;
  while (pidAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  assert.equal(pidAlive(pid), false);
  assert.equal(existsSync(serviceFilePath(workspace)), false);
});
