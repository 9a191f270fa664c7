/**
 * The Runs tree as plain data. Nodes are small objects that name what they show; `present`
 * turns a node and the current data into what a tree item needs. The provider makes TreeItems
 * out of that in one place (runsTree.ts).
 *
 * Root: the studies known from this window's service and the journal directory that MLflow does
 * not list (yet), newest first; then MLflow's experiments > studies (parent runs) > trials.
 */
import type { RunsNode, StudyNode, TrialNode } from '../../../core/src/mlflow/runsModel';
import type { RunStatus } from '../../../core/src/mlflow/client';
import { COMMANDS } from '../commandIds';
import { basename, formatDuration, formatLoss, formatStartTime } from './format';
import { bestOf, countsOf, endedAtOf, type LocalStudy, type LocalTrial } from './studyStore';

export type TreeNode =
  | { kind: 'study'; id: string; studyId: string }
  | { kind: 'trial'; id: string; studyId: string; tid: number }
  | { kind: 'mlflow'; id: string; node: RunsNode }
  | { kind: 'loadMore'; id: string; owner: TreeNode | undefined }
  | { kind: 'message'; id: string; text: string; tooltip?: string; severity: 'info' | 'warning' };

export const studyNode = (studyId: string): TreeNode => ({ kind: 'study', id: `local:${studyId}`, studyId });
export const trialNode = (studyId: string, tid: number): TreeNode => ({ kind: 'trial', id: `local:${studyId}/${tid}`, studyId, tid });
export const mlflowNode = (node: RunsNode): TreeNode => ({ kind: 'mlflow', id: `mlflow:${node.id}`, node });
export const loadMoreNode = (owner: TreeNode | undefined): TreeNode => ({ kind: 'loadMore', id: `more:${owner?.id ?? 'root'}`, owner });

export interface Icon {
  id: string;
  /** A theme colour id. */
  color?: string;
}

export interface Presentation {
  label: string;
  description?: string;
  tooltip?: string;
  icon?: Icon;
  contextValue?: string;
  collapsible: 'none' | 'collapsed' | 'expanded';
  command?: { command: string; title: string; args: unknown[] };
}

export interface PresentContext {
  study(id: string): LocalStudy | undefined;
  /** An MLflow UI is reachable for runs of this study or run. */
  mlflowUi: boolean;
  now: number;
}

const TRIAL_ICONS: Record<LocalTrial['state'], Icon> = {
  queued: { id: 'clock' },
  running: { id: 'sync~spin', color: 'charts.blue' },
  done: { id: 'pass', color: 'testing.iconPassed' },
  error: { id: 'error', color: 'testing.iconFailed' },
  cancel: { id: 'circle-slash', color: 'disabledForeground' },
};

const RUN_ICONS: Record<RunStatus, Icon> = {
  SCHEDULED: { id: 'clock' },
  RUNNING: { id: 'sync~spin', color: 'charts.blue' },
  FINISHED: { id: 'pass', color: 'testing.iconPassed' },
  FAILED: { id: 'error', color: 'testing.iconFailed' },
  KILLED: { id: 'circle-slash', color: 'disabledForeground' },
};

const BEST_ICON: Icon = { id: 'star-full', color: 'charts.yellow' };

export function studyLabel(study: LocalStudy): string {
  const site = `${basename(study.info.callSite.file)}:${study.info.callSite.line}`;
  return study.info.ordinal > 0 ? `${site} (fmin #${study.info.ordinal + 1})` : site;
}

/** `done/total · best · duration · end reason · start time`, as the status bar and the panel count. */
function studyDescription(study: LocalStudy, now: number): string {
  const counts = countsOf(study);
  const best = bestOf(study);
  const total = study.info.maxEvals ?? counts.total;
  const end = study.state === 'ended' ? endedAtOf(study) : now;
  const parts = [`${counts.finished}/${total}`];
  if (best) parts.push(`best ${formatLoss(best.loss)}`);
  if (end !== undefined) parts.push(formatDuration(end - study.info.createdAt));
  if (study.state !== 'running') parts.push(study.state === 'ended' ? (study.reason ?? 'ended') : study.state);
  parts.push(formatStartTime(study.info.createdAt, now));
  return parts.join(' · ');
}

const STUDY_RUNNING_ICON: Icon = { id: 'loading~spin', color: 'charts.blue' };

