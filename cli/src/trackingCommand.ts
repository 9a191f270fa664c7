/**
 * `hyperopt-runner tracking status|stop|ui|env`: the workspace's tracking servers (one per store),
 * a browser link into one's MLflow UI, the variables that let other MLflow clients in; and
 * `hyperopt-runner tracking-server`, the daemon itself, which the CLI and the background service
 * start when a workspace has none (see core/src/mlflow/serverDaemon.ts).
 */
import { closeSync, writeSync } from 'node:fs';
import { resolve } from 'node:path';
import { RunnerError } from '../../core/src/errors';
import { DEFAULT_IDLE_TIMEOUT_MS, TrackingDaemon } from '../../core/src/mlflow/serverDaemon';
import { listTrackingRecords } from '../../core/src/mlflow/serverRecord';
import { browserLinkPath, stopTrackingServer, trackingServerStatus } from '../../core/src/mlflow/serverLease';
import { BROWSER_CODE_TTL_MS, type DaemonHandshake } from '../../core/src/protocol/trackingServer';
import { shellQuote } from '../../executors/src/ssh/shellQuote';
import { parseFlags } from './options';

const DAEMON_FLAGS = [
  { name: 'workspace', takesValue: true },
  { name: 'store', takesValue: true },
  { name: 'python', takesValue: true },
  { name: 'idle-timeout', takesValue: true },
] as const;

/** The daemon: runs until it is idle, stopped or signalled. Its log is its stderr. */
export async function trackingServerCommand(argv: readonly string[], cwd: string): Promise<number> {
  const { values } = parseFlags(argv, DAEMON_FLAGS);
  const workspace = resolve(cwd, values.get('workspace')?.[0] ?? '.');
  const storeUri = values.get('store')?.[0];
  const python = values.get('python')?.[0];
  if (!storeUri || !python) {
    throw new RunnerError('invalid_option', { option: 'tracking-server', value: argv.join(' '), reason: 'it needs --store URI and --python PATH' });
  }
  const idleText = values.get('idle-timeout')?.[0];
  const idleSeconds = idleText === undefined ? DEFAULT_IDLE_TIMEOUT_MS / 1000 : Number(idleText);
  if (!Number.isFinite(idleSeconds) || idleSeconds <= 0) {
    throw new RunnerError('invalid_option', { option: '--idle-timeout', value: idleText ?? '', reason: 'expected a positive number of seconds' });
  }
  const log = (line: string): void => void process.stderr.write(`${new Date().toISOString()} [${process.pid}] ${line}\n`);
  const daemon = new TrackingDaemon({ workspace, storeUri, python, idleTimeoutMs: idleSeconds * 1000, env: process.env, log });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => void daemon.stop(`signal ${signal}`));
  const start = await daemon.start();
  const handshake: DaemonHandshake = start.started ? { started: true, pid: process.pid, port: start.port } : { started: false, runningPid: start.runningPid };
  try {
    // fd 3 is the pipe of whoever started the daemon; nothing else ever writes to it.
    writeSync(3, JSON.stringify(handshake) + '\n');
    closeSync(3);
  } catch {
    // Started by hand, without the pipe.
  }
  if (!start.started) {
    log(`a tracking server for ${storeUri} already runs (pid ${start.runningPid}); exiting`);
    return 0;
  }
  log(`exited: ${await daemon.stopped}`);
  return 0;
}

const FLAGS = [
  { name: 'workspace', takesValue: true },
  { name: 'json', takesValue: false },
] as const;

export async function trackingCommand(argv: readonly string[], cwd: string): Promise<number> {
  const { values, positionals } = parseFlags(argv, FLAGS);
  const workspace = resolve(cwd, values.get('workspace')?.[0] ?? '.');
  const action = positionals[0] ?? 'status';
  const records = listTrackingRecords(workspace);
  if (action === 'status') {
    const rows = await Promise.all(records.map(async ({ record }) => ({ record, status: await trackingServerStatus(record) })));
    if (values.has('json')) {
      process.stdout.write(JSON.stringify(rows.map(({ record, status }) => ({ uri: `http://127.0.0.1:${record.port}`, storeUri: record.storeUri, pid: record.pid, status: status ?? null })), null, 2) + '\n');
      return 0;
    }
    if (rows.length === 0) process.stdout.write(`no tracking server runs for ${workspace}\n`);
    for (const { record, status } of rows) {
      const state = status
        ? `${status.state}${status.message ? ` (${status.message})` : ''}, ${status.leases} in use${status.idleUntil ? `, ends at ${new Date(status.idleUntil).toLocaleTimeString()} unless used` : ''}`
        : 'not answering';
      process.stdout.write(`http://127.0.0.1:${record.port}  pid ${record.pid}  ${record.storeUri}  ${state}\n`);
    }
    return 0;
  }
  if (action === 'stop') {
    let failed = 0;
    for (const { record } of records) {
      if (await stopTrackingServer(record)) process.stdout.write(`stopped the tracking server for ${record.storeUri} (pid ${record.pid})\n`);
      else {
        failed += 1;
        process.stderr.write(`hyperopt-runner: the tracking server pid ${record.pid} did not answer; end it with: kill -- -${record.pid}\n`);
      }
    }
    if (records.length === 0) process.stdout.write(`no tracking server runs for ${workspace}\n`);
    return failed > 0 ? 1 : 0;
  }
  if (action === 'ui' || action === 'env') {
    if (records.length === 0) {
      process.stderr.write(`hyperopt-runner: no tracking server runs for ${workspace}; \`hyperopt-runner run\` starts one\n`);
      return 1;
    }
    for (const { record } of records) {
      const uri = `http://127.0.0.1:${record.port}`;
      if (action === 'env') {
        const prefix = records.length > 1 ? `# ${record.storeUri}\n` : '';
        process.stdout.write(`${prefix}export MLFLOW_TRACKING_URI=${shellQuote(uri)}\nexport MLFLOW_TRACKING_TOKEN=${shellQuote(record.apiToken)}\n`);
        continue;
      }
      try {
        const path = await browserLinkPath(uri, record.apiToken);
        process.stdout.write(`${uri}${path}  (${record.storeUri}; the link works once, within ${BROWSER_CODE_TTL_MS / 1000} s)\n`);
      } catch {
        process.stderr.write(`hyperopt-runner: the tracking server pid ${record.pid} did not answer; \`hyperopt-runner tracking stop\` ends it\n`);
        return 1;
      }
    }
    return 0;
  }
  throw new RunnerError('invalid_option', { option: 'tracking', value: action, reason: 'use `tracking status`, `tracking stop`, `tracking ui` or `tracking env`' });
}
