// The control protocol's example messages (test/contract/messages/control.json) against its
// schemas. The channel has no Python side: only the editor and the service speak it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ClientToService, ServiceToClient } from '../../core/src/protocol/control';
import { decodeMessage, encodeMessage } from '../../core/src/protocol/ndjson';

const examples = JSON.parse(readFileSync(join(__dirname, '..', 'contract', 'messages', 'control.json'), 'utf8')) as Record<string, unknown[]>;

for (const [direction, schema] of [
  ['clientToService', ClientToService],
  ['serviceToClient', ServiceToClient],
] as const) {
  test(`control.json ${direction}: every example is accepted and round-trips`, () => {
    const messages = examples[direction] ?? [];
    assert.ok(messages.length > 5);
    for (const message of messages) {
      const decoded = decodeMessage<unknown>(JSON.stringify(message), schema);
      assert.ok(decoded.ok, `${JSON.stringify(message).slice(0, 120)}: ${decoded.ok ? '' : decoded.error}`);
      const again = JSON.parse(encodeMessage(decoded.message as object)) as Record<string, unknown>;
      // Defaults are filled in (a run's missing fields); everything given comes back unchanged.
      assert.deepEqual(pick(again, message), message);
    }
  });
}

test('control.json: invalid examples are rejected in both directions', () => {
  const invalid = examples.invalid ?? [];
  assert.ok(invalid.length > 0);
  for (const message of invalid) {
    assert.equal(decodeMessage(JSON.stringify(message), ClientToService).ok, false, JSON.stringify(message));
    assert.equal(decodeMessage(JSON.stringify(message), ServiceToClient).ok, false, JSON.stringify(message));
  }
});

test('every request type has an example', () => {
  const types = new Set((examples.clientToService ?? []).map((m) => (m as { type: string }).type));
  for (const option of ClientToService.options) assert.ok(types.has(option.shape.type.value), option.shape.type.value);
  const pushed = new Set((examples.serviceToClient ?? []).map((m) => (m as { type: string }).type));
  for (const option of ServiceToClient.options) assert.ok(pushed.has(option.shape.type.value), option.shape.type.value);
});

/** `value` restricted to the keys `shape` has, recursively (drops defaults the schema added). */
function pick(value: unknown, shape: unknown): unknown {
  if (Array.isArray(shape) && Array.isArray(value)) return value.map((v, i) => pick(v, shape[i]));
  if (shape && typeof shape === 'object' && value && typeof value === 'object') {
    return Object.fromEntries(Object.keys(shape).map((k) => [k, pick((value as Record<string, unknown>)[k], (shape as Record<string, unknown>)[k])]));
  }
  return value;
}
