// The SSH executor against real OpenSSH servers on loopback (see fixture.ts): slots, uploads,
// process groups, lost hosts, host keys, authentication, remote interpreters, quoting, forwards.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { InfrastructureError, messageOf, RunnerError } from '../../core/src/errors';
import type { ExecutorEvents, Slot, SlotOutcome } from '../../core/src/executor';
import { checkHost, driverVersions, readHostsFile, SshConfig, SshExecutor, type SshExecutorOptions } from '../../executors/src/ssh';
import { fixturePids, processTable, PYTHON, startSshFixture, waitFor, type SshFixture } from './fixture';

let fx: SshFixture;

before(async () => {
  fx = await startSshFixture(4);
  domain('quick', 0.5);
});

after(async () => {
  await fx?.stop();
});

let domains: Record<string, { domain: string; specs: Record<string, string> }> | undefined;
/** A pickled domain and one point; every kind is pickled once, in one Python process. */
function domain(name: string, point: number): { domain: string; spec: string } {
  domains ??= JSON.parse(execFileSync(PYTHON, [join(__dirname, 'fixtures', 'domains.py')], { encoding: 'utf8' })) as typeof domains;
  const kind = domains![name]!;
  const key = Number.isInteger(point) ? `${point}.0` : String(point);
  const spec = kind.specs[key];
  if (!spec) throw new Error(`no pickled point ${key} for ${name}`);
  return { domain: kind.domain, spec };
}

interface Recorder extends ExecutorEvents {
  readonly notices: string[];
  slotChanges: number;
}

function recorder(): Recorder {
  const r: Recorder = {
    notices: [],
    slotChanges: 0,
    slotsChanged: () => {
      r.slotChanges += 1;
    },
    notice: (text) => {
      r.notices.push(text);
    },
  };
  return r;
}

function executor(hosts: string[], hostsFile: string, extra: Partial<SshExecutorOptions> = {}): SshExecutor {
  return new SshExecutor({ hosts, hostsFile: readHostsFile(hostsFile), env: fx.env, killGraceMs: 500, ...extra });
}

async function started(hosts: string[], hostsFile: string, extra: Partial<SshExecutorOptions> = {}): Promise<{ ex: SshExecutor; events: Recorder }> {
  const ex = executor(hosts, hostsFile, extra);
  const events = recorder();
  await ex.start(events, new AbortController().signal);
  return { ex, events };
}

async function startError(hosts: string[], hostsFile: string, extra: Partial<SshExecutorOptions> = {}): Promise<RunnerError> {
  const ex = executor(hosts, hostsFile, extra);
  try {
    await ex.start(recorder(), new AbortController().signal);
  } catch (error) {
    assert.ok(error instanceof RunnerError, `a RunnerError, not ${String(error)}`);
    assert.equal(error.message.includes('\n'), false, 'one line');
    return error;
  } finally {
    await ex.close();
  }
  assert.fail('start should have failed');
}

function run(
  slot: Slot,
  name: string,
  tid: number,
  point: number,
  extra: { env?: Record<string, string>; output?: string[]; onOutput?: (text: string) => void; signal?: AbortSignal } = {},
): Promise<SlotOutcome> {
  const { domain: d, spec } = domain(name, point);
  const onOutput = (text: string): void => {
    extra.output?.push(text);
    extra.onOutput?.(text);
  };
  return slot.run(
    { study: `study-${name}`, tid, spec, domain: d, ...(extra.env ? { env: extra.env } : {}), onOutput },
    extra.signal ?? new AbortController().signal,
  );
}

