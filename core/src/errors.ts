/**
 * Every failure the user can meet has a code; the one-line message for each code is written
 * here and nowhere else, so the CLI and the editor say the same thing.
 */
export type ErrorCode =
  | 'script_not_found'
  | 'script_not_python'
  | 'invalid_executor'
  | 'invalid_option'
  | 'interpreter_not_found'
  | 'interpreter_not_python'
  | 'interrupted'
  | 'worker_start_failed'
  | 'no_fmin_call'
  | 'driver_fatal'
  | 'study_not_found'
  | 'journal_corrupt'
  | 'journal_dir_not_folder'
  | 'journal_dir_not_writable'
  | 'journal_write_failed'
  | 'domain_load_failed'
  | 'resume_nothing_to_do'
  | 'hyperopt_missing'
  | 'fork_server_failed'
  | 'no_slots_left'
  | 'ssh_hosts_file'
  | 'ssh_config'
  | 'ssh_host_key_unknown'
  | 'ssh_host_key_changed'
  | 'ssh_host_key_revoked'
  | 'ssh_auth_failed'
  | 'ssh_connect_failed'
  | 'ssh_remote_python'
  | 'ssh_remote_failed'
  | 'ssh_no_host'
  | 'service_start_failed'
  | 'service_unreachable'
  | 'tracking_server_start_failed';

type Details = Record<string, string | number | undefined>;

