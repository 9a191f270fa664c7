import assert from 'node:assert/strict';
import { basename } from 'node:path';
import * as vscode from 'vscode';
import type { Greeting } from '../extension';

const COMMAND = 'hyperoptRunnerSmoke.hello';
const EXTENSION_ID = 'hyperopt-runner-tests.smoke';

describe('smoke extension', () => {
  it('registers its command', async () => {
    const extension = vscode.extensions.getExtension(EXTENSION_ID);
    assert.ok(extension, `${EXTENSION_ID} is loaded in development mode`);
    await extension.activate();
    const commands = await vscode.commands.getCommands(true);
    assert.ok(commands.includes(COMMAND), `${COMMAND} is not among ${commands.length} commands`);
  });

  it('runs its command in a Node extension host next to the workspace', async () => {
    const greeting = await vscode.commands.executeCommand<Greeting>(COMMAND, 'tests');
    assert.equal(greeting.message, 'Hello tests from the smoke extension');
    assert.equal(greeting.marker, 'from-the-harness', 'extensionEnvironment reaches the extension host');
    assert.ok(Number(greeting.nodeVersion.split('.')[0]) >= 20, `Node ${greeting.nodeVersion}`);
    assert.ok(greeting.remoteName, 'a workspace extension under code-server runs remotely');
    assert.deepEqual(greeting.folders.map((f) => basename(f)), ['workspace']);
  });
});
