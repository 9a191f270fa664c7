/**
 * The trials panel's model of a study built from this window's store: what the panel shows when
 * it opens (or is restored) and whenever the store has moved on without an engine event.
 * vscode-free: panel.ts feeds the webview from it.
 */
import { settingsOf, studyHeader, StudyViewModel } from '../../../core/src/analysis/studyView';
import { numberToLoss } from '../../../core/src/protocol/common';
import { hostOfSlot } from '../../../core/src/protocol/webview';
import { endedAtOf, type LocalStudy } from './studyStore';

export function viewModelOf(study: LocalStudy): StudyViewModel {
  const settings = study.settings ? { ...study.settings, parallelism: Math.max(1, study.settings.parallelism) } : settingsOf(study.info);
  const model = new StudyViewModel(studyHeader(study.info, study.live ? 'live' : 'journal'), settings, study.openedAt);
  for (const t of study.trials.values()) {
    model.upsert({
      tid: t.tid,
      state: t.state,
      params: t.params,
      ...(t.loss !== undefined ? { loss: numberToLoss(t.loss) } : {}),
      ...(t.resultStatus ? { status: t.resultStatus } : {}),
      ...(t.slot ? { slot: t.slot, host: hostOfSlot(t.slot) } : {}),
      ...(t.startedAt !== undefined ? { startedAt: t.startedAt } : {}),
      ...(t.endedAt !== undefined ? { endedAt: t.endedAt } : {}),
      ...(t.error ? { error: { type: t.error.type, message: t.error.message.slice(0, 2000) } } : {}),
    });
  }
  model.setState(study.state, { reason: study.reason, message: study.message, endedAt: endedAtOf(study) });
  return model;
}
