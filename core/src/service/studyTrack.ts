/** What the service remembers of a study from its engine events, for snapshots. */
import type { EngineEvent } from '../coordinator/events';
import type { StudySnapshot, TrialSnapshot } from '../protocol/control';

const MAX_ERROR = 2_000;

export class StudyTracks {
  private readonly studies = new Map<string, StudySnapshot>();
  private readonly trials = new Map<string, Map<number, TrialSnapshot>>();

  apply(event: EngineEvent, now: number = Date.now()): void {
    switch (event.type) {
      case 'study.opened': {
        this.studies.set(event.study.id, {
          info: event.study,
          journal: event.journal,
          state: 'running',
          settings: { ...event.settings },
          openedAt: now,
          trials: [],
        });
        if (!this.trials.has(event.study.id)) this.trials.set(event.study.id, new Map());
        return;
      }
      case 'study.state': {
        const study = this.studies.get(event.study);
        if (!study) return;
        study.state = event.state;
        study.reason = event.reason;
        study.message = event.message;
        if (event.state === 'ended') study.endedAt ??= Date.now();
        return;
      }
      case 'study.settings': {
        const study = this.studies.get(event.study);
        if (study) study.settings = { ...event.settings };
        return;
      }
      case 'trial.queued':
        this.trials.get(event.study)?.set(event.tid, { tid: event.tid, state: 'queued', params: event.params });
        return;
      case 'trial.started': {
        const trial = this.trials.get(event.study)?.get(event.tid);
        if (trial) Object.assign(trial, { state: 'running', slot: event.slot, startedAt: event.at });
        return;
      }
      case 'trial.requeued': {
        const trial = this.trials.get(event.study)?.get(event.tid);
        if (trial) trial.state = 'queued';
        return;
      }
      case 'trial.finished': {
        const trials = this.trials.get(event.study);
        if (!trials) return;
        const trial = trials.get(event.tid) ?? { tid: event.tid, state: event.state, params: {} };
        trial.state = event.state;
        trial.endedAt = event.endedAt;
        if (event.summary) trial.summary = event.summary;
        if (event.slot) trial.slot = event.slot;
        if (event.startedAt !== undefined) trial.startedAt = event.startedAt;
        if (event.error) trial.error = { type: event.error.type, message: event.error.message.slice(0, MAX_ERROR) };
        trials.set(event.tid, trial);
        return;
      }
      case 'study.tracking': {
        const study = this.studies.get(event.study);
        if (study) study.tracking = { uri: event.uri, experimentId: event.experimentId, parentRunId: event.parentRunId };
        return;
      }
      case 'study.closed':
      case 'trial.output':
      case 'notice':
        return;
    }
  }

  has(study: string): boolean {
    return this.studies.has(study);
  }

  state(study: string): StudySnapshot['state'] | undefined {
    return this.studies.get(study)?.state;
  }

  ids(): string[] {
    return [...this.studies.keys()];
  }

  snapshot(): StudySnapshot[] {
    return [...this.studies.values()].map((study) => ({
      ...study,
      settings: { ...study.settings },
      trials: [...(this.trials.get(study.info.id)?.values() ?? [])].map((t) => ({ ...t })).sort((a, b) => a.tid - b.tid),
    }));
  }
}
