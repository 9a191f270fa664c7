import assert from 'node:assert/strict';
import { join } from 'node:path';
import * as vscode from 'vscode';
import { COMMANDS } from '../../../../extension/src/commandIds';
import { countsOf } from '../../../../extension/src/model/studyStore';
import type { TreeNode } from '../../../../extension/src/model/treeNodes';
import { api, controller, folder, processesMentioning, until } from './helpers';

const RUN_LENS = '$(play) Run with executor...';

async function lensLines(file: string): Promise<number[]> {
  const uri = vscode.Uri.file(join(folder(), file));
  await vscode.workspace.openTextDocument(uri);
  // The first request may come before the worker-thread scan of the file: ask until it settles.
  const lenses = await vscode.commands.executeCommand<vscode.CodeLens[]>('vscode.executeCodeLensProvider', uri);
  return lenses.filter((l) => l.command?.title === RUN_LENS).map((l) => l.range.start.line).sort((a, b) => a - b);
}

describe('Hyperopt Runner in VS Code', () => {
  it('activates quickly and registers every command', async () => {
    const started = Date.now();
    const { activationMs } = await api();
    console.log(`activation took ${activationMs.toFixed(1)} ms in activate() (first call to api() returned after ${Date.now() - started} ms)`);
    assert.ok(activationMs < 500, `activation took ${activationMs} ms`);
    const registered = new Set(await vscode.commands.getCommands(true));
    for (const id of Object.values(COMMANDS)) assert.ok(registered.has(id), `${id} is registered`);
  });

  it('puts a CodeLens on each fmin call, whatever the import alias, and none on decoys', async () => {
    assert.deepEqual(await lensLines('quickstart.py'), [24], 'import hyperopt as hpo; hpo.fmin(...)');
    assert.deepEqual(await lensLines('alias_fmin.py'), [12], 'from hyperopt import fmin as minimize');
    assert.deepEqual(await lensLines('two_studies.py'), [8, 10], 'two calls, two lenses');
    assert.deepEqual(await lensLines('decoys.py'), [], 'strings, comments, scipy.optimize.fmin and methods named fmin');
    assert.deepEqual(await lensLines('objectives.py'), [], 'a module without fmin');
    const c = await controller();
    await c.index.scanWorkspace();
    const files = c.index.files().map((f) => f.slice(folder().length + 1));
    assert.ok(files.includes('quickstart.py') && files.includes('two_studies.py'), `scanned: ${files.join(', ')}`);
    assert.ok(!files.includes('decoys.py'));
  });

  it('runs a study on the local executor from the command and fills the Runs tree with it and its trials', async () => {
    const c = await controller();
    await c.rememberChoice(['local:2']);
    const script = join(folder(), 'quickstart.py');
    const run = await vscode.commands.executeCommand<string | undefined>(COMMANDS.runOnLastExecutor, script);
    assert.ok(run, `the run started (messages: ${(await api()).shownMessages.join(' | ')})`);
    const study = await until('the study to open', () => c.store.runOf(c.store.run(run)?.studies[0] ?? '') && c.store.study(c.store.run(run)!.studies[0]!));
    // While it runs, the CodeLens over the call offers the study's controls.
    const lenses = await vscode.commands.executeCommand<vscode.CodeLens[]>('vscode.executeCodeLensProvider', vscode.Uri.file(script));
    const titles = lenses.map((l) => l.command?.title ?? '');
    assert.ok(titles.some((t) => t.includes('Stop')) && titles.some((t) => t.includes('Cancel')) && titles.some((t) => t.includes('Timeout')), titles.join(', '));
    await until('the run to end', () => c.store.run(run)?.state === 'ended', 90_000);
    const ended = c.store.study(study.id)!;
    assert.equal(ended.state, 'ended');
    assert.equal(countsOf(ended).ok, 40);

    const root = await c.tree.getChildren();
    const node = root.find((n): n is Extract<TreeNode, { kind: 'study' }> => n.kind === 'study' && n.studyId === study.id);
    assert.ok(node, `the Runs tree lists the study (root: ${root.map((n) => n.id).join(', ')})`);
    const item = c.tree.getTreeItem(node);
    assert.equal(item.label, 'quickstart.py:25');
    assert.match(String(item.description), /^40\/40 · best [\d.e-]+ · /);
    const trials = await c.tree.getChildren(node);
    assert.equal(trials.filter((t) => t.kind === 'trial').length, 40);
    const items = trials.map((t) => c.tree.getTreeItem(t));
    assert.equal(items.filter((i) => String(i.description).startsWith('★ best')).length, 1, 'one trial is marked best');
    assert.ok(items.every((i) => /loss [-\d.e]+ · [\d.]+s/.test(String(i.description))), String(items[0]?.description));
  });

  it('Cancel Study from the command ends the study and leaves no process', async () => {
    const c = await controller();
    const script = join(folder(), 'quickstart.py');
    const run = await vscode.commands.executeCommand<string | undefined>(COMMANDS.runOnLastExecutor, script);
    assert.ok(run);
    const studyId = await until('two finished trials', () => {
      const id = c.store.run(run)?.studies[0];
      const study = id ? c.store.study(id) : undefined;
      return study && countsOf(study).ok >= 2 ? study.id : undefined;
    });
    assert.ok(processesMentioning(folder()).length >= 2, 'the script and its workers run');
    await vscode.commands.executeCommand(COMMANDS.cancelStudy, studyId);
    await until('the run to end', () => c.store.run(run)?.state === 'ended', 30_000);
    assert.equal(c.store.study(studyId)?.reason, 'cancelled');
    const left = await until('no process to be left', () => processesMentioning(folder()).length === 0 || undefined, 10_000).catch(() => processesMentioning(folder()));
    assert.equal(left, true, `processes left: ${JSON.stringify(left)}`);
  });

  it('says what is wrong with invalid settings', async () => {
    const { shownMessages } = await api();
    const config = vscode.workspace.getConfiguration('hyperoptRunner');
    try {
      await config.update('executors', ['local:2', 'cluster:9'], vscode.ConfigurationTarget.Workspace);
      await config.update('studyTimeout', -5, vscode.ConfigurationTarget.Workspace);
      const executors = await until('the executors message', () => shownMessages.find((m) => m.startsWith('hyperoptRunner.executors[1]')));
      assert.match(executors, /invalid --executor value 'cluster:9': unknown executor kind 'cluster'/);
      const timeout = await until('the timeout message', () => shownMessages.find((m) => m.startsWith('hyperoptRunner.studyTimeout')));
      assert.equal(timeout, 'hyperoptRunner.studyTimeout: -5 is not valid: expected a positive number of seconds, or empty for none');
      // Running refuses with the first problem rather than guessing.
      console.log('settings messages shown');
      const before = shownMessages.length;
      const run = await vscode.commands.executeCommand<string | undefined>(COMMANDS.runOnLastExecutor, join(folder(), 'quickstart.py'));
      assert.equal(run, undefined);
      console.log('run refused');
      await until('the refusal', () => shownMessages.length > before || undefined, 5_000).catch(() => undefined);
    } finally {
      // Back to the workspace's own values; a settings write that stalls must not hang the suite.
      const restore = Promise.all([
        config.update('executors', ['local:2'], vscode.ConfigurationTarget.Workspace),
        config.update('studyTimeout', null, vscode.ConfigurationTarget.Workspace),
      ]);
      await Promise.race([restore, new Promise((r) => setTimeout(r, 10_000))]);
    }
  });
});
