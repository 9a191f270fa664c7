// The background service asking an attached editor (a control protocol client here) about SSH:
// an unknown host key that the editor trusts is recorded in known_hosts, an encrypted key's
// passphrase round-trips (a wrong one is asked for once more), a prompt nobody answers times out
// with a clear error, and a changed host key is refused without asking. Real sshd on loopback.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PromptMessage, RunEndedMessage } from '../../core/src/protocol/control';
import { ControlClient, type PushMessage } from '../../core/src/service/client';
import { ControlService } from '../../core/src/service/service';
import { createExecutor } from '../../executors/src/create';
import { fixturePids, PYTHON, startSshFixture, waitFor, type SshFixture } from './fixture';

const SCRIPT = join(__dirname, 'scripts', 'seeded.py');

let fx: SshFixture;
let service: ControlService;
let client: ControlClient;
let knownHosts: string;
const seen: PushMessage[] = [];

/** An encrypted client key the hosts accept, and an ssh_config that uses only it. */
function lockedConfig(name: string, passphrase: string): string {
  const key = join(fx.root, name);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', passphrase, '-f', key]);
  writeFileSync(join(fx.root, 'authorized_keys'), readFileSync(join(fx.root, 'authorized_keys'), 'utf8') + readFileSync(`${key}.pub`, 'utf8'));
  const config = join(fx.root, `ssh_config_${name}`);
  writeFileSync(config, readFileSync(fx.sshConfig, 'utf8').replace(fx.knownHosts, knownHosts).replace(`IdentityFile ${fx.clientKey}`, `IdentityFile ${key}`));
  return config;
}

function nextPrompt(): Promise<PromptMessage> {
  const already = seen.length;
  return waitFor(() => seen.slice(already).find((m): m is PromptMessage => m.type === 'prompt'), 60_000, 'a prompt from the service');
}

async function run(executor: string, config: string): Promise<{ id: string; ended: Promise<RunEndedMessage> }> {
  const hosts = fx.writeHostsFile();
  writeFileSync(hosts, JSON.stringify({ ...(JSON.parse(readFileSync(hosts, 'utf8')) as object), sshConfig: config }));
  const reply = await client.request({
    type: 'run',
    spec: { script: SCRIPT, args: ['4'], python: PYTHON, executors: [executor], trackingUri: null, parallelism: 2, ssh: { hostsFile: hosts }, env: { HOME: fx.env.HOME! } },
  });
  const id = reply.run!;
  const ended = waitFor(() => seen.find((m): m is RunEndedMessage => m.type === 'runEnded' && m.run === id), 240_000, `the end of run ${id}`);
  return { id, ended };
}

before(async () => {
  fx = await startSshFixture(2);
  // h1 is not in known_hosts; h2 is there with another key (a changed key).
  const h2 = fx.host('h2');
  knownHosts = join(fx.root, 'known_hosts_prompts');
  const forged = join(fx.root, 'forged_key');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', forged]);
  const forgedPub = readFileSync(`${forged}.pub`, 'utf8').trim().split(' ').slice(0, 2).join(' ');
  writeFileSync(knownHosts, `[${h2.address}]:${h2.port} ${forgedPub}\n`);
  service = new ControlService({
    workspace: fx.root,
    createExecutor: (spec, context) => createExecutor(spec, context),
    version: 'test',
    writeServiceFile: false,
    promptTimeoutMs: 8_000,
  });
  const port = await service.listen();
  client = await ControlClient.connect(port, service.token, { client: 'test editor' });
  client.messages.on((m) => seen.push(m));
  await client.request({ type: 'subscribe' });
});

after(async () => {
  client?.close();
  await service?.shutdown('tests done');
  await fx?.stop();
});

test('an unknown host key the editor trusts is recorded; the passphrase round-trips and a wrong one is asked for once more', async () => {
  const h1 = fx.host('h1');
  const config = lockedConfig('locked_key', 'sesame');
  const prompts = nextPrompt();
  const { ended } = await run('ssh:h1', config);

  const hostKey = await prompts;
  assert.equal(hostKey.question.kind, 'hostKey');
  const print = execFileSync('ssh-keygen', ['-l', '-f', join(h1.dir, 'ssh_host_ed25519_key.pub')], { encoding: 'utf8' }).split(' ')[1]!;
  assert.deepEqual(
    { ...hostKey.question },
    { kind: 'hostKey', host: `h1 (root@${h1.address}:${h1.port})`, hostKeyName: `[${h1.address}]:${h1.port}`, keyType: 'ssh-ed25519', fingerprint: print, file: knownHosts },
  );
  assert.ok(!readFileSync(knownHosts, 'utf8').includes(h1.hostKey), 'nothing recorded before the answer');
  let next = nextPrompt();
  await client.request({ type: 'answer', prompt: hostKey.prompt, answer: { kind: 'hostKey', trust: true } });

  const first = await next;
  assert.deepEqual({ ...first.question }, { kind: 'sshPassphrase', keyPath: join(fx.root, 'locked_key'), host: 'h1', retry: false });
  assert.ok(readFileSync(knownHosts, 'utf8').includes(`[${h1.address}]:${h1.port} ${h1.hostKey}`), 'the trusted key is in known_hosts');
  next = nextPrompt();
  await client.request({ type: 'answer', prompt: first.prompt, answer: { kind: 'sshPassphrase', passphrase: 'open says me' } });
  const retry = await next;
  assert.equal(retry.question.kind === 'sshPassphrase' && retry.question.retry, true, 'a wrong passphrase is asked for once more');
  await client.request({ type: 'answer', prompt: retry.prompt, answer: { kind: 'sshPassphrase', passphrase: 'sesame' } });
  // An answer to a prompt that is closed is refused.
  await assert.rejects(client.request({ type: 'answer', prompt: first.prompt, answer: { kind: 'sshPassphrase', passphrase: 'x' } }), /unknown_prompt|is not open/);

  const end = await ended;
  assert.equal(end.code, 0, JSON.stringify(end));
  const study = service.snapshot().runs.at(-1)!.studies[0]!;
  assert.equal(study.trials.filter((t) => t.state === 'done').length, 4);
  assert.ok(study.trials.every((t) => t.slot?.startsWith('h1/')));
});

test('a prompt nobody answers times out with a clear error; a changed host key is refused without a prompt', async () => {
  const config = lockedConfig('locked_key_2', 'other');
  const prompt = nextPrompt();
  const slow = await run('ssh:h1', config);
  const asked = await prompt;
  assert.equal(asked.question.kind, 'sshPassphrase');
  const closed = await waitFor(() => seen.find((m) => m.type === 'promptClosed' && m.prompt === asked.prompt), 30_000, 'the prompt to close');
  assert.deepEqual(closed, { type: 'promptClosed', prompt: asked.prompt, reason: 'timeout' });
  const end = await slow.ended;
  assert.notEqual(end.code, 0);
  assert.match(end.error?.message ?? '', /locked_key_2 \(encrypted; no answer to the passphrase prompt for .*locked_key_2 within 8 s\)/);

  const before = seen.filter((m) => m.type === 'prompt').length;
  const changed = await run('ssh:h2', config);
  const changedEnd = await changed.ended;
  assert.match(changedEnd.error?.message ?? '', /HOST KEY CHANGED/);
  assert.equal(seen.filter((m) => m.type === 'prompt').length, before, 'a changed key is never put to the editor');
  assert.deepEqual(fixturePids(fx), []);
});