test('three hosts x two slots: every slot evaluates on its host; upload once per version; close leaves nothing behind', async (t) => {
  const hostsFile = fx.writeHostsFile();
  const { ex, events } = await started(['h1', 'h2', 'h3'], hostsFile, { codeDir: join(__dirname, 'fixtures') });
  try {
    assert.deepEqual(ex.slots.map((s) => s.id), ['h1/0', 'h1/1', 'h2/0', 'h2/1', 'h3/0', 'h3/1']);
    assert.ok(ex.slots.every((s) => s.usable));
    assert.equal(ex.workerInfo.length, 6);
    assert.ok(ex.hosts().every((h) => h.runtimeUploaded === true && h.state === 'ready'), JSON.stringify(ex.hosts()));
    for (const host of ex.hosts()) t.diagnostic(`${host.host}: connect ${host.connectMs?.toFixed(0)} ms, prepare ${host.prepareMs?.toFixed(0)} ms, ready ${host.readyMs?.toFixed(0)} ms`);
    const outcomes = await Promise.all(
      ex.slots.map(async (slot, i) => {
        const output: string[] = [];
        const outcome = await run(slot, 'quick', i, 0.5, { output });
        return { slot: slot.id, outcome, output: output.join('') };
      }),
    );
    for (const { slot, outcome, output } of outcomes) {
      assert.equal(outcome.kind, 'result');
      if (outcome.kind !== 'result') continue;
      assert.deepEqual(outcome.result.summary, { status: 'ok', loss: 0.0625 });
      assert.equal(output, `evaluating 0.5 on ${slot}\n`, 'output attributed to its trial, from its own slot');
    }
    // The script's folder was shipped for this run.
    const runDir = ex.hosts()[0]!.runDir!;
    assert.ok(existsSync(join(runDir, 'domains.py')));
    for (const host of fx.hosts.slice(0, 3)) assert.equal(fx.workerPids(host.name).length, 2, `${host.name} runs its two workers`);
    assert.equal(events.notices.length, 0, events.notices.join('\n'));
  } finally {
    await ex.close();
  }
  assert.deepEqual(fixturePids(fx), [], 'no worker left on any host');
  assert.equal(existsSync(ex.hosts()[0]!.runDir!), false, "the run's folder is removed");

  // A second run finds the runtime in the cache: nothing is uploaded again.
  const marker = join(ex.hosts()[0]!.runtimeDir!, '.complete');
  const before = statSync(marker);
  const second = await started(['h1', 'h2', 'h3'], hostsFile);
  try {
    assert.ok(second.ex.hosts().every((h) => h.runtimeUploaded === false), JSON.stringify(second.ex.hosts()));
    assert.equal(statSync(marker).mtimeMs, before.mtimeMs);
    assert.equal(readdirSync(join(fx.host('h1').cacheDir, 'runtime')).length, 1, 'one version folder, no leftovers');
    const outcome = await run(second.ex.slots[0]!, 'quick', 1, 0.25);
    assert.equal(outcome.kind === 'result' && outcome.result.summary?.loss, 0);
  } finally {
    await second.ex.close();
  }
  assert.deepEqual(fixturePids(fx), []);
});

test('dispatch overhead per trial over SSH (reported, not asserted)', async (t) => {
  const { ex } = await started(['h1'], fx.writeHostsFile({ defaults: { slots: 1 } }));
  try {
    const slot = ex.slots[0]!;
    await run(slot, 'quick', 0, 0.5);
    const n = 40;
    let inside = 0;
    const t0 = performance.now();
    for (let i = 1; i <= n; i++) {
      const outcome = await run(slot, 'quick', i, 0.5);
      assert.equal(outcome.kind, 'result');
      if (outcome.kind === 'result') inside += outcome.result.endedAt - outcome.result.startedAt;
    }
    const total = performance.now() - t0;
    t.diagnostic(`dispatch overhead per trial over SSH: ${((total - inside) / n).toFixed(2)} ms (round trip of evaluate/result on a warm worker, ${n} trials)`);
  } finally {
    await ex.close();
  }
});

