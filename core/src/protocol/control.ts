/**
 * Editor <-> background service channel: newline-delimited JSON over a loopback TCP socket.
 *
 * The background service (`hyperopt-runner serve`) owns the runs of one workspace; editor windows
 * are its clients. A client first sends `hello` with the token from `.hyperopt-runner/service.json`
 * (nothing else is answered before that). Every request carries an `id` that its `reply` echoes.
 * After `subscribe` the client receives `event`, `output`, `runStarted` and `runEnded` messages; the
 * reply to `subscribe` carries a snapshot of every run the service knows, taken in the same turn,
 * so a window that re-attaches misses nothing between the snapshot and the first event.
 * The service may also put a question to the editor (`prompt`: an SSH key's passphrase, an unknown
 * host key), which the editor answers with an `answer` request before the prompt's deadline.
 *
 * Versioned: a client whose `protocol` differs from CONTROL_PROTOCOL_VERSION is refused in the
 * reply to its `hello`. Unknown or invalid messages are answered with an `invalid_request` reply
 * when they carry an id, and otherwise dropped (both sides log them).
 */
import { z } from 'zod';
import type { EngineEvent, StudySettings } from '../coordinator/events';
import { StudyInfo, StudyState } from '../journal/records';
import { ParamValue, ResultSummary, TrialError } from './common';

export const CONTROL_PROTOCOL_VERSION = 1;

const Id = z.string().min(1).max(100);
const Name = z.string().max(1_000);
const Path = z.string().min(1).max(4_096);
const StudyId = z.string().min(1).max(200);
const Seconds = z.number().positive().max(366 * 24 * 3600);

// ---- engine events, as they cross the channel ---------------------------------------------------

export const StudySettingsSchema = z.object({
  timeout: z.number().nullable(),
  deadline: z.number().nullable(),
  parallelism: z.number().int(),
  lossThreshold: z.number().nullable(),
  noProgressTrials: z.number().int().nullable(),
  trialTimeout: z.number().nullable(),
});

const TrialStateSchema = z.enum(['queued', 'running', 'done', 'error', 'cancel']);

export const EngineEventSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('study.opened'), study: StudyInfo, journal: z.string(), settings: StudySettingsSchema, resumed: z.boolean() }),
  z.object({ type: z.literal('study.state'), study: z.string(), state: StudyState, reason: z.string().optional(), message: z.string().optional() }),
  z.object({ type: z.literal('study.settings'), study: z.string(), settings: StudySettingsSchema }),
  z.object({ type: z.literal('study.closed'), study: z.string() }),
  z.object({ type: z.literal('trial.queued'), study: z.string(), tid: z.number().int(), params: z.record(z.string(), ParamValue) }),
  z.object({ type: z.literal('trial.started'), study: z.string(), tid: z.number().int(), slot: z.string(), at: z.number(), attempt: z.number().int() }),
  z.object({ type: z.literal('trial.requeued'), study: z.string(), tid: z.number().int(), slot: z.string(), reason: z.string() }),
  z.object({
    type: z.literal('trial.finished'),
    study: z.string(),
    tid: z.number().int(),
    state: z.enum(['done', 'error', 'cancel']),
    summary: ResultSummary.optional(),
    error: TrialError.optional(),
    slot: z.string().optional(),
    startedAt: z.number().optional(),
    endedAt: z.number(),
  }),
  z.object({ type: z.literal('trial.output'), study: z.string(), tid: z.number().int(), slot: z.string(), text: z.string() }),
  z.object({ type: z.literal('notice'), text: z.string() }),
  z.object({ type: z.literal('study.tracking'), study: z.string(), uri: z.string(), experimentId: z.string(), parentRunId: z.string() }),
]);

// The wire schema and the engine's own types must agree: these lines stop compiling if they drift.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const _eventsMatch: Same<z.infer<typeof EngineEventSchema>, EngineEvent> = true;
const _settingsMatch: Same<z.infer<typeof StudySettingsSchema>, StudySettings> = true;
void _eventsMatch;
void _settingsMatch;

// ---- what a run is ----------------------------------------------------------------------------