const MESSAGES: Record<ErrorCode, (d: Details) => string> = {
  script_not_found: (d) => `script not found: ${d.path}; check the path (it is resolved from ${d.cwd})`,
  script_not_python: (d) => `${d.path} is not a Python script; pass a .py file`,
  invalid_executor: (d) =>
    `invalid --executor value '${d.value}': ${d.reason}; use local[:N] (N workers) or ssh:HOST[,HOST...]`,
  invalid_option: (d) => `invalid ${d.option} '${d.value}': ${d.reason}`,
  interpreter_not_found: (d) =>
    d.setting !== undefined
      ? `Python interpreter not found: ${d.python} (the ${d.setting} setting); set it to an existing interpreter, or clear it to use the Python extension's or the workspace's .venv`
      : d.surface === 'editor'
        ? `no Python interpreter found: none is selected in the Python extension, hyperoptRunner.python is not set, the workspace has no .venv and ${d.python} is not on PATH; select an interpreter or set hyperoptRunner.python`
        : `Python interpreter not found: ${d.python}; pass --python PATH or set HYPEROPT_RUNNER_PYTHON`,
  interpreter_not_python: (d) =>
    `${d.python} ${d.what}, so it is not a Python interpreter; pass --python PATH to a Python 3.10+ with hyperopt installed`,
  interrupted: () => 'interrupted before the script started, so nothing ran; run the command again to start it',
  worker_start_failed: (d) =>
    `a worker on ${d.slot} exited before it was ready (${d.exit})${d.stderr ? `: ${d.stderr}` : ''}; check that ${d.python} runs and has hyperopt installed`,
  no_fmin_call: (d) =>
    `${d.script} finished without calling hyperopt's fmin, so no study ran; run a script that calls fmin (hyperopt-runner finds calls made through any import alias)`,
  driver_fatal: (d) => `${d.message}`,
  study_not_found: (d) => `no study '${d.study}' in ${d.dir}; run \`hyperopt-runner studies\` to list them`,
  journal_corrupt: (d) => `the journal ${d.path} is unreadable (${d.reason}); it cannot be resumed`,
  journal_dir_not_folder: (d) =>
    `the journal directory ${d.path} ${d.file === d.path ? 'is a file' : `is inside the file ${d.file}`}; pass --journal-dir a folder`,
  journal_dir_not_writable: (d) =>
    `cannot write to the journal folder ${d.path} (${d.reason}), so no study could be kept or resumed; make it writable or pass --journal-dir a writable folder (the journal directory setting in the editor)`,
  journal_write_failed: (d) =>
    `could not write ${d.path} (${d.reason}), so the study was cancelled: the trials finished before that are in its journal and in fmin's result; free space or fix the folder, then ${d.study ? `\`hyperopt-runner resume ${d.study}\`` : '`hyperopt-runner resume STUDY-ID` (`hyperopt-runner studies` lists them)'} continues it`,
  domain_load_failed: (d) =>
    `no worker could load the objective (${d.error}); make sure the modules it imports are installed for ${d.python}`,
  no_slots_left: (d) =>
    `every slot of ${d.executors} was retired, so no trial can run; check the hosts with \`hyperopt-runner hosts check\` or add --executor local`,
  hyperopt_missing: (d) =>
    d.message !== undefined
      ? `${d.message}` // the interpreter's own one-line account (the fork server's check)
      : `${d.what} in ${d.python}; install it with: ${d.python} -m pip install 'hyperopt>=0.2.7' cloudpickle`,
  fork_server_failed: (d) =>
    `the Python fork server of ${d.python} ${d.what}${d.stderr ? `: ${d.stderr}` : ''}; set HYPEROPT_RUNNER_FORK=0 to start every Python process on its own`,
  resume_nothing_to_do: (d) => `study ${d.study} already ended (${d.reason}); nothing to resume`,
  ssh_hosts_file: (d) => `invalid hosts file ${d.path}: ${d.reason}`,
  ssh_config: (d) => `cannot use the SSH config ${d.path}: ${d.reason}`,
  ssh_host_key_unknown: (d) =>
    `${d.host}: unknown host key ${d.type} ${d.fingerprint}; check it with the host's owner, then ${d.how ?? `pass --accept-new-host-keys to record it in ${d.file}`}`,
  ssh_host_key_changed: (d) =>
    `${d.host}: HOST KEY CHANGED: it presented ${d.type} ${d.fingerprint}, which does not match ${d.expected}; refusing to connect (if the change is expected, remove the old key with: ssh-keygen -R '${d.name}' -f ${d.file})`,
  ssh_host_key_revoked: (d) => `${d.host}: the host key ${d.type} ${d.fingerprint} is marked @revoked in ${d.expected}; refusing to connect`,
  ssh_auth_failed: (d) =>
    `${d.host}: authentication failed for user ${d.user} (tried: ${d.tried}); load the key into ssh-agent or name it with IdentityFile in the SSH config or "identityFile" in the hosts file`,
  ssh_connect_failed: (d) => `${d.host}: cannot connect to ${d.address}: ${d.reason}`,
  ssh_remote_python: (d) =>
    `${d.host}: ${d.what} (interpreter: ${d.python}); install 'hyperopt>=0.2.7' and cloudpickle for it, or set "python" for this host in the hosts file`,
  ssh_remote_failed: (d) => `${d.host}: ${d.what}: ${d.reason}`,
  ssh_no_host: (d) => `no SSH host could start: ${d.errors}`,
  service_start_failed: (d) =>
    `the background service did not start within ${d.seconds} s${d.why ? ` (${d.why})` : ''}; see ${d.log}`,
  service_unreachable: (d) => `cannot reach the background service on port ${d.port}: ${d.reason}`,
  tracking_server_start_failed: (d) =>
    `the workspace's tracking server did not start (${d.why}); see ${d.log}, or run with --no-tracking`,
};

export class RunnerError extends Error {
  constructor(
    readonly code: ErrorCode,
    readonly details: Details = {},
  ) {
    super(MESSAGES[code](details));
    this.name = 'RunnerError';
  }
}

/** The one-line text shown for any error; unknown errors keep their own message. */
export function messageOf(error: unknown): string {
  if (error instanceof RunnerError) return error.message;
  if (error instanceof Error) return error.message.split('\n')[0] ?? error.name;
  return String(error);
}

/** Raised by executors when the infrastructure (not the objective) failed: the trial is re-queued. */
export class InfrastructureError extends Error {
  constructor(
    message: string,
    readonly slot: string,
  ) {
    super(message);
    this.name = 'InfrastructureError';
  }
}