test('the debug hook gets one timing line per host once they are ready, and one when the executor has closed', async () => {
  const lines: string[] = [];
  const { ex } = await started(['h1', 'h4'], fx.writeHostsFile(), { debug: (text) => lines.push(text) });
  await ex.close();
  const hosts = lines.filter((l) => l.startsWith('ssh host ')).map((l) => JSON.parse(l.slice('ssh host '.length)) as Record<string, unknown>);
  assert.deepEqual(hosts.map((h) => h.host), ['h1', 'h4']);
  for (const host of hosts) {
    for (const key of ['startedAtMs', 'connectMs', 'prepareMs', 'readyMs']) assert.equal(typeof host[key], 'number', `${key} in ${JSON.stringify(host)}`);
    assert.ok((host.readyMs as number) >= (host.connectMs as number) + (host.prepareMs as number), JSON.stringify(host));
    assert.equal(typeof host.runtimeUploaded, 'boolean');
  }
  const closed = lines.filter((l) => l.startsWith('ssh closed '));
  assert.equal(closed.length, 1, lines.join('\n'));
  assert.equal((JSON.parse(closed[0]!.slice('ssh closed '.length)) as { hosts: number }).hosts, 2);
  assert.equal(lines.length, 3, lines.join('\n'));
  assert.deepEqual(fixturePids(fx), []);
});

test('aborting a trial kills its process group on the host, grandchildren included, and the slot recovers', async () => {
  const { ex } = await started(['h1'], fx.writeHostsFile({ defaults: { slots: 1 } }));
  try {
    const slot = ex.slots[0]!;
    const abort = new AbortController();
    let pids: number[] = [];
    const output: string[] = [];
    const running = run(slot, 'sleeper', 7, 0.5, {
      signal: abort.signal,
      output,
      onOutput: () => {
        const match = /grandchild (\d+) (\d+)/.exec(output.join(''));
        if (match && pids.length === 0) {
          pids = [Number(match[1]), Number(match[2])];
          abort.abort();
        }
      },
    });
    const outcome = await running;
    assert.equal(outcome.kind, 'aborted');
    assert.equal(pids.length, 2);
    const live = (): number[] => processTable().filter((p) => pids.includes(p.pid) && !p.zombie).map((p) => p.pid);
    await waitFor(() => live().length === 0, 3000, 'the worker and its grandchild to die');
    // A fresh worker takes the next trial.
    const next = await run(slot, 'quick', 8, 0.25);
    assert.equal(next.kind === 'result' && next.result.summary?.loss, 0);
  } finally {
    await ex.close();
  }
  assert.deepEqual(fixturePids(fx), []);
});

