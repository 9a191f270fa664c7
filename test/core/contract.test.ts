// The same example messages are replayed through the Python side in test/python/test_contract.py.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { z } from 'zod';
import { CoordinatorToDriver, DriverToCoordinator } from '../../core/src/protocol/driver';
import { CoordinatorToWorker, WorkerToCoordinator } from '../../core/src/protocol/worker';
import { CoordinatorToForkServer, ForkServerToCoordinator } from '../../core/src/protocol/forkServer';
import { decodeMessage, encodeMessage } from '../../core/src/protocol/ndjson';

const dir = join(__dirname, '..', 'contract', 'messages');
const load = (name: string): Record<string, unknown[]> => JSON.parse(readFileSync(join(dir, name), 'utf8'));

const channels: Array<[string, Record<string, z.ZodType<unknown>>]> = [
  ['driver.json', { driverToCoordinator: DriverToCoordinator, coordinatorToDriver: CoordinatorToDriver }],
  ['worker.json', { workerToCoordinator: WorkerToCoordinator, coordinatorToWorker: CoordinatorToWorker }],
  ['forkserver.json', { forkServerToCoordinator: ForkServerToCoordinator, coordinatorToForkServer: CoordinatorToForkServer }],
];

for (const [file, directions] of channels) {
  const examples = load(file);
  for (const [direction, schema] of Object.entries(directions)) {
    test(`${file} ${direction}: every example is accepted and round-trips`, () => {
      const messages = examples[direction] ?? [];
      assert.ok(messages.length > 0, 'examples exist');
      for (const message of messages) {
        const decoded = decodeMessage(JSON.stringify(message), schema);
        assert.ok(decoded.ok, `${JSON.stringify(message)}: ${decoded.ok ? '' : decoded.error}`);
        assert.deepEqual(JSON.parse(encodeMessage(decoded.message as object)), message);
      }
    });
  }
  test(`${file}: invalid examples are rejected in both directions`, () => {
    const invalid = examples.invalid ?? [];
    assert.ok(invalid.length > 0);
    for (const message of invalid) {
      for (const schema of Object.values(directions)) {
        assert.equal(decodeMessage(JSON.stringify(message), schema).ok, false, JSON.stringify(message));
      }
    }
  });
}

test('a line that is not JSON is rejected with a reason', () => {
  const decoded = decodeMessage('{"type": "hello"', DriverToCoordinator);
  assert.equal(decoded.ok, false);
  assert.match(decoded.ok ? '' : decoded.error, /not JSON/);
});