/** An ended study's icon, by how it ended: finished, stopped, cancelled, failed or killed (its driver died). */
export function studyEndIcon(reason: string | undefined): Icon {
  switch (reason) {
    case 'stopped':
    case 'timeout':
      return { id: 'debug-stop', color: 'disabledForeground' };
    case 'cancelled':
      return { id: 'circle-slash', color: 'disabledForeground' };
    case 'failed':
      return { id: 'error', color: 'testing.iconFailed' };
    case 'interrupted':
      return { id: 'warning', color: 'list.warningForeground' };
    default:
      return { id: 'beaker', color: 'testing.iconPassed' };
  }
}

function studyIcon(study: LocalStudy): Icon {
  if (study.state !== 'ended') return study.live ? STUDY_RUNNING_ICON : { id: 'warning', color: 'list.warningForeground' };
  return studyEndIcon(study.reason);
}

/** MLflow's study: the engine's end reason when this window saw it end, else MLflow's status. */
function mlflowStudyIcon(node: StudyNode, running: boolean): Icon {
  if (running) return STUDY_RUNNING_ICON;
  if (node.endReason !== undefined && node.status !== 'RUNNING' && node.status !== 'SCHEDULED') return studyEndIcon(node.endReason);
  return RUN_ICONS[node.status];
}

function trialDescription(loss: number | undefined, durationMs: number | undefined, best: boolean, state?: string): string {
  const parts: string[] = [];
  if (best) parts.push('★ best');
  if (loss !== undefined) parts.push(`loss ${formatLoss(loss)}`);
  else if (state) parts.push(state);
  if (durationMs !== undefined) parts.push(formatDuration(durationMs));
  return parts.join(' · ');
}

const TRIAL_STATE_TEXT: Record<LocalTrial['state'], string> = { queued: 'queued', running: 'running', done: 'done', error: 'failed', cancel: 'cancelled' };
/** MLflow's statuses in the words the panel uses (a KILLED run is a cancelled trial or study). */
const RUN_STATE_TEXT: Record<RunStatus, string> = { SCHEDULED: 'queued', RUNNING: 'running', FINISHED: 'done', FAILED: 'failed', KILLED: 'cancelled' };

export function present(node: TreeNode, ctx: PresentContext): Presentation {
  switch (node.kind) {
    case 'study': {
      const study = ctx.study(node.studyId);
      if (!study) return { label: node.studyId, collapsible: 'none' };
      const counts = countsOf(study);
      const best = bestOf(study);
      const running = study.live && study.state !== 'ended';
      const tokens = ['study', 'charts', 'script', 'logs', 'runId'];
      tokens.push(running ? 'running' : 'idle');
      if (study.tracking && ctx.mlflowUi) tokens.push('mlflow');
      return {
        label: studyLabel(study),
        description: studyDescription(study, ctx.now),
        tooltip: [
          `Study ${study.id}`,
          study.info.script,
          `started ${new Date(study.info.createdAt).toLocaleString()}`,
          `executors: ${study.info.executors.join(' + ')} · algo ${study.info.algo}`,
          `trials: ${counts.ok} ok, ${counts.failed} failed, ${counts.cancelled} cancelled, ${counts.running} running`,
          best ? `best: trial ${best.tid}, loss ${formatLoss(best.loss)}` : '',
          study.message ?? '',
        ].filter(Boolean).join('\n'),
        icon: studyIcon(study),
        contextValue: tokens.join(' '),
        // Expanded while not ended, live or not yet re-attached: the row's first appearance after a
        // window reload decides its state in the tree, and the study may not be live yet then.
        collapsible: study.state !== 'ended' ? 'expanded' : 'collapsed',
        command: { command: COMMANDS.openCharts, title: 'Open Charts', args: [study.id] },
      };
    }
    case 'trial': {
      const study = ctx.study(node.studyId);
      const trial = study?.trials.get(node.tid);
      if (!study || !trial) return { label: `trial ${node.tid}`, collapsible: 'none' };
      const isBest = bestOf(study)?.tid === trial.tid;
      const end = trial.endedAt ?? (trial.state === 'running' ? ctx.now : undefined);
      const duration = trial.startedAt !== undefined && end !== undefined ? end - trial.startedAt : undefined;
      const failed = trial.state === 'done' && trial.resultStatus !== undefined && trial.resultStatus !== 'ok';
      return {
        label: `trial ${trial.tid}`,
        description: trialDescription(trial.state === 'done' && !failed ? trial.loss : undefined, duration, isBest, failed ? `status ${trial.resultStatus}` : TRIAL_STATE_TEXT[trial.state]),
        tooltip: [
          ...Object.entries(trial.params).map(([k, v]) => `${k} = ${String(v)}`),
          trial.slot ? `slot ${trial.slot}` : '',
          trial.error ? `${trial.error.type}: ${trial.error.message.split('\n')[0]}` : '',
        ].filter(Boolean).join('\n'),
        icon: isBest ? BEST_ICON : failed ? TRIAL_ICONS.error : TRIAL_ICONS[trial.state],
        contextValue: ['trial', 'logs', 'charts', 'script'].join(' '),
        collapsible: 'none',
      };
    }
    case 'mlflow':
      return presentMlflow(node.node, ctx);
    case 'loadMore':
      return {
        label: 'Load more',
        icon: { id: 'ellipsis' },
        contextValue: 'loadMore',
        collapsible: 'none',
        command: { command: COMMANDS.loadMore, title: 'Load more', args: [node.owner?.id] },
      };
    case 'message':
      return {
        label: node.text,
        tooltip: node.tooltip ?? node.text,
        icon: node.severity === 'warning' ? { id: 'warning', color: 'list.warningForeground' } : { id: 'info' },
        contextValue: 'message',
        collapsible: 'none',
      };
  }
}