test('a host lost mid-trial: the trial is handed back (InfrastructureError), the host reconnects and rejoins, and is retired when it stays away', async () => {
  const hostsFile = fx.writeHostsFile({ reconnect: { initialDelayMs: 300, maxDelayMs: 600, maxFailures: 6 } });
  const { ex, events } = await started(['h3', 'h4'], hostsFile);
  try {
    const h4 = ex.slots.filter((s) => s.host === 'h4');
    const running = run(h4[0]!, 'nap', 1, 30);
    await waitFor(() => fx.workerPids('h4').length === 2, 5000, 'workers on h4');
    await new Promise((resolve) => setTimeout(resolve, 300));
    fx.killHost('h4');
    await assert.rejects(running, (error: unknown) => error instanceof InfrastructureError && error.slot === 'h4/0');
    assert.ok(h4.every((s) => !s.usable), 'h4 slots unusable while it is away');
    assert.ok(events.slotChanges >= 1);
    assert.ok(events.notices.some((n) => /h4: connection lost/.test(n)), events.notices.join('\n'));
    await fx.restartHost('h4');
    // The other host goes on meanwhile.
    const other = await run(ex.slots[0]!, 'quick', 2, 0.25);
    assert.equal(other.kind, 'result');
    await waitFor(() => h4.every((s) => s.usable), 10_000, 'h4 to rejoin');
    assert.ok(events.notices.some((n) => /h4: reconnected/.test(n)), events.notices.join('\n'));
    const again = await run(h4[1]!, 'quick', 3, 0.25);
    assert.equal(again.kind === 'result' && again.result.summary?.loss, 0);

    // Gone for good: a few failed attempts, then one notice and no more slots.
    fx.killHost('h4');
    await waitFor(() => ex.hosts().find((h) => h.host === 'h4')?.state === 'retired', 15_000, 'h4 retired');
    const retired = events.notices.filter((n) => /h4 retired/.test(n));
    assert.equal(retired.length, 1, events.notices.join('\n'));
    assert.match(retired[0]!, /failed attempts to reach it \(last: .*refused/);
    assert.ok(h4.every((s) => !s.usable));
    assert.ok(ex.slots.filter((s) => s.host === 'h3').every((s) => s.usable));
  } finally {
    await ex.close();
    await fx.restartHost('h4');
  }
  assert.deepEqual(fixturePids(fx), []);
});

test('a host that is down at the start: the others start, it is named in a notice, and it joins when it comes up', async () => {
  fx.killHost('h4');
  const { ex, events } = await started(['h1', 'h4'], fx.writeHostsFile({ defaults: { slots: 1 }, reconnect: { initialDelayMs: 300, maxDelayMs: 500, maxFailures: 20 } }));
  try {
    assert.deepEqual(ex.slots.map((s) => `${s.id}:${s.usable}`), ['h1/0:true', 'h4/0:false']);
    assert.ok(events.notices.some((n) => /^h4: cannot connect to 127\.0\.0\.5:\d+: connection refused/.test(n)), events.notices.join('\n'));
    await fx.restartHost('h4');
    await waitFor(() => ex.slots[1]!.usable, 10_000, 'h4 to join');
    const outcome = await run(ex.slots[1]!, 'quick', 1, 0.25);
    assert.equal(outcome.kind === 'result' && outcome.result.summary?.loss, 0);
  } finally {
    await ex.close();
    await fx.restartHost('h4');
  }
  assert.deepEqual(fixturePids(fx), []);
});

test('unknown host keys are refused with the fingerprint and the flag; accepting records them; a changed key is always refused', async () => {
  const knownHosts = join(fx.root, 'known_hosts_partial');
  const h1 = fx.host('h1');
  const others = readFileSync(fx.knownHosts, 'utf8').split('\n').filter((l) => !l.startsWith(`[${h1.address}]`));
  writeFileSync(knownHosts, others.join('\n'));
  const config = join(fx.root, 'ssh_config_partial');
  writeFileSync(config, readFileSync(fx.sshConfig, 'utf8').replace(fx.knownHosts, knownHosts));
  const hostsFile = fx.writeHostsFile();
  const sshConfig = SshConfig.file(config);
  const print = execFileSync('ssh-keygen', ['-l', '-f', join(h1.dir, 'ssh_host_ed25519_key.pub')], { encoding: 'utf8' }).split(' ')[1]!;

  const unknown = await startError(['h1'], hostsFile, { sshConfig });
  assert.equal(unknown.code, 'ssh_host_key_unknown');
  assert.match(unknown.message, /^h1 \(root@127\.0\.0\.2:\d+\): unknown host key ssh-ed25519 /);
  assert.ok(unknown.message.includes(print), `${unknown.message} names ${print}`);
  assert.match(unknown.message, /--accept-new-host-keys/);

  const recorded: string[] = [];
  const { ex } = await started(['h1'], hostsFile, { sshConfig, acceptNewHostKeys: true, onHostKeyRecorded: (text) => recorded.push(text) });
  await ex.close();
  assert.equal(recorded.length, 1);
  assert.ok(readFileSync(knownHosts, 'utf8').includes(`[${h1.address}]:${h1.port} ${h1.hostKey}`));
  // Known now: no flag needed.
  const again = await started(['h1'], hostsFile, { sshConfig });
  await again.ex.close();

  // The host's key changes (a new machine, or someone in between): refused, flag or not.
  const forged = join(fx.root, 'forged_key');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', forged]);
  const forgedPub = readFileSync(`${forged}.pub`, 'utf8').trim().split(' ').slice(0, 2).join(' ');
  writeFileSync(knownHosts, readFileSync(knownHosts, 'utf8').replace(h1.hostKey, forgedPub));
  for (const acceptNewHostKeys of [false, true]) {
    const changed = await startError(['h1'], hostsFile, { sshConfig, acceptNewHostKeys });
    assert.equal(changed.code, 'ssh_host_key_changed');
    assert.match(changed.message, /HOST KEY CHANGED/);
    assert.ok(changed.message.includes(print) && changed.message.includes(knownHosts));
  }
  assert.ok(!readFileSync(knownHosts, 'utf8').includes(h1.hostKey), 'a changed key is never recorded');
});

test('wrong key, refused connection, missing interpreter, interpreter without hyperopt: one-line errors naming the host and the cause', async () => {
  const wrongKey = join(fx.root, 'wrong_key');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', wrongKey]);
  const auth = await startError(['h1'], fx.writeHostsFile(), {
    sshConfig: SshConfig.file(writeAltConfig('ssh_config_wrongkey', (text) => text.replace(`IdentityFile ${fx.clientKey}`, `IdentityFile ${wrongKey}`))),
  });
  assert.equal(auth.code, 'ssh_auth_failed');
  assert.match(auth.message, /^h1 \(root@127\.0\.0\.2:\d+\): authentication failed for user root \(tried: .*wrong_key\)/);

  // An encrypted key whose passphrase is not given is skipped with the reason.
  const locked = join(fx.root, 'locked_key');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'sesame', '-f', locked]);
  const lockedConfig = writeAltConfig('ssh_config_locked', (text) => text.replace(`IdentityFile ${fx.clientKey}`, `IdentityFile ${locked}`));
  const noPassphrase = await startError(['h1'], fx.writeHostsFile(), { sshConfig: SshConfig.file(lockedConfig) });
  assert.match(noPassphrase.message, /locked_key \(encrypted; no passphrase in HYPEROPT_RUNNER_SSH_PASSPHRASE\)/);
  // With the passphrase in the host's variable, and the key authorized, it works.
  writeFileSync(join(fx.root, 'authorized_keys'), readFileSync(`${fx.clientKey}.pub`, 'utf8') + readFileSync(`${locked}.pub`, 'utf8'));
  const unlocked = await started(['h1'], fx.writeHostsFile({ hosts: { h1: { passphraseEnv: 'H1_PASSPHRASE' } } }), {
    sshConfig: SshConfig.file(lockedConfig),
    env: { ...fx.env, H1_PASSPHRASE: 'sesame' },
  });
  await unlocked.ex.close();

  const refused = await startError(['nobody@127.0.0.9:1'], fx.writeHostsFile());
  assert.equal(refused.code, 'ssh_connect_failed');
  assert.equal(refused.message, 'nobody@127.0.0.9:1: cannot connect to 127.0.0.9:1: connection refused (no SSH server listening on that port?)');

  const missing = await startError(['h2'], fx.writeHostsFile({ hosts: { h2: { python: '/nonexistent/bin/python3' } } }));
  assert.equal(missing.code, 'ssh_remote_python');
  assert.match(missing.message, /^h2 \(root@127\.0\.0\.3:\d+\): the interpreter was not found or cannot run .*\(interpreter: \/nonexistent\/bin\/python3\)/);

  // The system interpreter has no hyperopt.
  const system = '/usr/bin/python3';
  const hasHyperopt = execFileSync(system, ['-c', 'import importlib.util; print(importlib.util.find_spec("hyperopt") is not None)'], { encoding: 'utf8' }).trim();
  assert.equal(hasHyperopt, 'False', `${system} must lack hyperopt for this test`);
  const bare = await startError(['h2'], fx.writeHostsFile({ hosts: { h2: { python: system } } }));
  assert.equal(bare.code, 'ssh_remote_python');
  assert.match(bare.message, /^h2 \(root@127\.0\.0\.3:\d+\): hyperopt is not installed \(interpreter: \/usr\/bin\/python3\)/);

  // Several hosts failing: one line, every host named; a healthy host among them keeps the executor up.
  const several = await startError(['h1', 'h2'], fx.writeHostsFile({ defaults: { python: system } }));
  assert.equal(several.code, 'ssh_no_host');
  assert.match(several.message, /h1 .*hyperopt is not installed.*; h2 .*hyperopt is not installed/);
  const mixed = await started(['h1', 'h2'], fx.writeHostsFile({ hosts: { h2: { python: system } } }));
  try {
    assert.ok(mixed.events.notices.some((n) => /^h2 .*hyperopt is not installed/.test(n)), mixed.events.notices.join('\n'));
    assert.deepEqual(mixed.ex.slots.filter((s) => s.usable).map((s) => s.host), ['h1', 'h1']);
  } finally {
    await mixed.ex.close();
  }
  assert.deepEqual(fixturePids(fx), []);
});

