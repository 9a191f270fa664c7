/** `hyperopt-runner hosts check [HOST...]`: can each SSH host run trials for this driver? */
import { messageOf, RunnerError } from '../../core/src/errors';
import { checkHosts, driverVersions, findHostsFile, sshConfigFor, terminalPassphrase, type HostCheck } from '../../executors/src/ssh';
import { parseFlags, resolvePython } from './options';

const HOSTS_FLAGS = [
  { name: 'hosts-file', takesValue: true },
  { name: 'accept-new-host-keys', takesValue: false },
  { name: 'python', takesValue: true },
  { name: 'json', takesValue: false },
] as const;

function ms(value: number | undefined): string {
  if (value === undefined) return '-';
  return value < 10 ? `${value.toFixed(1)} ms` : `${Math.round(value)} ms`;
}

/** The report for one host, as lines of text. */
export function formatCheck(check: HostCheck): string[] {
  const address = check.address?.replace(/^.*\((.*)\)$/, '$1');
  const lines = [`${check.host}${address && address !== check.host ? `  ${address}` : ''}`];
  const row = (label: string, value: string): void => {
    lines.push(`  ${label.padEnd(14)} ${value}`);
  };
  row('reachable', check.reachable ? `yes${check.connectMs !== undefined ? `, connected in ${ms(check.connectMs)}` : ''}` : 'no');
  row('authenticated', check.authenticated ? `yes (${check.auth ?? 'unknown method'})` : 'no');
  if (check.hostKey) row('host key', `${check.hostKey.type} ${check.hostKey.fingerprint} (${check.hostKey.source})`);
  if (check.python) {
    const python = check.versions.find((v) => v.name === 'python');
    row('interpreter', `${check.python.command}${check.python.executable !== check.python.command ? ` -> ${check.python.executable}` : ''}, Python ${check.python.version}${python?.local ? ` (driver ${python.local})` : ''}`);
    for (const finding of check.versions) {
      if (finding.name === 'python') continue;
      const local = finding.local ? ` (driver ${finding.local})` : '';
      const mark = finding.level === 'ok' ? '' : `  ${finding.level}: ${finding.note ?? ''}`;
      row(finding.name, `${finding.remote ?? 'not installed'}${local}${mark}`);
    }
  }
  if (check.slots !== undefined) {
    const envs = (check.slotEnvs ?? []).map((env) => Object.entries(env).map(([k, v]) => `${k}=${v}`).join(' '));
    const shown = envs.some((e) => e.length > 0) ? ` (${envs.map((e) => e || '-').join(' | ')})` : '';
    row('slots', `${check.slots}${shown}`);
  }
  if (check.rttMs !== undefined) row('round trip', ms(check.rttMs));
  for (const error of check.errors) lines.push(`  error: ${error}`);
  for (const warning of check.warnings) lines.push(`  warning: ${warning}`);
  lines.push(`  => ${check.errors.length > 0 ? 'NOT READY' : check.warnings.length > 0 ? 'ready, with warnings' : 'ready'}`);
  return lines;
}

export async function hostsCommand(argv: readonly string[], env: NodeJS.ProcessEnv, cwd: string): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== 'check') {
    throw new RunnerError('invalid_option', { option: 'hosts', value: sub ?? '', reason: 'use: hyperopt-runner hosts check [HOST...] [--hosts-file FILE]' });
  }
  const { values, positionals } = parseFlags(rest, HOSTS_FLAGS);
  const hostsFile = findHostsFile(values.get('hosts-file')?.[0], env, cwd);
  const names = positionals.length > 0 ? positionals : Object.keys(hostsFile.hosts);
  if (names.length === 0) {
    throw new RunnerError('invalid_option', { option: 'hosts check', value: '', reason: 'name the hosts to check, or list them in a hosts file (--hosts-file)' });
  }
  let python: string | undefined;
  try {
    python = resolvePython(values.get('python')?.[0], env, cwd);
  } catch (error) {
    process.stderr.write(`hyperopt-runner: warning: ${messageOf(error)}; versions are not compared with the driver's\n`);
  }
  const driver = python ? await driverVersions(python) : undefined;
  const checks = await checkHosts(names, {
    hostsFile,
    sshConfig: sshConfigFor(hostsFile, env),
    env,
    acceptNewHostKeys: values.has('accept-new-host-keys'),
    passphrase: terminalPassphrase,
    onHostKeyRecorded: (text) => process.stderr.write(`hyperopt-runner: ${text}\n`),
    ...(driver ? { driver } : {}),
  });
  if (values.has('json')) {
    process.stdout.write(JSON.stringify(checks, null, 2) + '\n');
  } else {
    process.stdout.write(checks.map((check) => formatCheck(check).join('\n')).join('\n\n') + '\n');
  }
  return checks.some((check) => check.errors.length > 0) ? 1 : 0;
}
