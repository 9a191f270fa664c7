/** hyperopt-runner: run Hyperopt scripts with trials in parallel, from a terminal. */
import { messageOf, RunnerError } from '../../core/src/errors';
import { hostsCommand } from './hostsCommand';
import { parseRunOptions } from './options';
import { runScript } from './runCommand';
import { serveCommand } from './serveCommand';
import { resumeCommand, studiesCommand } from './studiesCommand';
import { runsCommand } from './runsCommand';
import { syncCommand } from './syncCommand';
import { trackingCommand, trackingServerCommand } from './trackingCommand';

const USAGE = `usage:
  hyperopt-runner run SCRIPT.py [--executor local:N]... [--timeout S] [--trial-timeout S]
                      [--parallelism N] [--summary-json FILE] [--python PATH] [--journal-dir DIR]
                      [--tracking-uri URI | --no-tracking] [--quiet] [-- SCRIPT ARGS...]
  hyperopt-runner resume STUDY-ID|JOURNAL [--python PATH] [--executor ...] [--journal-dir DIR]
                      [--hosts-file FILE] [--accept-new-host-keys]
  hyperopt-runner studies [--journal-dir DIR] [--json]
  hyperopt-runner runs [--experiment NAME] [--study ID] [--json] [--tracking-uri URI]
  hyperopt-runner sync [STUDY-ID...] [--journal-dir DIR] [--tracking-uri URI]
  hyperopt-runner tracking [status|stop|ui|env] [--json]   the workspace's MLflow tracking server (it outlives runs);
                      ui prints a one-time browser link to it, env the variables other MLflow clients need
  hyperopt-runner serve [--workspace DIR] [--idle-timeout S]   (the editor's background service)
  hyperopt-runner hosts check [HOST...] [--hosts-file FILE] [--accept-new-host-keys] [--python PATH] [--json]

SSH hosts: --executor ssh:HOST[,HOST...] with --hosts-file FILE (per-host python, slots, env) and
--accept-new-host-keys (record keys of hosts not yet in known_hosts); see docs/ssh.md.

Ctrl+C once stops a study (running trials finish), twice cancels it (running trials are killed),
a third time ends the script.`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const cwd = process.cwd();
  switch (command) {
    case 'run':
      return runScript({ ...parseRunOptions(rest, process.env, cwd), cwd });
    case 'resume':
      return resumeCommand(rest, process.env, cwd);
    case 'studies':
      return studiesCommand(rest, process.env, cwd);
    case 'runs':
      return runsCommand(rest, process.env, cwd);
    case 'sync':
      return syncCommand(rest, process.env, cwd);
    case 'hosts':
      return hostsCommand(rest, process.env, cwd);
    case 'serve':
      return serveCommand(rest, cwd);
    case 'tracking':
      return trackingCommand(rest, cwd);
    case 'tracking-server':
      return trackingServerCommand(rest, cwd);
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(USAGE + '\n');
      return command === undefined ? 2 : 0;
    default:
      throw new RunnerError('invalid_option', { option: 'command', value: command, reason: 'use run, resume, studies, runs, sync, hosts, tracking or serve' });
  }
}

main(process.argv.slice(2)).then(
  // Once stdout is written out: a pipe takes writes asynchronously, and exiting earlier cuts a
  // long `runs --json` short.
  (code) => process.stdout.write('', () => process.exit(code)),
  (error: unknown) => {
    process.stderr.write(`hyperopt-runner: error: ${messageOf(error)}\n`);
    if (!(error instanceof RunnerError) && process.env.HYPEROPT_RUNNER_DEBUG) console.error(error);
    process.exit(2);
  },
);