function writeAltConfig(name: string, edit: (text: string) => string): string {
  const path = join(fx.root, name);
  writeFileSync(path, edit(readFileSync(fx.sshConfig, 'utf8')));
  return path;
}

test('hostile values in the hosts file (environment, working directory, cache folder) reach the worker unchanged and run nothing', async () => {
  const canary = join(fx.root, 'canary');
  const hostile = `it's "q" ; touch ${canary}; $(touch ${canary}) \`touch ${canary}\` $HOME\nnext line \\ end`;
  const workdir = join(fx.root, `work dir 'q' $(touch ${canary}) ;`);
  mkdirSync(workdir, { recursive: true });
  const cacheDir = join(fx.host('h1').cacheDir, `odd 'cache' $(touch ${canary}) dir`);
  const hostsFile = fx.writeHostsFile({
    hosts: {
      h1: {
        cacheDir,
        workdir,
        slots: 1,
        env: { HOSTILE: hostile },
        slotEnv: [{ SLOT_VALUE: `slot ;'${hostile}` }],
      },
    },
  });
  const { ex } = await started(['h1'], hostsFile);
  try {
    const output: string[] = [];
    const outcome = await run(ex.slots[0]!, 'env_echo', 1, 0.5, { output, env: { TRIAL_VALUE: `trial ${hostile}` } });
    assert.equal(outcome.kind, 'result');
    const seen = JSON.parse(output.join('').trim()) as { env: Record<string, string>; cwd: string };
    assert.deepEqual(seen.env, { HOSTILE: hostile, SLOT_VALUE: `slot ;'${hostile}`, TRIAL_VALUE: `trial ${hostile}` });
    assert.equal(seen.cwd, workdir);
    assert.ok(ex.hosts()[0]!.runtimeDir!.startsWith(cacheDir));
  } finally {
    await ex.close();
  }
  assert.equal(existsSync(canary), false, 'nothing ran');
  assert.deepEqual(fixturePids(fx), []);
});

