// Unit tests of the editor's answers to the service's questions (extension/src/model/prompts.ts):
// a fake window answers the input box and the modal, a map stands in for the secret storage.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Answer, PromptMessage, Question } from '../../core/src/protocol/control';
import { EditorPrompts, REMEMBER, secretKey, TRUST_AND_CONNECT, type PromptWindow } from '../../extension/src/model/prompts';

const KEY = '/home/ada/.ssh/id_ed25519';

interface Shown {
  kind: 'password' | 'modal' | 'information';
  text: string;
  detail?: string;
  items?: string[];
}

/** A window whose answers are queued up front; it records what it showed. */
class FakeWindow implements PromptWindow {
  readonly shown: Shown[] = [];
  constructor(private readonly answers: Array<string | undefined | 'hang'>) {}
  private next(): Promise<string | undefined> {
    const answer = this.answers.shift();
    return answer === 'hang' ? new Promise(() => undefined) : Promise.resolve(answer);
  }
  passwordBox(options: { title: string; prompt: string }, signal: AbortSignal): Promise<string | undefined> {
    this.shown.push({ kind: 'password', text: options.prompt });
    return Promise.race([this.next(), new Promise<undefined>((resolve) => signal.addEventListener('abort', () => resolve(undefined)))]);
  }
  modalWarning(message: string, detail: string, ...items: string[]): Promise<string | undefined> {
    this.shown.push({ kind: 'modal', text: message, detail, items });
    return this.next();
  }
  information(message: string, ...items: string[]): Promise<string | undefined> {
    this.shown.push({ kind: 'information', text: message, items });
    return this.next();
  }
}

function setup(answers: Array<string | undefined | 'hang'>, stored: Record<string, string> = {}) {
  const window = new FakeWindow(answers);
  const secrets = new Map(Object.entries(stored));
  let remembered: string[] = Object.keys(stored).map((k) => k.slice(secretKey('').length));
  const sent: Array<{ prompt: string; answer: Answer }> = [];
  const prompts = new EditorPrompts({
    window,
    secrets: {
      get: async (k) => secrets.get(k),
      store: async (k, v) => void secrets.set(k, v),
      delete: async (k) => void secrets.delete(k),
    },
    remembered: { get: () => remembered, set: async (paths) => void (remembered = [...paths]) },
    answer: async (prompt, answer) => void sent.push({ prompt, answer }),
    log: () => undefined,
  });
  return { window, secrets, sent, prompts, remembered: () => remembered };
}

function prompt(id: string, question: Question): PromptMessage {
  return { type: 'prompt', prompt: id, run: 'r1', timeoutMs: 300_000, question };
}

const passphrase = (retry = false): Question => ({ kind: 'sshPassphrase', keyPath: KEY, host: 'gpu1', retry });

test('a stored passphrase is answered without showing anything', async () => {
  const t = setup([], { [secretKey(KEY)]: 'stored secret' });
  await t.prompts.handle(prompt('p1', passphrase()));
  assert.deepEqual(t.sent, [{ prompt: 'p1', answer: { kind: 'sshPassphrase', passphrase: 'stored secret' } }]);
  assert.equal(t.window.shown.length, 0);
});

test('no stored passphrase: a password box names the key and host, and Remember keeps it in secret storage', async () => {
  const t = setup(['typed secret', REMEMBER]);
  await t.prompts.handle(prompt('p1', passphrase()));
  assert.deepEqual(t.sent, [{ prompt: 'p1', answer: { kind: 'sshPassphrase', passphrase: 'typed secret' } }]);
  assert.equal(t.window.shown[0]!.kind, 'password');
  assert.match(t.window.shown[0]!.text, /id_ed25519.*gpu1/);
  assert.equal(t.window.shown[1]!.kind, 'information');
  assert.equal(t.secrets.get(secretKey(KEY)), 'typed secret');
  assert.deepEqual(t.remembered(), [KEY]);
});

