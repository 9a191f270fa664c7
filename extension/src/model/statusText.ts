/** The status bar item's text for the running studies: `done/total`, best loss, time left. */
import { formatDuration, formatLoss } from './format';
import { bestOf, countsOf, deadlineOf, type LocalStudy } from './studyStore';
import { studyLabel } from './treeNodes';

export interface StatusText {
  text: string;
  tooltip: string;
  /** The study a click opens. */
  studyId: string;
}

export function statusText(active: readonly LocalStudy[], now: number = Date.now()): StatusText | undefined {
  const study = active[0];
  if (!study) return undefined;
  const counts = countsOf(study);
  const total = study.info.maxEvals ?? counts.total;
  const best = bestOf(study);
  const deadline = deadlineOf(study);
  const parts = [`${counts.finished}/${total}`];
  if (best) parts.push(`best ${formatLoss(best.loss)}`);
  if (deadline !== undefined) parts.push(`${formatDuration(Math.max(0, deadline - now))} left`);
  const more = active.length > 1 ? ` (+${active.length - 1})` : '';
  const icon = study.state === 'running' ? '$(loading~spin)' : '$(debug-stop)';
  return {
    text: `${icon} ${parts.join(' · ')}${more}`,
    tooltip: [
      `Hyperopt: ${studyLabel(study)} ${study.state}`,
      `${counts.finished} of ${total} trials finished, ${counts.running} running${counts.failed > 0 ? `, ${counts.failed} failed` : ''}`,
      best ? `best loss ${formatLoss(best.loss)} (trial ${best.tid})` : 'no finished trial yet',
      ...active.slice(1).map((s) => `also running: ${studyLabel(s)}`),
      'Click to open the study',
    ].join('\n'),
    studyId: study.id,
  };
}