test('a reverse port forward lets remote trials reach a server on this machine\'s loopback; loopback URLs in the trial environment are pointed at it', async () => {
  let requests = 0;
  const server: Server = createServer((request, response) => {
    requests += 1;
    response.end('0.125');
  });
  const paths: string[] = [];
  const tracker: Server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString()));
    request.on('end', () => {
      paths.push(`${request.method} ${request.url} ${body} auth=${request.headers.authorization ?? '-'}`);
      response.setHeader('content-type', 'application/json');
      response.end('{}');
    });
  });
  await new Promise<void>((resolve) => tracker.listen(0, '127.0.0.1', resolve));
  const trackerPort = (tracker.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const localPort = (server.address() as { port: number }).port;
  const { ex } = await started(['h2', 'h3'], fx.writeHostsFile({ defaults: { slots: 1 } }), {
    reverseForwards: [{ localHost: '127.0.0.1', localPort }],
  });
  try {
    const ports = ['h2', 'h3'].map((h) => ex.forwardedPort(h, '127.0.0.1', localPort));
    assert.ok(ports.every((p) => typeof p === 'number' && p > 0 && p !== localPort), JSON.stringify(ports));
    for (const [i, slot] of ex.slots.entries()) {
      const output: string[] = [];
      const outcome = await run(slot, 'fetch', i, 0.5, { output, env: { HR_TEST_URL: `http://localhost:${localPort}/value` } });
      assert.equal(outcome.kind === 'result' && outcome.result.summary?.loss, 0.125, output.join(''));
      assert.ok(output.join('').includes(`http://127.0.0.1:${ports[i]}/value`), output.join(''));
    }
    assert.equal(requests, 2);
    // A tracking server on this machine's loopback: an objective's own mlflow calls reach it
    // through a forward opened on first use, in the trial's child run that the coordinator made.
    const childRun = { runId: 'a9'.repeat(16), experimentId: '1', runName: 'trial 9', userId: 'unknown', startTime: Date.now(), artifactUri: '', lifecycleStage: 'active', status: 'RUNNING', tags: {} };
    const tracked = await ex.slots[0]!.run(
      { study: 'study-logged', tid: 9, ...domain('logged', 0.25), tracking: { uri: `http://localhost:${trackerPort}`, run: Promise.resolve(childRun) } },
      new AbortController().signal,
    );
    assert.equal(tracked.kind === 'result' && tracked.result.outcome, 'ok', JSON.stringify(tracked));
    assert.ok(paths.some((p) => p.startsWith('POST /api/2.0/mlflow/runs/log-metric') && p.includes(childRun.runId) && p.includes('"custom"')), paths.join('\n'));
    assert.deepEqual(tracked.kind === 'result' && tracked.result.tracking, { runId: childRun.runId });
    // A server that wants a token (MLFLOW_TRACKING_TOKEN here): the trial's message carries it to
    // the host, and the objective's own calls send it; the next trial without one sends none.
    const secret = 'token-' + 'c4'.repeat(12);
    const withToken = await ex.slots[1]!.run(
      { study: 'study-logged', tid: 10, ...domain('logged', 0.25), tracking: { uri: `http://localhost:${trackerPort}`, token: secret, run: Promise.resolve({ ...childRun, runId: 'b7'.repeat(16) }) } },
      new AbortController().signal,
    );
    assert.equal(withToken.kind === 'result' && withToken.result.outcome, 'ok', JSON.stringify(withToken));
    const logged = paths.filter((p) => p.startsWith('POST /api/2.0/mlflow/runs/log-metric'));
    assert.ok(logged.some((p) => p.includes('b7'.repeat(16)) && p.endsWith(`auth=Bearer ${secret}`)), logged.join('\n'));
    assert.ok(logged.filter((p) => p.includes(childRun.runId)).every((p) => p.endsWith('auth=-')), logged.join('\n'));
  } finally {
    await ex.close();
    server.close();
    tracker.close();
  }
});

