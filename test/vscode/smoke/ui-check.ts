// Drives the workbench like a user, with the smoke extension loaded: the command palette runs
// its command, the notification and the Explorer are read from the DOM, a screenshot is saved.
//   node --import tsx test/vscode/smoke/ui-check.ts
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { openSession } from '../harness/session';
import { runChecks } from '../harness/ui';

async function main(): Promise<void> {
  const started = Date.now();
  const session = await openSession({
    workspaceFolder: join(__dirname, 'workspace'),
    extensionPath: __dirname,
  });
  const checks: [string, () => Promise<void>][] = [
    [
      'the Explorer lists the workspace file',
      async () => {
        await session.workbench.page.locator('.explorer-folders-view .monaco-list-row').first().waitFor({ timeout: 30_000 });
        const rows = await session.workbench.texts('.explorer-folders-view .monaco-list-row');
        assert.ok(rows.some((row) => row.includes('hello.py')), `Explorer rows: ${JSON.stringify(rows)}`);
      },
    ],
    [
      'the palette offers and runs the command, which shows its notification',
      async () => {
        await session.workbench.runCommand('Harness Smoke: Say Hello');
        const entries = await session.workbench.paletteEntries('Harness Smoke');
        assert.deepEqual(entries, ['Harness Smoke: Say Hello']);
        const text = await session.workbench.waitForNotification('from the smoke extension');
        assert.equal(text, 'Hello there from the smoke extension');
      },
    ],
  ];
  let failed = 0;
  try {
    await session.workbench.waitUntilReady();
    console.log(`workbench ready after ${((Date.now() - started) / 1000).toFixed(1)} s`);
    failed += await runChecks(checks);
    await session.workbench.openNotificationCenter();
    console.log(`screenshot: ${await session.workbench.screenshot('vscode-smoke-ui')}`);
  } finally {
    await session.close();
  }
  console.log(`${checks.length - failed} passed, ${failed} failed`);
  console.error(`ui check took ${((Date.now() - started) / 1000).toFixed(1)} s`);
  process.exitCode = failed > 0 ? 1 : 0;
}

void main();
