/**
 * Turns a webview `control` request into one engine call. The engine (`Engine` in
 * coordinator/engine.ts) satisfies `ControlTarget`; the extension calls `applyControl` and posts
 * the result back as the request's `reply`.
 */
import type { StudySettings } from '../coordinator/events';
import type { StudyState } from '../journal/records';
import { type ControlRequest, MAX_TIMEOUT_SECONDS } from '../protocol/webview';

export interface ControlTarget {
  snapshot(studyId: string): { state: StudyState; settings: StudySettings } | undefined;
  stop(studyId: string): void;
  cancel(studyId: string): void;
  setTimeout(studyId: string, seconds: number | null): void;
  setParallelism(studyId: string, parallelism: number): void;
  setPolicy(studyId: string, policy: { lossThreshold?: number | null; noProgressTrials?: number | null }): void;
}

export type ControlOutcome = { ok: true } | { ok: false; error: string };

/**
 * Applies a request to a study. `startedAt` is when the study (this run of it) started, which a
 * timeout counts from: extending a study that has no timeout gives it one ending `seconds` from now.
 */
export function applyControl(target: ControlTarget, studyId: string, request: ControlRequest, startedAt: number, now: number = Date.now()): ControlOutcome {
  const snap = target.snapshot(studyId);
  if (!snap) return { ok: false, error: 'This study is not running in this window.' };
  if (snap.state === 'ended') return { ok: false, error: 'The study has ended.' };
  switch (request.action) {
    case 'stop':
      if (snap.state !== 'running') return { ok: false, error: `The study is already ${snap.state}.` };
      target.stop(studyId);
      return { ok: true };
    case 'cancel':
      if (snap.state === 'cancelling') return { ok: false, error: 'The study is already cancelling.' };
      target.cancel(studyId);
      return { ok: true };
    case 'setTimeout':
      if (request.seconds !== null && startedAt + request.seconds * 1000 <= now) {
        return { ok: false, error: `A timeout of ${request.seconds} s has already passed; the study has run ${Math.round((now - startedAt) / 1000)} s.` };
      }
      target.setTimeout(studyId, request.seconds);
      return { ok: true };
    case 'extendTimeout': {
      const current = snap.settings.timeout;
      const base = current !== null && current > 0 ? current : Math.max(0, (now - startedAt) / 1000);
      const seconds = Math.min(MAX_TIMEOUT_SECONDS, base + request.seconds);
      target.setTimeout(studyId, seconds);
      return { ok: true };
    }
    case 'setParallelism':
      if (snap.state !== 'running') return { ok: false, error: 'The study is stopping: no new trials start.' };
      target.setParallelism(studyId, request.n);
      return { ok: true };
    case 'setPolicy':
      if (snap.state !== 'running') return { ok: false, error: 'The study is stopping: no new trials start.' };
      target.setPolicy(studyId, { lossThreshold: request.lossThreshold, noProgressTrials: request.noProgressTrials });
      return { ok: true };
  }
}