test('ProxyJump: a host reached through another one', async () => {
  const h3 = fx.host('h3');
  const h4 = fx.host('h4');
  const config = writeAltConfig('ssh_config_jump', (text) => `Host h4-via-h3\n  HostName ${h4.address}\n  Port ${h4.port}\n  ProxyJump h3\n${text}`);
  const hostsFile = fx.writeHostsFile({ hosts: { 'h4-via-h3': { cacheDir: h4.cacheDir, slots: 1 } } });
  const { ex } = await started(['h4-via-h3'], hostsFile, { sshConfig: SshConfig.file(config) });
  try {
    const outcome = await run(ex.slots[0]!, 'quick', 1, 0.25);
    assert.equal(outcome.kind === 'result' && outcome.result.summary?.loss, 0);
    assert.equal(fx.workerPids('h4').length, 1);
    assert.equal(fx.workerPids('h3').length, 0, 'the hop runs no worker');
    assert.ok(h3.process);
  } finally {
    await ex.close();
  }
});

test('checkHost: versions against the driver; a Python minor mismatch is an error', async () => {
  const hostsFile = readHostsFile(fx.writeHostsFile());
  const sshConfig = SshConfig.file(fx.sshConfig);
  const info = (await driverVersions(PYTHON))!;
  const ok = await checkHost('h1', { hostsFile, sshConfig, env: fx.env, driver: info });
  assert.deepEqual(ok.errors, []);
  assert.equal(ok.reachable && ok.authenticated, true);
  assert.equal(ok.python?.version, info.python);
  assert.equal(ok.slots, 2);
  assert.ok(typeof ok.rttMs === 'number' && typeof ok.connectMs === 'number');
  const [major, minor] = info.python.split('.').map(Number) as [number, number];
  const other = await checkHost('h1', { hostsFile, sshConfig, env: fx.env, driver: { ...info, python: `${major}.${minor + 1}.0` } });
  assert.equal(other.errors.length, 1);
  assert.match(other.errors[0]!, /h1: python .*different minor version/);
  const down = await checkHost('127.0.0.9:1', { hostsFile, sshConfig, env: fx.env });
  assert.equal(down.reachable, false);
  assert.match(messageOf(down.errors[0]), /connection refused/);
});
