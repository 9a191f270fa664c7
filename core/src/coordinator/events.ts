import type { ResultSummary, TrialError, ParamValue } from '../protocol/common';
import type { StudyInfo, StudyState } from '../journal/records';

export type TrialState = 'queued' | 'running' | 'done' | 'error' | 'cancel';

export interface StudySettings {
  /** Study timeout in seconds from the study's start, or null. */
  timeout: number | null;
  /** Epoch ms at which running trials are cancelled, or null. */
  deadline: number | null;
  parallelism: number;
  lossThreshold: number | null;
  /** Stop after this many finished trials without a better loss, or null. */
  noProgressTrials: number | null;
  trialTimeout: number | null;
}

/** What every view (CLI progress, tree, webview, status bar, journal) learns of a study. */
export type EngineEvent =
  | { type: 'study.opened'; study: StudyInfo; journal: string; settings: StudySettings; resumed: boolean }
  | { type: 'study.state'; study: string; state: StudyState; reason?: string; message?: string }
  | { type: 'study.settings'; study: string; settings: StudySettings }
  | { type: 'study.closed'; study: string }
  | { type: 'study.tracking'; study: string; uri: string; experimentId: string; parentRunId: string }
  | { type: 'trial.queued'; study: string; tid: number; params: Record<string, ParamValue> }
  | { type: 'trial.started'; study: string; tid: number; slot: string; at: number; attempt: number }
  | { type: 'trial.requeued'; study: string; tid: number; slot: string; reason: string }
  | {
      type: 'trial.finished';
      study: string;
      tid: number;
      state: 'done' | 'error' | 'cancel';
      summary?: ResultSummary;
      error?: TrialError;
      slot?: string;
      startedAt?: number;
      endedAt: number;
    }
  | { type: 'trial.output'; study: string; tid: number; slot: string; text: string }
  | { type: 'notice'; text: string };
