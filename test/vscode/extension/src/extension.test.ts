import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as vscode from 'vscode';
import { COMMANDS } from '../../../../extension/src/commandIds';
import { countsOf, endedAtOf } from '../../../../extension/src/model/studyStore';
import type { TreeNode } from '../../../../extension/src/model/treeNodes';
import { api, controller, folder, processesMentioning, until } from './helpers';

const RUN_LENS = '$(play) Run with executor...';

/** Awaits `promise`, failing after `ms` (a settings write that stalls must not hang the suite). */
async function bounded<T>(what: string, promise: Thenable<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took more than ${ms / 1000} s`)), ms);
  });
  try {
    return await Promise.race([Promise.resolve(promise), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function lensLines(file: string): Promise<number[]> {
  const uri = vscode.Uri.file(join(folder(), file));
  await vscode.workspace.openTextDocument(uri);
  // The first request may come before the worker-thread scan of the file: ask until it settles.
  const lenses = await vscode.commands.executeCommand<vscode.CodeLens[]>('vscode.executeCodeLensProvider', uri);
  return lenses.filter((l) => l.command?.title === RUN_LENS).map((l) => l.range.start.line).sort((a, b) => a - b);
}

/** Where the Runs tree shows a study, read through the provider as VS Code reads it (root, then each experiment). */
interface StudyRow {
  node: TreeNode;
  underExperiment: boolean;
  item: vscode.TreeItem;
}

async function studyRow(c: Awaited<ReturnType<typeof controller>>, studyId: string): Promise<StudyRow | undefined> {
  const root = await c.tree.getChildren();
  const local = root.find((n) => n.kind === 'study' && n.studyId === studyId);
  if (local) return { node: local, underExperiment: false, item: c.tree.getTreeItem(local) };
  for (const experiment of root) {
    if (experiment.kind !== 'mlflow' || experiment.node.kind !== 'experiment') continue;
    const row = (await c.tree.getChildren(experiment)).find((n) => n.kind === 'mlflow' && n.node.kind === 'study' && n.node.studyId === studyId);
    if (row) return { node: row, underExperiment: true, item: c.tree.getTreeItem(row) };
  }
  return undefined;
}

/** Resolves with `probe`'s first value, tried now and whenever the Runs tree changes. */
function onTreeChange<T>(c: Awaited<ReturnType<typeof controller>>, what: string, probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let busy = Promise.resolve();
    const timer = setTimeout(() => finish(new Error(`timed out waiting for ${what}`)), timeoutMs);
    const subscription = c.tree.onDidChangeTreeData(() => void check());
    function finish(error: Error | undefined, value?: T): void {
      clearTimeout(timer);
      subscription.dispose();
      if (error) reject(error);
      else resolve(value as T);
    }
    function check(): Promise<void> {
      busy = busy.then(async () => {
        const value = await probe();
        if (value !== undefined) finish(undefined, value);
      }).catch((error: unknown) => finish(error instanceof Error ? error : new Error(String(error))));
      return busy;
    }
    void check();
  });
}

const iconId = (item: vscode.TreeItem): string | undefined => (item.iconPath instanceof vscode.ThemeIcon ? item.iconPath.id : undefined);

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

  // The suite runs with tracking on, as users do; this is its untracked case.
  it('with tracking off, runs a study on the local executor from the command and fills the Runs tree with it and its trials', async () => {
    const c = await controller();
    await c.rememberChoice(['local:2']);
    const config = vscode.workspace.getConfiguration('hyperoptRunner');
    await bounded('turning tracking off', config.update('tracking', false, vscode.ConfigurationTarget.Workspace), 30_000);
    try {
      await until('the setting to take effect', () => c.settings().settings.trackingUri === null || undefined, 30_000);
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
      // The progress notification gives way to what the study found, with the way to its charts.
      const { shownMessages } = await api();
      const outcome = await until('the end-of-study notification', () => shownMessages.find((m) => m.startsWith('quickstart.py:25: ')), 10_000);
      assert.match(outcome, /^quickstart\.py:25: best [-\d.e]+ after 40 trials$/);

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
    } finally {
      await bounded('turning tracking back on', config.update('tracking', undefined, vscode.ConfigurationTarget.Workspace), 30_000).catch((error: unknown) => console.log(String(error)));
    }
  });

  it('a script with a syntax error: the notification and the Problems view name its file and line, until it is run again', async () => {
    const c = await controller();
    await c.rememberChoice(['local:2']);
    const script = join(folder(), 'broken_study.py');
    writeFileSync(script, 'from hyperopt import fmin, hp\n\nbest = fmin(lambda x: x, hp.uniform("x", 0, 1), max_evals=(3\n');
    try {
      const run = await vscode.commands.executeCommand<string | undefined>(COMMANDS.runOnLastExecutor, script);
      assert.ok(run, `the run started (messages: ${(await api()).shownMessages.join(' | ')})`);
      await until('the run to end', () => c.store.run(run)?.state === 'ended', 60_000);
      const { shownMessages } = await api();
      const message = await until('the failure notification', () => shownMessages.find((m) => m.startsWith('broken_study.py')), 10_000);
      assert.match(message, /^broken_study\.py:3: SyntaxError: '\(' was never closed$/);
      const ours = (): vscode.Diagnostic[] => vscode.languages.getDiagnostics(vscode.Uri.file(script)).filter((d) => d.source === 'Hyperopt Runner');
      const problems = await until('the problem at the line', () => (ours().length > 0 ? ours() : undefined), 10_000);
      assert.equal(problems.length, 1);
      assert.equal(problems[0]!.range.start.line, 2);
      assert.equal(problems[0]!.severity, vscode.DiagnosticSeverity.Error);
      assert.match(problems[0]!.message, /^SyntaxError: /);
      // Fixed and run again: the problem goes with the new run.
      writeFileSync(script, 'from hyperopt import fmin, hp\n\nbest = fmin(lambda x: x, hp.uniform("x", 0, 1), max_evals=3)\n');
      const again = await vscode.commands.executeCommand<string | undefined>(COMMANDS.runOnLastExecutor, script);
      assert.ok(again);
      assert.deepEqual(ours(), []);
      await until('the second run to end', () => c.store.run(again)?.state === 'ended', 60_000);
      assert.equal(c.store.run(again)?.code, 0);
      assert.deepEqual(ours(), []);
    } finally {
      rmSync(script, { force: true });
    }
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

  it('with tracking on, the Runs tree shows MLflow experiment > study (parent run) > trials (child runs) with losses', async function () {
    // The embedded MLflow server takes 10-30 s to start on a busy machine, more under load.
    this.timeout(420_000);
    const c = await controller();
    await c.rememberChoice(['local:2']);
    await until('the setting to take effect', () => c.settings().settings.trackingUri === '' || undefined, 30_000);
    const script = join(folder(), 'tracked_study.py');
    const run = await vscode.commands.executeCommand<string | undefined>(COMMANDS.runOnLastExecutor, script);
    assert.ok(run, `the run started (messages: ${(await api()).shownMessages.join(' | ')})`);
    await until('the tracked run to end', () => c.store.run(run)?.state === 'ended', 300_000);
    const studyId = c.store.run(run)!.studies[0]!;
    const study = c.store.study(studyId)!;
    assert.equal(study.reason, 'max_evals', `the study ended by ${study.reason}: ${study.message ?? ''}`);
    assert.equal(countsOf(study).ok, 5);
    const parentRunId = study.tracking?.parentRunId;
    assert.ok(parentRunId, 'the study was logged as an MLflow parent run');

    // Read the tree as VS Code does: root, then each branch's children, through the provider.
    const found = await until(
      'the study under an MLflow experiment with its five trials',
      async () => {
        c.tree.refresh();
        const root = await c.tree.getChildren();
        // Before any experiment is expanded: a study whose experiment is listed shows only under it.
        const listed = root.some((n) => n.kind === 'mlflow' && n.node.kind === 'experiment' && n.node.experimentId === study.tracking?.experimentId);
        if (listed) assert.ok(!root.some((n) => n.kind === 'study' && n.studyId === studyId), `the study is listed twice at the root: ${root.map((n) => n.id).join(', ')}`);
        for (const experiment of root) {
          if (experiment.kind !== 'mlflow' || experiment.node.kind !== 'experiment') continue;
          const studies = await c.tree.getChildren(experiment);
          const parent = studies.find((n) => n.kind === 'mlflow' && n.node.kind === 'study' && n.node.runId === parentRunId);
          if (!parent) continue;
          const trials = (await c.tree.getChildren(parent)).filter((n) => n.kind === 'mlflow' && n.node.kind === 'trial');
          if (trials.length < 5 || trials.some((t) => t.kind === 'mlflow' && t.node.kind === 'trial' && t.node.loss === undefined)) continue;
          return { experiment, parent, trials };
        }
        return undefined;
      },
      120_000,
    );
    const { experiment, trials } = found;
    // A study node carries the counts of the trials read so far: read the branch again, as the
    // tree does when the model reports the trials it has read.
    const parent = (await c.tree.getChildren(experiment)).find((n) => n.kind === 'mlflow' && n.node.kind === 'study' && n.node.runId === parentRunId);
    assert.ok(parent);
    // Once its experiment has been read, the study is listed under MLflow only, not again
    // among the studies MLflow does not list.
    const root = await c.tree.getChildren();
    assert.ok(!root.some((n) => n.kind === 'study' && n.studyId === studyId), `root: ${root.map((n) => n.id).join(', ')}`);
    assert.ok(c.tree.mlflowUri?.startsWith('http://127.0.0.'), `the embedded server serves the tree: ${c.tree.mlflowUri}`);
    const experimentItem = c.tree.getTreeItem(experiment);
    assert.ok(String(experimentItem.label).length > 0);
    assert.equal(experimentItem.collapsibleState, vscode.TreeItemCollapsibleState.Collapsed);
    const parentItem = c.tree.getTreeItem(parent);
    assert.match(String(parentItem.label), /tracked_study(\.py)?:9$/);
    // A study of this window counts as its panel and the status bar do.
    assert.match(String(parentItem.description), /^5\/5 · best [\d.e-]+ · .* · max_evals · /);
    assert.equal(trials.length, 5);
    const best = Math.min(...[...study.trials.values()].map((t) => t.loss ?? Infinity));
    const losses: number[] = [];
    for (const trial of trials) {
      assert.ok(trial.kind === 'mlflow' && trial.node.kind === 'trial');
      assert.equal(trial.node.status, 'FINISHED');
      assert.ok(trial.node.runId && trial.node.runId !== parentRunId, 'each trial is its own child run');
      const local = study.trials.get(trial.node.tid!);
      assert.ok(local, `trial ${trial.node.tid} of the study`);
      assert.ok(Math.abs(trial.node.loss! - local.loss!) <= 1e-9 * Math.max(1, Math.abs(local.loss!)), `trial ${trial.node.tid}: MLflow loss ${trial.node.loss}, study loss ${local.loss}`);
      losses.push(trial.node.loss!);
      assert.match(String(c.tree.getTreeItem(trial).description), /loss [-\d.e]+/);
    }
    assert.equal(trials.filter((t) => t.kind === 'mlflow' && t.node.kind === 'trial' && t.node.isBest).length, 1, 'one trial is marked best');
    assert.ok(Math.abs(Math.min(...losses) - best) <= 1e-9 * Math.max(1, Math.abs(best)));
    console.log(`MLflow branch: ${String(experimentItem.label)} > ${String(parentItem.label)} (${String(parentItem.description)}) > ${trials.length} trials`);
  });

  it('with tracking on, a running study stays in the Runs tree under its experiment, live, and shows its end once cancelled', async function () {
    this.timeout(420_000);
    const c = await controller();
    await c.rememberChoice(['local:2']);
    // slow_study.py holds its trials after the sixth until this file exists: it runs until cancelled.
    const gate = [join(folder(), 'slow_study.count'), join(folder(), 'slow_study.release')];
    // Every redraw of the tree from the study's opening on: where its row was.
    const samples: Array<{ at: string; row: StudyRow | undefined }> = [];
    let studyId: string | undefined;
    let sampling = Promise.resolve();
    const sampler = c.tree.onDidChangeTreeData(() => {
      sampling = sampling.then(async () => {
        const study = studyId !== undefined ? c.store.study(studyId) : undefined;
        if (study) samples.push({ at: study.tracking ? 'tracked' : 'opened', row: await studyRow(c, study.id) });
      });
    });
    // The experiment that takes the running study opens by itself: a collapsed one would hide it.
    const expanded: string[] = [];
    const expansions = c.treeView.onDidExpandElement((e) => expanded.push(e.element.id));
    try {
      await vscode.commands.executeCommand('hyperoptRunner.runs.focus');
      await until('the Runs view to show', () => c.treeView.visible || undefined, 10_000);
      await until('the setting to take effect', () => c.settings().settings.trackingUri === '' || undefined, 30_000);
      const run = await vscode.commands.executeCommand<string | undefined>(COMMANDS.runOnLastExecutor, join(folder(), 'slow_study.py'));
      assert.ok(run, `the run started (messages: ${(await api()).shownMessages.join(' | ')})`);
      studyId = await until('the study to open', () => c.store.run(run)?.studies[0], 300_000);
      const id = studyId;
      // Without a refresh: the row comes under its experiment and counts the trials as they run.
      const running = await onTreeChange(
        c,
        'the running study under its experiment with three finished trials',
        async () => {
          const study = c.store.study(id);
          const row = await studyRow(c, id);
          return study && countsOf(study).ok >= 3 && row?.underExperiment && row.node.kind === 'mlflow' && row.node.node.kind === 'study' && row.node.node.trialCount >= 3 ? row : undefined;
        },
        300_000,
      );
      assert.equal(iconId(running.item), 'loading~spin');
      const experimentId = running.node.kind === 'mlflow' ? `mlflow:${running.node.node.parent}` : '';
      await until('the experiment to open by itself', () => expanded.includes(experimentId) || undefined, 10_000).catch(() => assert.fail(`expanded: ${expanded.join(', ') || 'nothing'}; the study is under ${experimentId}`));
      assert.match(String(running.item.label), /slow_study(\.py)?:28$/);
      await vscode.commands.executeCommand(COMMANDS.cancelStudy, id);
      await until('the run to end', () => c.store.run(run)?.state === 'ended', 60_000);
      const ended = await onTreeChange(
        c,
        'the ended study in the tree',
        async () => {
          const row = await studyRow(c, id);
          return row && iconId(row.item) !== 'loading~spin' ? row : undefined;
        },
        60_000,
      );
      await sampling;
      const study = c.store.study(id)!;
      assert.equal(study.reason, 'cancelled');
      assert.ok(ended.node.kind === 'mlflow' && ended.node.node.kind === 'study', `the ended study is MLflow's row: ${ended.node.id}`);
      assert.equal(ended.node.id, running.node.id, 'the same row');
      assert.equal(ended.node.node.status, 'KILLED');
      assert.equal(iconId(ended.item), 'circle-slash', 'cancelled');
      const duration = ended.node.node.durationMs;
      assert.ok(duration !== undefined && duration <= endedAtOf(study)! - study.info.createdAt + 60_000, `a duration up to the end: ${duration}`);
      // A ticking duration would move on within two seconds; an ended study's stands.
      await new Promise((r) => setTimeout(r, 2_100));
      assert.equal(String((await studyRow(c, id))?.item.description), String(ended.item.description));

      // The row never went away while the study ran; once under its experiment, it stayed there as one row.
      const missing = samples.filter((s) => s.row === undefined);
      assert.deepEqual(missing.map((s) => s.at), [], `redraws without the study's row: ${missing.length} of ${samples.length}`);
      const first = samples.findIndex((s) => s.row?.underExperiment);
      assert.ok(first >= 0, 'the tree redrew with the study under its experiment');
      const moved = samples.slice(first).filter((s) => !s.row?.underExperiment || s.row.node.id !== running.node.id);
      assert.deepEqual(moved.map((s) => s.row?.node.id), [], 'the same row under its experiment from then on');
      const tracked = samples.filter((s) => s.at === 'tracked');
      console.log(`Runs tree: ${samples.length} redraws sampled, ${tracked.length} tracked; ended as ${String(ended.item.description)}`);
    } finally {
      sampler.dispose();
      expansions.dispose();
      // A failure above leaves the study held at its gate: cancel it before removing the gate's files.
      const left = studyId !== undefined ? c.store.runOf(studyId) : undefined;
      if (left && left.state !== 'ended') {
        await vscode.commands.executeCommand(COMMANDS.cancelStudy, studyId);
        await until('the run to end', () => c.store.run(left.run)?.state === 'ended', 60_000).catch((error: unknown) => console.log(String(error)));
      }
      for (const file of gate) rmSync(file, { force: true });
    }
  });

  it('an interpreter that is missing or lacks hyperopt: the message names the setting that chose it, and no CLI flag', async function () {
    this.timeout(120_000);
    const { shownMessages } = await api();
    const config = vscode.workspace.getConfiguration('hyperoptRunner');
    const bare = mkdtempSync(join(tmpdir(), 'hr-bare-venv-'));
    try {
      await bounded('a settings write', config.update('python', join(bare, 'missing', 'python'), vscode.ConfigurationTarget.Workspace), 10_000);
      const first = await vscode.commands.executeCommand<string | undefined>(COMMANDS.runOnLastExecutor, join(folder(), 'quickstart.py'));
      assert.equal(first, undefined);
      const missing = await until('the missing interpreter message', () => shownMessages.find((m) => m.startsWith(`Python interpreter not found: ${join(bare, 'missing', 'python')}`)), 10_000);
      assert.match(missing, /\(the hyperoptRunner\.python setting\); set it to an existing interpreter/);
      assert.doesNotMatch(missing, /--python|HYPEROPT_RUNNER_PYTHON/);
      // A real interpreter without hyperopt: a fresh virtual environment.
      execFileSync('python3', ['-m', 'venv', '--without-pip', join(bare, 'venv')]);
      await bounded('a settings write', config.update('python', join(bare, 'venv', 'bin', 'python'), vscode.ConfigurationTarget.Workspace), 10_000);
      const second = await vscode.commands.executeCommand<string | undefined>(COMMANDS.runOnLastExecutor, join(folder(), 'quickstart.py'));
      assert.equal(second, undefined);
      const lacking = await until('the hyperopt message', () => shownMessages.find((m) => m.includes(join(bare, 'venv')) && /hyperopt/.test(m)), 30_000);
      assert.match(lacking, /\(the interpreter is the hyperoptRunner\.python setting\)$/);
    } finally {
      await Promise.race([config.update('python', undefined, vscode.ConfigurationTarget.Workspace), new Promise((r) => setTimeout(r, 10_000))]);
      rmSync(bare, { recursive: true, force: true });
    }
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