/** What the editor asks the service to run: the script, its interpreter and the executors. */
export const RunSpec = z.object({
  script: Path,
  args: z.array(z.string().max(4_096)).max(1_000).default([]),
  /** Working directory of the script; default: the workspace folder. */
  cwd: Path.optional(),
  /** The interpreter that runs the driver and the local workers. */
  python: Path,
  /** Executor specifications as users write them: `local:4`, `ssh:gpu1,gpu2`. */
  executors: z.array(Name).min(1).max(64),
  timeout: Seconds.nullable().default(null),
  trialTimeout: Seconds.nullable().default(null),
  parallelism: z.number().int().min(1).max(4096).nullable().default(null),
  /** Default: `<workspace>/.hyperopt-runner/journal`. */
  journalDir: Path.optional(),
  /** MLflow: an http(s) URI, a store URI for the embedded server, '' for the workspace's embedded server, or null for none. */
  trackingUri: z.string().max(4_096).nullable().default(null),
  /** SSH executors: the hosts file and whether keys of hosts not yet in known_hosts are recorded. */
  ssh: z.object({ hostsFile: Path.optional(), acceptNewHostKeys: z.boolean().optional() }).optional(),
  /** Extra environment for the script and its workers. */
  env: z.record(z.string().max(200), z.string().max(32_768)).optional(),
});
export type RunSpec = z.input<typeof RunSpec>;
export type ResolvedRunSpec = z.output<typeof RunSpec>;

export const TrialSnapshot = z.object({
  tid: z.number().int(),
  state: TrialStateSchema,
  params: z.record(z.string(), ParamValue),
  summary: ResultSummary.optional(),
  error: z.object({ type: z.string(), message: z.string() }).optional(),
  slot: z.string().optional(),
  startedAt: z.number().optional(),
  endedAt: z.number().optional(),
});
export type TrialSnapshot = z.infer<typeof TrialSnapshot>;

export const StudySnapshot = z.object({
  info: StudyInfo,
  journal: z.string(),
  state: StudyState,
  reason: z.string().optional(),
  message: z.string().optional(),
  settings: StudySettingsSchema,
  /** When this run of the study opened (a resumed study restarts its clock). */
  openedAt: z.number(),
  /** When it ended, once it has: the end of its elapsed time and its timeline. */
  endedAt: z.number().optional(),
  /** The study's MLflow parent run, once the driver created it. */
  tracking: z.object({ uri: z.string(), experimentId: z.string(), parentRunId: z.string() }).optional(),
  trials: z.array(TrialSnapshot),
});
export type StudySnapshot = z.infer<typeof StudySnapshot>;

export const RunState = z.enum(['starting', 'running', 'ended']);

export const RunSnapshot = z.object({
  run: z.string(),
  script: z.string(),
  args: z.array(z.string()),
  cwd: z.string(),
  python: z.string(),
  executors: z.array(z.string()),
  journalDir: z.string(),
  /** The driver's output (the script's stdout and stderr). */
  driverLog: z.string(),
  trackingUri: z.string().nullable(),
  state: RunState,
  startedAt: z.number(),
  endedAt: z.number().optional(),
  code: z.number().int().optional(),
  error: z.object({ code: z.string(), message: z.string() }).optional(),
  studies: z.array(StudySnapshot),
});
export type RunSnapshot = z.infer<typeof RunSnapshot>;

export const ServiceInfo = z.object({
  pid: z.number().int(),
  version: z.string(),
  protocol: z.number().int(),
  workspace: z.string(),
  startedAt: z.number(),
});
export type ServiceInfo = z.infer<typeof ServiceInfo>;

export const Snapshot = z.object({
  service: ServiceInfo,
  /** Active runs and the recently ended ones, oldest first. */
  runs: z.array(RunSnapshot),
});
export type Snapshot = z.infer<typeof Snapshot>;

export const TrackingInfo = z.object({
  /** The http URI views read runs from, or null when there is none. */
  uri: z.string().nullable(),
  /** `embedded` when the service supervises the server. */
  kind: z.enum(['remote', 'embedded', 'none']),
  /** Why there is no URI (mlflow missing, the server failed), in one sentence. */
  warning: z.string().optional(),
  /** The embedded server's API token, which its clients send as a bearer token (the service's clients are its user). */
  token: z.string().optional(),
});
export type TrackingInfo = z.infer<typeof TrackingInfo>;

