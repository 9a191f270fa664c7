// Measures the extension's activation in a fresh window: the time `activate()` reports for itself,
// and the time from asking VS Code to activate it (loading dist/extension.js included) to its API.
// Used by bench/activation.bench.ts, which reads the ACTIVATION line.
import assert from 'node:assert/strict';
import * as vscode from 'vscode';
import type { HyperoptRunnerApi } from '../../../../extension/src/extension';

const EXTENSION_ID = 'hyperopt-runner.hyperopt-runner';

describe('activation', () => {
  it('activates and reports its cost', async () => {
    const extension = vscode.extensions.getExtension<HyperoptRunnerApi>(EXTENSION_ID);
    assert.ok(extension, `${EXTENSION_ID} is loaded`);
    const wasActive = extension.isActive;
    const started = performance.now();
    const api = wasActive ? extension.exports : await extension.activate();
    const loadAndActivateMs = performance.now() - started;
    assert.ok(api.controller, 'the workspace folder has a controller');
    console.log(`ACTIVATION ${JSON.stringify({ activationMs: api.activationMs, loadAndActivateMs, wasActive })}`);
  });
});
