/** Builds executors from the specifications the user gave. */
import type { Executor } from '../../core/src/executor';
import type { ExecutorSpec } from '../../core/src/executorSpec';
import { RunnerError } from '../../core/src/errors';
import { LocalExecutor } from './local/localExecutor';

export interface ExecutorContext {
  readonly python: string;
  /** Environment for workers; PYTHONPATH already carries the runtime package and the script's folder. */
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
}

export function createExecutor(spec: ExecutorSpec, context: ExecutorContext): Executor {
  switch (spec.kind) {
    case 'local':
      return new LocalExecutor({ workers: spec.workers, python: context.python, env: context.env, cwd: context.cwd, label: spec.label });
    case 'ssh':
      throw new RunnerError('invalid_executor', { value: spec.label, reason: 'the SSH executor is not available in this build' });
  }
}