// ---- client -> service ------------------------------------------------------------------------

const StudyTarget = { id: Id, study: StudyId };

export const HelloRequest = z.object({
  type: z.literal('hello'),
  id: Id,
  protocol: z.number().int(),
  token: z.string().min(1).max(200),
  /** Who connects, for the service's log (for example `vscode 1.139.1`). */
  client: Name.optional(),
});
export const RunRequest = z.object({ type: z.literal('run'), id: Id, spec: RunSpec });
/** No new trials; running ones finish. Without `study`, every study of `run`. */
export const StopRequest = z.object({ type: z.literal('stop'), id: Id, study: StudyId.optional(), run: Id.optional() });
/** Running trials are killed. Without `study`, every study of `run`. */
export const CancelRequest = z.object({ type: z.literal('cancel'), id: Id, study: StudyId.optional(), run: Id.optional() });
/** Study timeout in seconds from the study's start; null removes it. */
export const SetTimeoutRequest = z.object({ type: z.literal('setTimeout'), ...StudyTarget, seconds: Seconds.nullable() });
export const SetParallelismRequest = z.object({ type: z.literal('setParallelism'), ...StudyTarget, n: z.number().int().min(1).max(4096) });
export const SetPolicyRequest = z.object({
  type: z.literal('setPolicy'),
  ...StudyTarget,
  lossThreshold: z.number().nullable().optional(),
  noProgressTrials: z.number().int().min(1).nullable().optional(),
});
export const SnapshotRequest = z.object({ type: z.literal('snapshot'), id: Id });
/** Starts the stream of run messages; the reply carries the snapshot. */
export const SubscribeRequest = z.object({
  type: z.literal('subscribe'),
  id: Id,
  /** Also forward `trial.output` events (off by default: trial output goes to the trial logs). */
  trialOutput: z.boolean().optional(),
});
/** The tracking server views should read, started when it is the workspace's embedded one. */
export const TrackingRequest = z.object({ type: z.literal('tracking'), id: Id, trackingUri: z.string().max(4_096), python: Path });
/** Ends the service: runs are cancelled first. */
export const ShutdownRequest = z.object({ type: z.literal('shutdown'), id: Id });

// ---- questions the service asks the editor ------------------------------------------------------

/** The passphrase of an encrypted SSH key that no environment variable unlocks. */
export const SshPassphraseQuestion = z.object({
  kind: z.literal('sshPassphrase'),
  /** Absolute path of the private key file. */
  keyPath: Path,
  /** The host the key is meant to reach. */
  host: Name,
  /** The previous answer did not decrypt the key: this is the last try. */
  retry: z.boolean(),
});
/** A host whose key is not in known_hosts: trusting it records the key there. */
export const HostKeyQuestion = z.object({
  kind: z.literal('hostKey'),
  host: Name,
  /** The name the key would be recorded under (`host` or `[host]:port`). */
  hostKeyName: Name,
  keyType: z.string().max(100),
  /** OpenSSH's `SHA256:...` fingerprint. */
  fingerprint: z.string().max(200),
  /** The known_hosts file the key would be recorded in. */
  file: Path,
});
export const Question = z.discriminatedUnion('kind', [SshPassphraseQuestion, HostKeyQuestion]);
export type Question = z.infer<typeof Question>;

/** A null passphrase means the user declined (the key is skipped). */
export const SshPassphraseAnswer = z.object({ kind: z.literal('sshPassphrase'), passphrase: z.string().max(4_096).nullable() });
export const HostKeyAnswer = z.object({ kind: z.literal('hostKey'), trust: z.boolean() });
export const Answer = z.discriminatedUnion('kind', [SshPassphraseAnswer, HostKeyAnswer]);
export type Answer = z.infer<typeof Answer>;
/** The answer a question expects. */
export type AnswerTo<Q extends Question> = Extract<Answer, { kind: Q['kind'] }>;

/** The editor's answer to a `prompt` the service sent; replied to with `unknown_prompt` once it has closed. */
export const AnswerRequest = z.object({ type: z.literal('answer'), id: Id, prompt: Id, answer: Answer });

