// The service's side of prompts (core/src/service/prompts.ts): ids, answers from the right editor
// only, deadlines, closing when the run stops, and nobody to ask.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { PromptClosedMessage, PromptMessage, Question } from '../../core/src/protocol/control';
import { PromptBroker } from '../../core/src/service/prompts';

const question: Question = { kind: 'sshPassphrase', keyPath: '/home/ada/.ssh/id_ed25519', host: 'gpu1', retry: false };

function broker(target: string | undefined, timeoutMs?: number) {
  const sent: Array<{ to: string; message: PromptMessage | PromptClosedMessage }> = [];
  const b = new PromptBroker<string>({ target: () => target, send: (to, message) => sent.push({ to, message }) }, timeoutMs);
  return { b, sent };
}

test('no editor attached: the answer is undefined at once and nothing is sent', async () => {
  const { b, sent } = broker(undefined);
  assert.equal(await b.ask('r1', question), undefined);
  assert.equal(sent.length, 0);
});

test('a prompt goes to the editor with an id; only that editor, with an answer of the same kind, settles it', async () => {
  const { b, sent } = broker('editor-a');
  const asked = b.ask('r1', question);
  const message = sent[0]!.message as PromptMessage;
  assert.equal(message.type, 'prompt');
  assert.equal(message.run, 'r1');
  assert.deepEqual(message.question, question);
  assert.equal(b.answer('editor-b', message.prompt, { kind: 'sshPassphrase', passphrase: 'x' }), false);
  assert.equal(b.answer('editor-a', message.prompt, { kind: 'hostKey', trust: true }), false);
  assert.equal(b.answer('editor-a', 'p999', { kind: 'sshPassphrase', passphrase: 'x' }), false);
  assert.equal(b.answer('editor-a', message.prompt, { kind: 'sshPassphrase', passphrase: 'secret' }), true);
  assert.deepEqual(await asked, { kind: 'sshPassphrase', passphrase: 'secret' });
  assert.equal(b.answer('editor-a', message.prompt, { kind: 'sshPassphrase', passphrase: 'again' }), false, 'answered once');
  assert.equal(b.pending, 0);
});

test('a prompt nobody answers times out with a clear error and is closed on the editor', async () => {
  const { b, sent } = broker('editor-a', 50);
  await assert.rejects(b.ask('r1', question), /no answer to the passphrase prompt for \/home\/ada\/\.ssh\/id_ed25519 within 0 s/);
  assert.deepEqual(sent[1]!.message, { type: 'promptClosed', prompt: (sent[0]!.message as PromptMessage).prompt, reason: 'timeout' });
  assert.equal(b.pending, 0);
});

test('stopping the run closes its prompt; a stopped run asks nothing', async () => {
  const { b, sent } = broker('editor-a');
  const abort = new AbortController();
  const asked = b.ask('r1', { kind: 'hostKey', host: 'gpu2', hostKeyName: 'gpu2', keyType: 'ssh-ed25519', fingerprint: 'SHA256:abc', file: '/k' }, abort.signal);
  abort.abort();
  await assert.rejects(asked, /the run was stopped while the host key prompt for gpu2 was open/);
  assert.equal((sent[1]!.message as PromptClosedMessage).reason, 'cancelled');
  await assert.rejects(b.ask('r1', question, abort.signal), /stopped before/);
});

test('the editor that was asked leaves: its prompts resolve to undefined', async () => {
  const { b } = broker('editor-a');
  const asked = b.ask('r1', question);
  b.detach('editor-a');
  assert.equal(await asked, undefined);
});
