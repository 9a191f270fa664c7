/**
 * `hyperopt-runner serve --workspace DIR`: the background service the editor starts for a
 * workspace. It owns the workspace's runs so that they outlive editor windows; see
 * docs/control-protocol.md. One per workspace: a second one exits at once.
 */
import { appendFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { RunnerError } from '../../core/src/errors';
import { ControlService } from '../../core/src/service/service';
import { acquireServiceLock, buildVersion, serviceLogPath } from '../../core/src/service/serviceFile';
import { createExecutor } from '../../executors/src/create';
import { parseFlags } from './options';

const FLAGS = [
  { name: 'workspace', takesValue: true },
  { name: 'idle-timeout', takesValue: true },
  { name: 'log-to-stderr', takesValue: false },
] as const;

export async function serveCommand(argv: readonly string[], cwd: string): Promise<number> {
  const { values, positionals } = parseFlags(argv, FLAGS);
  if (positionals.length > 0) throw new RunnerError('invalid_option', { option: 'serve', value: positionals.join(' '), reason: 'serve takes no positional arguments' });
  const workspace = resolve(cwd, values.get('workspace')?.[0] ?? '.');
  const idleText = values.get('idle-timeout')?.[0];
  const idleSeconds = idleText === undefined ? 300 : Number(idleText);
  if (!Number.isFinite(idleSeconds) || idleSeconds <= 0) {
    throw new RunnerError('invalid_option', { option: '--idle-timeout', value: idleText ?? '', reason: 'expected a positive number of seconds' });
  }
  const logPath = serviceLogPath(workspace);
  const toStderr = values.has('log-to-stderr');
  const log = (line: string): void => {
    if (toStderr) process.stderr.write(`${line}\n`);
    else appendFileSync(logPath, `${line}\n`, { mode: 0o600 });
  };

  const lock = acquireServiceLock(workspace);
  if ('heldBy' in lock) {
    log(`${new Date().toISOString()} a service for ${workspace} already runs (pid ${lock.heldBy}); exiting`);
    return 0;
  }
  const service = new ControlService({
    workspace,
    createExecutor: (spec, context) => createExecutor(spec, context),
    version: buildVersion(process.argv[1]),
    idleTimeoutMs: idleSeconds * 1000,
    log,
  });
  const closed = new Promise<string>((done) => service.closed.on(({ reason }) => done(reason)));
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => void service.shutdown(`signal ${signal}`));
  }
  try {
    await service.listen();
    await closed;
  } finally {
    lock.release();
  }
  log(`${new Date().toISOString()} exited`);
  return 0;
}
