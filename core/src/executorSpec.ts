/** Parsing of executor specifications as users write them: local[:N], ssh:HOST[,HOST...]. */
import { availableParallelism } from 'node:os';
import { RunnerError } from './errors';

export type ExecutorSpec =
  | { readonly kind: 'local'; readonly workers: number; readonly label: string }
  | { readonly kind: 'ssh'; readonly hosts: readonly string[]; readonly label: string };

export function parseExecutorSpec(value: string): ExecutorSpec {
  const trimmed = value.trim();
  const colon = trimmed.indexOf(':');
  const kind = colon === -1 ? trimmed : trimmed.slice(0, colon);
  const rest = colon === -1 ? '' : trimmed.slice(colon + 1);
  if (kind === 'local') {
    if (rest === '') return { kind: 'local', workers: availableParallelism(), label: `local:${availableParallelism()}` };
    if (!/^\d+$/.test(rest) || Number(rest) < 1 || Number(rest) > 1024) {
      throw new RunnerError('invalid_executor', { value, reason: 'the number of workers must be a whole number from 1 to 1024' });
    }
    return { kind: 'local', workers: Number(rest), label: `local:${Number(rest)}` };
  }
  if (kind === 'ssh') {
    const hosts = rest.split(',').map((h) => h.trim()).filter((h) => h.length > 0);
    if (hosts.length === 0) throw new RunnerError('invalid_executor', { value, reason: 'name at least one host' });
    return { kind: 'ssh', hosts, label: `ssh:${hosts.join(',')}` };
  }
  throw new RunnerError('invalid_executor', { value, reason: `unknown executor kind '${kind}'` });
}
