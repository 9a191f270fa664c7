/** Builds executors from the specifications the user gave. */
import type { Executor } from '../../core/src/executor';
import type { ExecutorSpec } from '../../core/src/executorSpec';
import type { ForkServer } from '../../core/src/python/forkServer';
import { LocalExecutor } from './local/localExecutor';
import { createSshExecutor, type SshRunSettings } from './ssh';

export interface ExecutorContext {
  readonly python: string;
  /** Environment for workers; PYTHONPATH already carries the runtime package and the script's folder. */
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
  /** The script being run: the SSH executor ships its folder's Python files to the hosts. */
  readonly script?: string;
  /** Hosts file, host key policy and reverse forwards for ssh: executors. */
  readonly ssh?: SshRunSettings;
  /** The run's fork server, when it has one: local workers are forked from it. */
  readonly forkServer?: ForkServer;
}

export function createExecutor(spec: ExecutorSpec, context: ExecutorContext): Executor {
  switch (spec.kind) {
    case 'local':
      return new LocalExecutor({
        workers: spec.workers,
        python: context.python,
        env: context.env,
        cwd: context.cwd,
        label: spec.label,
        forkServer: context.forkServer,
      });
    case 'ssh':
      return createSshExecutor(spec, context);
  }
}