function presentMlflow(node: RunsNode, ctx: PresentContext): Presentation {
  const ui = ctx.mlflowUi ? ['mlflow'] : [];
  if (node.kind === 'experiment') {
    return { label: node.label, icon: { id: 'folder-library' }, contextValue: ['experiment', ...ui].join(' '), collapsible: 'collapsed', tooltip: `Experiment ${node.experimentId}` };
  }
  if (node.kind === 'study') return presentMlflowStudy(node, ctx, ui);
  return presentMlflowTrial(node, ui);
}

function presentMlflowStudy(node: StudyNode, ctx: PresentContext, ui: string[]): Presentation {
  const local = node.studyId ? ctx.study(node.studyId) : undefined;
  const running = local !== undefined && local.live && local.state !== 'ended';
  const parts = [`${node.trialCount} trial${node.trialCount === 1 ? '' : 's'}`];
  if (node.bestLoss !== undefined) parts.unshift(`best ${formatLoss(node.bestLoss)}`);
  if (node.durationMs !== undefined) parts.push(formatDuration(node.durationMs));
  if (node.startTime !== undefined) parts.push(formatStartTime(node.startTime, ctx.now));
  const tokens = ['study', 'charts', ...ui];
  if (node.runId) tokens.push('runId');
  if (local) tokens.push('script', 'logs');
  if (node.studyId || local) tokens.push(running ? 'running' : 'idle');
  return {
    // A study of this window is named and counted as its panel and the status bar do.
    label: local ? studyLabel(local) : node.label,
    description: local ? studyDescription(local, ctx.now) : parts.join(' · '),
    tooltip: [
      `MLflow run ${node.runId ?? '(not yet logged)'}`,
      node.studyId ? `study ${node.studyId}` : '',
      node.startTime !== undefined ? `started ${new Date(node.startTime).toLocaleString()}` : '',
      `status ${RUN_STATE_TEXT[node.status]}`,
    ].filter(Boolean).join('\n'),
    icon: mlflowStudyIcon(node, running),
    contextValue: tokens.join(' '),
    collapsible: running || (local !== undefined && local.state !== 'ended') ? 'expanded' : 'collapsed',
    ...(node.studyId ? { command: { command: COMMANDS.openCharts, title: 'Open Charts', args: [node.studyId] } } : {}),
  };
}

function presentMlflowTrial(node: TrialNode, ui: string[]): Presentation {
  const params = Object.entries(node.params).map(([k, v]) => `${k} = ${v}`);
  const tokens = ['trial', ...ui];
  if (node.runId) tokens.push('runId');
  if (node.tid !== undefined) tokens.push('logs', 'charts');
  return {
    label: node.label,
    description: trialDescription(node.status === 'FINISHED' ? node.loss : undefined, node.durationMs, node.isBest, RUN_STATE_TEXT[node.status]),
    tooltip: [...params, node.runId ? `MLflow run ${node.runId}` : ''].filter(Boolean).join('\n'),
    icon: node.isBest ? BEST_ICON : RUN_ICONS[node.status],
    contextValue: tokens.join(' '),
    collapsible: 'none',
  };
}
