/** `hyperopt-runner sync [STUDY...]`: writes to MLflow what a study could not log while it ran. */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { RunnerError } from '../../core/src/errors';
import { journalPath, listStudies, readJournal } from '../../core/src/journal/journal';
import { currentCliCommand } from '../../core/src/mlflow/serverLease';
import { TrackingSession } from '../../core/src/mlflow/tracking';
import { journalDirOption, parseFlags, resolvePython } from './options';

export async function syncCommand(argv: string[], env: NodeJS.ProcessEnv, cwd: string): Promise<number> {
  const { values, positionals } = parseFlags(argv, [
    { name: 'journal-dir', takesValue: true },
    { name: 'tracking-uri', takesValue: true },
    { name: 'python', takesValue: true },
  ]);
  const dir = journalDirOption(values.get('journal-dir')?.[0], env, cwd);
  const paths = positionals.length > 0
    ? positionals.map((ref) => {
        const path = ref.endsWith('.jsonl') ? resolve(cwd, ref) : journalPath(dir, ref);
        if (!existsSync(path)) throw new RunnerError('study_not_found', { study: ref, dir });
        readJournal(path);
        return path;
      })
    : listStudies(dir).studies.map((s) => s.path);
  const notice = (text: string): void => void process.stderr.write(`hyperopt-runner: ${text}\n`);
  const tracking = await TrackingSession.start({ python: resolvePython(values.get('python')?.[0], env, cwd), workspace: cwd, cliUri: values.get('tracking-uri')?.[0], env, cli: currentCliCommand(), notice });
  try {
    await tracking.ready().catch(() => undefined);
    const written = await tracking.syncJournals(paths, notice);
    process.stdout.write(`wrote ${written} trial run(s) to MLflow\n`);
    return 0;
  } finally {
    tracking.stop();
  }
}
