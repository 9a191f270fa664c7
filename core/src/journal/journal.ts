import { closeSync, existsSync, fstatSync, ftruncateSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { RunnerError } from '../errors';
import { pidAlive } from '../lockFile';
import type { FinishedTrial } from '../protocol/driver';
import { lossToNumber, type ParamValue, type ResultSummary, type TrialError } from '../protocol/common';
import { JOURNAL_VERSION, JournalRecord, type StudyInfo, type StudyOwner, type StudyState } from './records';

/**
 * Appends records with one write() each, before the engine acknowledges the event, so a
 * finished trial survives a crash of the driver or the coordinator that comes after it.
 */
export class JournalWriter {
  private fd: number | undefined;
  /** Bytes in the file: where a record that could not be written whole is cut back to. */
  private size = 0;

  constructor(readonly path: string) {}

  /**
   * Writes the record whole or not at all: on a full disk a write can stop part-way, and half a
   * line in the middle would make the journal unreadable, so the file is cut back before the error
   * goes on.
   */
  append(record: JournalRecord): void {
    if (this.fd === undefined) {
      this.fd = openSync(this.path, 'a', 0o600);
      this.size = fstatSync(this.fd).size;
    }
    const bytes = Buffer.from(JSON.stringify(record) + '\n');
    let written = 0;
    try {
      while (written < bytes.length) written += writeSync(this.fd, bytes, written);
    } catch (error) {
      if (written > 0) {
        try {
          ftruncateSync(this.fd, this.size);
        } catch {
          // the error that matters is the write's
        }
      }
      throw error;
    }
    this.size += bytes.length;
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

export interface JournalTrial {
  tid: number;
  vals: FinishedTrial['vals'];
  params: Record<string, ParamValue>;
  state: 'queued' | 'running' | 'done' | 'error' | 'cancel';
  summary?: ResultSummary;
  result?: string;
  error?: TrialError;
  slot?: string;
  startedAt?: number;
  endedAt?: number;
  attempts: number;
  /** The trial's MLflow child run, once written (by its worker or by a sync). */
  mlflowRunId?: string;
  /** The run exists but is not known to be complete (no complete `tracked` or `synced` record). */
  mlflowIncomplete?: boolean;
}

export interface StudyRecord {
  info: StudyInfo;
  path: string;
  state: StudyState;
  /** How the study ended; 'interrupted' when its driver or coordinator died mid-study. */
  endReason?: string;
  endMessage?: string;
  endedAt?: number;
  trials: Map<number, JournalTrial>;
  runIds: string[];
  /** The process that ran the study last (absent in older journals). */
  owner?: StudyOwner;
  /** The study's parent MLflow run, when the study is tracked. */
  tracking?: { uri: string; experimentId: string; parentRunId: string; owned?: boolean; ended?: boolean };
  /** What the script asked of the study's runs when it opened (absent in older journals and untracked studies). */
  trackingRequest?: { params: Record<string, string>; activeRunId?: string; experimentId?: string };
}

export function journalPath(dir: string, studyId: string): string {
  return join(dir, `${studyId}.jsonl`);
}

export function ensureJournalDir(dir: string): void {
  // Trials' params, results and logs: for the owner alone (folders made here, not the user's own).
  mkdirSync(dir, { recursive: true, mode: 0o700 });
}

/**
 * The journal folder, made if need be, and proven writable by writing a file in it: a folder on a
 * read-only file system (or the user's without write permission, or on a full disk) is refused
 * before anything runs, rather than a study whose trials the journal never holds.
 */
export function ensureWritableJournalDir(dir: string): void {
  const probe = join(dir, `.write-check-${process.pid}`);
  try {
    ensureJournalDir(dir);
    writeFileSync(probe, 'ok\n', { mode: 0o600 });
  } catch (error) {
    const { code, message } = error as NodeJS.ErrnoException;
    throw new RunnerError('journal_dir_not_writable', { path: dir, reason: code === 'EROFS' ? 'a read-only file system' : code === 'ENOSPC' ? 'no space left' : (code ?? message) });
  } finally {
    rmSync(probe, { force: true });
  }
}

/** Reads a study back; a final line cut short by a crash is ignored. */
export function readJournal(path: string): StudyRecord {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new RunnerError('journal_corrupt', { path, reason: (error as Error).message });
  }
  const lines = text.split('\n');
  // The last element is empty after a final newline, or a record cut short by a crash.
  const complete = lines.slice(0, -1);
  let record: StudyRecord | undefined;
  for (const [index, line] of complete.entries()) {
    if (line.length === 0) continue;
    let parsed: JournalRecord;
    try {
      parsed = JournalRecord.parse(JSON.parse(line));
    } catch {
      throw new RunnerError('journal_corrupt', { path, reason: `line ${index + 1} is not a journal record` });
    }
    if (parsed.k === 'study') {
      if (parsed.v > JOURNAL_VERSION) {
        throw new RunnerError('journal_corrupt', { path, reason: `written by a newer version (${parsed.v})` });
      }
      record = { info: parsed.study, path, state: 'running', trials: new Map(), runIds: [parsed.study.runId], ...(parsed.owner ? { owner: parsed.owner } : {}) };
      continue;
    }
    if (!record) throw new RunnerError('journal_corrupt', { path, reason: 'no study record first' });
    applyRecord(record, parsed);
  }
  if (!record) throw new RunnerError('journal_corrupt', { path, reason: 'empty' });
  return record;
}

function applyRecord(study: StudyRecord, r: JournalRecord): void {
  switch (r.k) {
    case 'trial':
      study.trials.set(r.tid, { tid: r.tid, vals: r.vals, params: r.params, state: 'queued', attempts: 0 });
      return;
    case 'start': {
      const t = study.trials.get(r.tid);
      if (t) Object.assign(t, { state: 'running', slot: r.slot, startedAt: r.at, attempts: r.attempt });
      return;
    }
    case 'requeue': {
      const t = study.trials.get(r.tid);
      if (t) t.state = 'queued';
      return;
    }
    case 'end': {
      const t = study.trials.get(r.tid);
      if (!t) return;
      t.state = r.state;
      t.summary = r.summary;
      t.result = r.result;
      t.error = r.error;
      t.slot = r.slot ?? t.slot;
      t.startedAt = r.startedAt ?? t.startedAt;
      t.endedAt = r.endedAt;
      // A `run` record may have named the run already.
      t.mlflowRunId = r.mlflowRunId ?? t.mlflowRunId;
      t.mlflowIncomplete = r.mlflowIncomplete ?? (t.mlflowRunId !== undefined && t.mlflowIncomplete ? true : undefined);
      return;
    }
    case 'run': {
      const t = study.trials.get(r.tid);
      if (!t || t.mlflowRunId !== undefined) return;
      t.mlflowRunId = r.mlflowRunId;
      t.mlflowIncomplete = true;
      return;
    }
    case 'tracked': {
      // The run's writes are done (or failed); its id may come only now, when the run was still
      // being created as the trial ended.
      const t = study.trials.get(r.tid);
      if (!t || (t.mlflowRunId !== undefined && t.mlflowRunId !== r.mlflowRunId)) return;
      t.mlflowRunId = r.mlflowRunId;
      t.mlflowIncomplete = r.complete ? undefined : true;
      return;
    }
    case 'synced': {
      const t = study.trials.get(r.tid);
      if (t) {
        t.mlflowRunId = r.mlflowRunId;
        t.mlflowIncomplete = undefined;
      }
      return;
    }
    case 'parentEnded':
      if (study.tracking) study.tracking.ended = true;
      return;
    case 'trackingRequest':
      study.trackingRequest = { params: r.params, ...(r.activeRunId ? { activeRunId: r.activeRunId } : {}), ...(r.experimentId ? { experimentId: r.experimentId } : {}) };
      return;
    case 'tracking':
      study.tracking = { uri: r.uri, experimentId: r.experimentId, parentRunId: r.parentRunId, ...(r.owned !== undefined ? { owned: r.owned } : {}) };
      return;
    case 'state':
      study.state = r.state;
      if (r.state === 'ended') {
        study.endReason = r.reason;
        study.endMessage = r.message;
        study.endedAt = r.at;
      } else {
        study.endReason = undefined;
      }
      return;
    case 'resumed':
      study.runIds.push(r.runId);
      study.state = 'running';
      study.endReason = undefined;
      study.owner = r.owner;
      // The resumed study ends its parent again.
      if (study.tracking) study.tracking.ended = undefined;
      return;
    case 'settings':
    case 'study':
      return;
  }
}

/** The owner this process writes in the journals of the studies it runs. */
export function currentOwner(): StudyOwner {
  return { pid: process.pid, host: hostname() };
}

/**
 * True when a study that never ended was run by a process of this machine that is gone (killed,
 * crashed): nothing will end it but a later command. Unknown for older journals and for another
 * machine's processes.
 */
export function ownerGone(study: StudyRecord): boolean {
  return study.state !== 'ended' && study.owner !== undefined && study.owner.host === hostname() && !pidAlive(study.owner.pid);
}

/** How much of a journal's end `endedAtItsEnd` reads: far more than the records a sync appends after the end. */
const TAIL_BYTES = 64 * 1024;

/**
 * True when the journal's last bytes show the study ended (and not resumed since): a check that
 * costs one small read, so a folder of long studies is not parsed whole to find the few that
 * did not end. False means "read it to know".
 */
export function endedAtItsEnd(path: string): boolean {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    const size = fstatSync(fd).size;
    const length = Math.min(size, TAIL_BYTES);
    const buffer = Buffer.alloc(length);
    readSync(fd, buffer, 0, length, size - length);
    const tail = buffer.toString('utf8');
    const ended = tail.lastIndexOf('{"k":"state","state":"ended"');
    return ended >= 0 && tail.indexOf('{"k":"resumed"', ended) < 0;
  } catch {
    return false;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** When a journal was last written: for a study whose command died, the last moment it is known to have been alive. */
export function lastWriteAt(path: string): number {
  return Math.round(statSync(path).mtimeMs);
}

/** A trial running, or queued again with a child run (its worker was lost). */
export function inFlight(trial: JournalTrial): boolean {
  return trial.state === 'running' || (trial.state === 'queued' && trial.mlflowRunId !== undefined);
}

/** The end records of the attempts a dead command left in flight (its trials running, or queued again with a child run): cancelled at `at`. */
export function lostAttemptEnds(study: StudyRecord, why: string, at: number): Array<Extract<JournalRecord, { k: 'end' }>> {
  const lost = [...study.trials.values()].filter(inFlight);
  return lost.map((t) => ({
    k: 'end',
    tid: t.tid,
    state: 'cancel',
    error: { type: 'Cancelled', message: why },
    ...(t.slot ? { slot: t.slot } : {}),
    ...(t.startedAt !== undefined ? { startedAt: t.startedAt } : {}),
    endedAt: Math.max(at, t.startedAt ?? 0),
    ...(t.mlflowRunId ? { mlflowRunId: t.mlflowRunId, mlflowIncomplete: true } : {}),
  }));
}

export function listJournals(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((name) => name.endsWith('.jsonl'))
    .sort()
    .map((name) => join(dir, name));
}

/** Studies in a journal directory, oldest first; unreadable files are reported, not fatal. */
export function listStudies(dir: string): { studies: StudyRecord[]; unreadable: string[] } {
  const studies: StudyRecord[] = [];
  const unreadable: string[] = [];
  for (const path of listJournals(dir)) {
    try {
      studies.push(readJournal(path));
    } catch {
      unreadable.push(path);
    }
  }
  return { studies, unreadable };
}

export interface StudyCounts {
  total: number;
  done: number;
  ok: number;
  failed: number;
  cancelled: number;
  running: number;
  queued: number;
}

export function countTrials(trials: Iterable<JournalTrial>): StudyCounts {
  const c: StudyCounts = { total: 0, done: 0, ok: 0, failed: 0, cancelled: 0, running: 0, queued: 0 };
  for (const t of trials) {
    c.total += 1;
    if (t.state === 'done') {
      c.done += 1;
      if (t.summary?.status === 'ok') c.ok += 1;
      else c.failed += 1;
    } else if (t.state === 'error') c.failed += 1;
    else if (t.state === 'cancel') c.cancelled += 1;
    else if (t.state === 'running') c.running += 1;
    else c.queued += 1;
  }
  return c;
}

/** The best finished trial: lowest non-NaN loss among results with status ok. */
export function bestTrial(trials: Iterable<JournalTrial>): JournalTrial | undefined {
  let best: JournalTrial | undefined;
  let bestLoss = Infinity;
  for (const t of trials) {
    if (t.state !== 'done' || t.summary?.status !== 'ok') continue;
    const loss = lossToNumber(t.summary.loss);
    if (loss === undefined || Number.isNaN(loss)) continue;
    if (best === undefined || loss < bestLoss) {
      best = t;
      bestLoss = loss;
    }
  }
  return best;
}
