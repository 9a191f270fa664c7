/** What the CodeLens shows over each fmin call, as data (the provider turns it into CodeLenses). */
import type { FminCall } from '../../../core/src/scan/types';
import { COMMANDS } from '../commandIds';
import { formatDuration } from './format';
import { countsOf, deadlineOf, type LocalStudy } from './studyStore';

export interface LensSpec {
  /** Zero-based line of the call (the lens sits above it). */
  line: number;
  title: string;
  tooltip: string;
  command: string;
  args: unknown[];
}

/** A study runs this call when its call site (1-based line) falls within the call's lines. */
export function studyAt(call: FminCall, path: string, active: readonly LocalStudy[]): LocalStudy | undefined {
  return active.find((s) => samePath(s.info.callSite.file, path) && s.info.callSite.line - 1 >= call.line && s.info.callSite.line - 1 <= call.endLine);
}

function samePath(a: string, b: string): boolean {
  return a === b || (process.platform === 'win32' && a.toLowerCase() === b.toLowerCase());
}

export function lensesFor(path: string, calls: readonly FminCall[], active: readonly LocalStudy[], lastChoice: string | undefined, now: number = Date.now()): LensSpec[] {
  const lenses: LensSpec[] = [];
  for (const call of calls) {
    const study = studyAt(call, path, active);
    if (study) {
      const counts = countsOf(study);
      const total = study.info.maxEvals ?? counts.total;
      const deadline = deadlineOf(study);
      const left = deadline !== undefined ? ` · ${formatDuration(Math.max(0, deadline - now))} left` : '';
      const stateText = study.state === 'running' ? `${counts.finished}/${total}${left}` : study.state;
      lenses.push(
        { line: call.line, title: `$(debug-stop) Stop`, tooltip: 'No new trials; running trials finish and fmin returns', command: COMMANDS.stopStudy, args: [study.id] },
        { line: call.line, title: `$(close) Cancel`, tooltip: 'Kill the running trials; fmin returns what finished', command: COMMANDS.cancelStudy, args: [study.id] },
        { line: call.line, title: `$(watch) Timeout...`, tooltip: 'Set or extend the study timeout', command: COMMANDS.setStudyTimeout, args: [study.id] },
        { line: call.line, title: `$(graph) ${stateText}`, tooltip: 'Open the study\'s charts', command: COMMANDS.openCharts, args: [study.id] },
      );
      continue;
    }
    lenses.push({ line: call.line, title: '$(play) Run with executor...', tooltip: 'Run this script with its trials on an executor you pick', command: COMMANDS.runWithExecutor, args: [path] });
    if (lastChoice) {
      lenses.push({ line: call.line, title: `Run on ${lastChoice}`, tooltip: `Run this script on ${lastChoice} again`, command: COMMANDS.runOnLastExecutor, args: [path] });
    }
  }
  return lenses;
}
