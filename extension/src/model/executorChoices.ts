/** The executor quick pick as data: one item per configured executor, combinations, and actions. */
import { availableParallelism } from 'node:os';
import { parseExecutorSpec } from '../../../core/src/executorSpec';

export type ExecutorChoiceItem =
  | { kind: 'choice'; label: string; description: string; executors: string[]; last: boolean }
  | { kind: 'addSsh'; label: string; description: string };

/** How a choice reads: `local:4`, `ssh:gpu1,gpu2 + local:2`. */
export function choiceLabel(executors: readonly string[]): string {
  return executors.map((e) => parseExecutorSpec(e).label).join(' + ');
}

function describeOne(spec: string): string {
  const parsed = parseExecutorSpec(spec);
  if (parsed.kind === 'local') {
    const workers = parsed.workers;
    return `${workers} local worker${workers === 1 ? '' : 's'}${spec.trim() === 'local' ? ` (one per core of ${availableParallelism()})` : ''}`;
  }
  return `SSH: ${parsed.hosts.join(', ')}`;
}

/**
 * The configured executors each alone, then combinations: every SSH host set together with the
 * local pool, and all of them together when there are more than two. The last choice comes
 * first. "Add SSH hosts..." closes the list.
 */
export function executorChoices(configured: readonly string[], last: readonly string[] | undefined): ExecutorChoiceItem[] {
  const items: ExecutorChoiceItem[] = [];
  const seen = new Set<string>();
  const add = (executors: string[], description: string): void => {
    const key = executors.map((e) => parseExecutorSpec(e).label).sort().join('|');
    if (seen.has(key)) return;
    seen.add(key);
    const isLast = last !== undefined && key === [...last].map((e) => parseExecutorSpec(e).label).sort().join('|');
    items.push({ kind: 'choice', label: choiceLabel(executors), description, executors, last: isLast });
  };
  for (const spec of configured) add([spec], describeOne(spec));
  const locals = configured.filter((s) => parseExecutorSpec(s).kind === 'local');
  const ssh = configured.filter((s) => parseExecutorSpec(s).kind === 'ssh');
  if (locals.length > 0) {
    for (const remote of ssh) add([locals[0]!, remote], `${describeOne(locals[0]!)} and ${describeOne(remote)}`);
  }
  if (configured.length > 2) add([...(locals.length > 0 ? [locals[0]!] : []), ...ssh], 'every configured executor together');
  if (last && last.length > 0 && !items.some((i) => i.kind === 'choice' && i.last)) {
    try {
      add([...last], 'last used');
      const added = items[items.length - 1];
      if (added?.kind === 'choice') added.last = true;
    } catch {
      // a remembered choice that no longer parses is dropped
    }
  }
  items.sort((a, b) => Number(b.kind === 'choice' && b.last) - Number(a.kind === 'choice' && a.last));
  items.push({ kind: 'addSsh', label: 'Add SSH hosts...', description: 'host names or aliases from ~/.ssh/config, written to hyperoptRunner.executors' });
  return items;
}

/**
 * Validates what the user typed into "Add SSH hosts...": host names or aliases separated by commas
 * or spaces (user@host:port allowed). Returns the executor entry or an error message.
 */
export function sshEntryFromInput(text: string): { entry: string } | { error: string } {
  const hosts = text.split(/[\s,]+/).map((h) => h.trim()).filter((h) => h.length > 0);
  if (hosts.length === 0) return { error: 'Name at least one host, for example gpu1 or ada@gpu1.example.org:2222' };
  const bad = hosts.find((h) => !/^(?:[A-Za-z0-9._-]+@)?(?:[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/.test(h));
  if (bad !== undefined) return { error: `'${bad}' is not a host name, alias or user@host[:port]` };
  return { entry: `ssh:${hosts.join(',')}` };
}
