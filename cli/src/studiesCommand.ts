/** `hyperopt-runner studies` and `resume`: what the journal directory holds, and finishing a study. */
import { existsSync } from 'node:fs';
import { parseExecutorSpec } from '../../core/src/executorSpec';
import { withSshSettings } from '../../executors/src/ssh';
import { RunnerError } from '../../core/src/errors';
import { journalPath, listStudies, readJournal, type StudyRecord } from '../../core/src/journal/journal';
import { journalDirOption, parseFlags, resolvePython } from './options';
import { formatLoss, printable } from './progress';
import { runScript, summarizeStudy } from './runCommand';
import { dirname, resolve } from 'node:path';

export function studiesCommand(argv: string[], env: NodeJS.ProcessEnv, cwd: string): number {
  const { values } = parseFlags(argv, [
    { name: 'journal-dir', takesValue: true },
    { name: 'json', takesValue: false },
  ]);
  const dir = journalDirOption(values.get('journal-dir')?.[0], env, cwd);
  const { studies, unreadable } = listStudies(dir);
  const summaries = studies.map(summarizeStudy);
  if (values.has('json')) {
    process.stdout.write(JSON.stringify(summaries, null, 2) + '\n');
    return 0;
  }
  if (summaries.length === 0) {
    process.stdout.write(`no studies in ${dir}\n`);
  } else {
    const rows = summaries.map((s) => [
      s.study,
      s.state,
      `${s.trials.ok}/${s.trials.total} ok`,
      `${s.trials.failed} failed`,
      `best ${formatLoss(s.bestLoss === null ? undefined : Number(s.bestLoss))}`, // -Infinity is kept as text
      s.callSite,
    ].map(printable)); // the journals' text: a script's path may hold control characters
    const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
    for (const row of rows) process.stdout.write(row.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd() + '\n');
  }
  for (const path of unreadable) process.stderr.write(`hyperopt-runner: skipped unreadable journal ${printable(path)}\n`);
  return 0;
}

function findStudy(ref: string, dir: string, cwd: string): StudyRecord {
  const asPath = resolve(cwd, ref);
  if (ref.endsWith('.jsonl') && existsSync(asPath)) return readJournal(asPath);
  const path = journalPath(dir, ref);
  if (!existsSync(path)) throw new RunnerError('study_not_found', { study: ref, dir });
  return readJournal(path);
}

export async function resumeCommand(argv: string[], env: NodeJS.ProcessEnv, cwd: string): Promise<number> {
  const { values, positionals } = parseFlags(argv, [
    { name: 'journal-dir', takesValue: true },
    { name: 'python', takesValue: true },
    { name: 'executor', takesValue: true, repeat: true },
    { name: 'summary-json', takesValue: true },
    { name: 'quiet', takesValue: false },
    { name: 'tracking-uri', takesValue: true },
    { name: 'no-tracking', takesValue: false },
    { name: 'hosts-file', takesValue: true },
    { name: 'accept-new-host-keys', takesValue: false },
  ]);
  const ref = positionals[0];
  if (!ref) throw new RunnerError('invalid_option', { option: 'resume', value: '', reason: 'name a study id or a journal file' });
  const dirFlag = values.get('journal-dir')?.[0];
  let dir = journalDirOption(dirFlag, env, cwd);
  const target = findStudy(ref, dir, cwd);
  dir = dirname(target.path);
  if (target.state === 'ended' && target.endReason !== 'interrupted') {
    throw new RunnerError('resume_nothing_to_do', { study: target.info.id, reason: target.endReason ?? 'ended' });
  }
  // Every study of the same run, so the script's earlier fmin calls replay from the journal.
  const studies = new Map<number, StudyRecord>();
  for (const study of listStudies(dir).studies) {
    if (study.runIds.includes(target.info.runId) || study.info.runId === target.info.runId) studies.set(study.info.ordinal, study);
  }
  const info = target.info;
  const hostsFile = values.get('hosts-file')?.[0];
  const summary = values.get('summary-json')?.[0];
  return runScript({
    script: info.script,
    scriptArgs: info.args,
    cwd: info.cwd,
    python: values.get('python')?.[0] ? resolvePython(values.get('python')![0], env, cwd) : info.python,
    // SSH hosts get the hosts file and the script's folder as on `run`.
    executors: withSshSettings((values.get('executor') ?? info.executors).map(parseExecutorSpec), {
      hostsFile: hostsFile ? resolve(cwd, hostsFile) : undefined,
      acceptNewHostKeys: values.has('accept-new-host-keys'),
      codeDir: dirname(info.script),
    }),
    journalDir: dir,
    timeout: null,
    trialTimeout: info.trialTimeout,
    parallelism: null,
    summaryJson: summary ? resolve(cwd, summary) : null,
    quiet: values.has('quiet'),
    trackingUri: values.get('tracking-uri')?.[0] ?? null,
    noTracking: values.has('no-tracking'),
    resume: { runId: info.runId, studies },
  });
}