test('Not Now keeps nothing; an empty box (Escape) answers null', async () => {
  const t = setup(['typed secret', 'Not Now', undefined]);
  await t.prompts.handle(prompt('p1', passphrase()));
  assert.equal(t.secrets.size, 0);
  await t.prompts.handle(prompt('p2', passphrase()));
  assert.deepEqual(t.sent[1], { prompt: 'p2', answer: { kind: 'sshPassphrase', passphrase: null } });
});

test('a wrong stored passphrase is deleted and asked for once more', async () => {
  const t = setup(['right secret', 'Not Now'], { [secretKey(KEY)]: 'wrong secret' });
  await t.prompts.handle(prompt('p1', passphrase()));
  assert.equal(t.sent[0]!.answer.kind === 'sshPassphrase' && t.sent[0]!.answer.passphrase, 'wrong secret');
  await t.prompts.handle(prompt('p2', passphrase(true)));
  assert.equal(t.secrets.has(secretKey(KEY)), false, 'the wrong passphrase is gone from secret storage');
  assert.deepEqual(t.remembered(), []);
  assert.match(t.window.shown[0]!.text, /^Wrong passphrase\./);
  assert.deepEqual(t.sent[1], { prompt: 'p2', answer: { kind: 'sshPassphrase', passphrase: 'right secret' } });
});

test('Remember clicked after the service said the passphrase was wrong stores nothing', async () => {
  let clickRemember: (v: string) => void = () => undefined;
  const t = setup(['wrong secret']);
  // The offer stays open while the retry comes.
  (t.window as unknown as { information: PromptWindow['information'] }).information = () => new Promise((r) => (clickRemember = r));
  const first = t.prompts.handle(prompt('p1', passphrase()));
  await new Promise((r) => setTimeout(r, 10));
  const t2 = t.prompts.handle(prompt('p2', passphrase(true)));
  await new Promise((r) => setTimeout(r, 10));
  clickRemember(REMEMBER);
  await first;
  await t2;
  assert.equal(t.secrets.has(secretKey(KEY)), false);
});

test('a prompt the service closes closes its input box and sends nothing', async () => {
  const t = setup(['hang']);
  const handled = t.prompts.handle(prompt('p1', passphrase()));
  await new Promise((r) => setTimeout(r, 10));
  t.prompts.closed({ type: 'promptClosed', prompt: 'p1', reason: 'timeout' });
  await handled;
  assert.deepEqual(t.sent, []);
});

test('an unknown host key: a modal with host, key type and fingerprint; Trust and Connect trusts, Cancel does not', async () => {
  const question: Question = { kind: 'hostKey', host: 'gpu2', hostKeyName: '[10.0.0.12]:2222', keyType: 'ssh-ed25519', fingerprint: 'SHA256:abc', file: '/home/ada/.ssh/known_hosts' };
  const t = setup([TRUST_AND_CONNECT, undefined]);
  await t.prompts.handle(prompt('p1', question));
  const modal = t.window.shown[0]!;
  assert.equal(modal.kind, 'modal');
  assert.match(modal.text, /gpu2/);
  assert.match(modal.detail!, /ssh-ed25519 key fingerprint SHA256:abc/);
  assert.deepEqual(modal.items, [TRUST_AND_CONNECT]);
  await t.prompts.handle(prompt('p2', question));
  assert.deepEqual(t.sent.map((s) => s.answer), [{ kind: 'hostKey', trust: true }, { kind: 'hostKey', trust: false }]);
});

test('Forget SSH Passphrases deletes every remembered passphrase', async () => {
  const other = '/home/ada/.ssh/id_rsa';
  const t = setup([], { [secretKey(KEY)]: 'a', [secretKey(other)]: 'b' });
  assert.equal(await t.prompts.forgetAll(), 2);
  assert.equal(t.secrets.size, 0);
  assert.deepEqual(t.remembered(), []);
  assert.equal(await t.prompts.forgetAll(), 0);
});