export const ClientToService = z.discriminatedUnion('type', [
  HelloRequest,
  RunRequest,
  StopRequest,
  CancelRequest,
  SetTimeoutRequest,
  SetParallelismRequest,
  SetPolicyRequest,
  SnapshotRequest,
  SubscribeRequest,
  TrackingRequest,
  ShutdownRequest,
  AnswerRequest,
]);
export type ClientToService = z.infer<typeof ClientToService>;
export type ClientRequestType = ClientToService['type'];

// ---- service -> client ------------------------------------------------------------------------

export const ControlError = z.object({ code: z.string().max(100), message: z.string().max(8_000) });
export type ControlError = z.infer<typeof ControlError>;

export const Reply = z.object({
  type: z.literal('reply'),
  id: Id,
  ok: z.boolean(),
  error: ControlError.optional(),
  /** hello */
  service: ServiceInfo.optional(),
  /** run: the new run's id */
  run: z.string().optional(),
  /** snapshot, subscribe */
  snapshot: Snapshot.optional(),
  /** tracking */
  tracking: TrackingInfo.optional(),
});
export type Reply = z.infer<typeof Reply>;

export const EventMessage = z.object({ type: z.literal('event'), run: z.string(), event: EngineEventSchema });
export const OutputMessage = z.object({ type: z.literal('output'), run: z.string(), stream: z.enum(['stdout', 'stderr']), text: z.string() });
export const RunStartedMessage = z.object({ type: z.literal('runStarted'), run: RunSnapshot });
export const RunEndedMessage = z.object({
  type: z.literal('runEnded'),
  run: z.string(),
  code: z.number().int(),
  error: ControlError.optional(),
});
/** Something about the service itself (the MLflow server restarted, the service is shutting down). */
export const ServiceNoticeMessage = z.object({ type: z.literal('serviceNotice'), level: z.enum(['info', 'warning', 'error']), text: z.string() });

/**
 * A question for the editor (an SSH key's passphrase, an unknown host key). The editor answers with
 * an `answer` request naming `prompt`; without an answer within `timeoutMs` the service gives up.
 */
export const PromptMessage = z.object({
  type: z.literal('prompt'),
  prompt: Id,
  /** The run that needs the answer. */
  run: z.string(),
  timeoutMs: z.number().int().positive(),
  question: Question,
});
/** The prompt needs no answer any more: it timed out, or its run was stopped or cancelled. */
export const PromptClosedMessage = z.object({ type: z.literal('promptClosed'), prompt: Id, reason: z.enum(['timeout', 'cancelled']) });

export const ServiceToClient = z.discriminatedUnion('type', [
  Reply,
  EventMessage,
  OutputMessage,
  RunStartedMessage,
  RunEndedMessage,
  ServiceNoticeMessage,
  PromptMessage,
  PromptClosedMessage,
]);
export type ServiceToClient = z.infer<typeof ServiceToClient>;
export type EventMessage = z.infer<typeof EventMessage>;
export type OutputMessage = z.infer<typeof OutputMessage>;
export type RunStartedMessage = z.infer<typeof RunStartedMessage>;
export type RunEndedMessage = z.infer<typeof RunEndedMessage>;
export type ServiceNoticeMessage = z.infer<typeof ServiceNoticeMessage>;
export type PromptMessage = z.infer<typeof PromptMessage>;
export type PromptClosedMessage = z.infer<typeof PromptClosedMessage>;

/** Error codes of the channel itself; a run's own failures carry the core's error codes. */
export type ControlErrorCode = 'unauthorized' | 'protocol_mismatch' | 'invalid_request' | 'unknown_study' | 'unknown_run' | 'not_running' | 'shutting_down' | 'unknown_prompt';

// ---- the service's record on disk ----------------------------------------------------------------

/** `.hyperopt-runner/service.json`, mode 0600: how a client finds and authenticates to the service. */
export const ServiceFile = z.object({
  pid: z.number().int(),
  port: z.number().int().min(1).max(65_535),
  token: z.string().min(16),
  version: z.string(),
  protocol: z.number().int(),
  startedAt: z.number(),
});
export type ServiceFile = z.infer<typeof ServiceFile>;
