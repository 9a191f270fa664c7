/** The table of commands: each id of commandIds.ts with its handler. */
import * as vscode from 'vscode';
import { parseDuration } from '../../core/src/analysis/shape';
import { COMMANDS, type CommandId } from './commandIds';
import type { Controller } from './controller';
import { commands, env } from './host/commands';
import { window } from './host/window';
import { workspace } from './host/workspace';
import { errorText, reportError, showLog, traceInfo } from './log';
import { executorChoices, sshEntryFromInput } from './model/executorChoices';
import { SECTION } from './model/settings';
import { formatDuration } from './model/format';
import type { LocalStudy } from './model/studyStore';
import { studyLabel, type TreeNode } from './model/treeNodes';

type Handler = (c: Controller, ...args: unknown[]) => unknown;

/** A study named by an argument: its id, a tree node, or `{ studyId }` (from the panel). */
function studyIdOf(c: Controller, arg: unknown): string | undefined {
  if (typeof arg === 'string') return arg;
  if (arg && typeof arg === 'object') {
    const node = arg as Partial<TreeNode> & { studyId?: string };
    if (typeof node.studyId === 'string') return node.studyId;
    if (node.kind === 'mlflow' && node.node?.kind === 'study') return node.node.studyId ?? undefined;
    if (node.kind === 'mlflow' && node.node?.kind === 'trial') {
      const parent = c.tree.node(`mlflow:${node.node.parent}`);
      return parent?.kind === 'mlflow' && parent.node.kind === 'study' ? parent.node.studyId : undefined;
    }
  }
  return undefined;
}

/** The running study the user means: the argument, the only one running, or one picked. */
async function pickRunning(c: Controller, arg: unknown, verb: string): Promise<LocalStudy | undefined> {
  const given = studyIdOf(c, arg);
  if (given) return c.store.study(given);
  const active = c.store.activeStudies();
  if (active.length === 0) {
    void window.showInformationMessage('No Hyperopt study is running.');
    return undefined;
  }
  if (active.length === 1) return active[0];
  const picked = await window.showQuickPick(
    active.map((s) => ({ label: studyLabel(s), description: `${s.state} · ${s.id}`, study: s })),
    { placeHolder: `Which study to ${verb}?` },
  );
  return picked?.study;
}

function scriptOf(arg: unknown): vscode.Uri | undefined {
  if (arg instanceof vscode.Uri) return arg;
  if (typeof arg === 'string') return vscode.Uri.file(arg);
  const editor = window.activeTextEditor;
  return editor && editor.document.languageId === 'python' ? editor.document.uri : undefined;
}

async function pickExecutors(c: Controller): Promise<string[] | undefined> {
  for (;;) {
    const items = executorChoices(c.settings().settings.executors, c.lastChoice());
    const picked = await window.showQuickPick(
      items.map((item) => ({ label: item.kind === 'choice' && item.last ? `$(history) ${item.label}` : item.kind === 'addSsh' ? `$(add) ${item.label}` : item.label, description: item.description, item })),
      { placeHolder: 'Run the trials on...', matchOnDescription: true },
    );
    if (!picked) return undefined;
    if (picked.item.kind === 'choice') return picked.item.executors;
    const added = await addSshHosts(c);
    if (added) return [added];
  }
}

async function addSshHosts(c: Controller): Promise<string | undefined> {
  const text = await window.showInputBox({
    prompt: 'SSH hosts for one executor: names or aliases from ~/.ssh/config, or user@host[:port], separated by commas',
    placeHolder: 'gpu1, gpu2',
    validateInput: (value) => {
      const result = sshEntryFromInput(value);
      return 'error' in result ? result.error : undefined;
    },
  });
  if (text === undefined) return undefined;
  const result = sshEntryFromInput(text);
  if ('error' in result) return undefined;
  const config = workspace.getConfiguration(SECTION, vscode.Uri.file(c.folder));
  const current = c.settings().settings.executors;
  if (!current.includes(result.entry)) {
    await config.update('executors', [...current, result.entry], vscode.ConfigurationTarget.Workspace);
    traceInfo(`added ${result.entry} to ${SECTION}.executors`);
  }
  return result.entry;
}

async function runWith(c: Controller, arg: unknown, mode: 'pick' | 'last'): Promise<string | undefined> {
  const script = scriptOf(arg);
  if (!script) {
    void window.showInformationMessage('Open a Python script that calls hyperopt\'s fmin, then run it.');
    return undefined;
  }
  const executors = mode === 'last' ? (c.lastChoice() ?? (await pickExecutors(c))) : await pickExecutors(c);
  if (!executors) return undefined;
  // Remembered beside the run, not before it: the workspace state's write is a round trip to the
  // window that the first trial need not wait for.
  void c.rememberChoice(executors);
  return c.run(script, executors);
}

function mlflowTarget(c: Controller, arg: unknown): { experimentId: string; runId: string } | undefined {
  const node = arg as Partial<TreeNode> | undefined;
  if (node?.kind === 'mlflow') {
    const n = node.node!;
    if (n.kind === 'experiment') return { experimentId: n.experimentId, runId: '' };
    if (n.kind === 'study' && n.experimentId && n.runId) return { experimentId: n.experimentId, runId: n.runId };
    if (n.kind === 'trial' && n.runId) {
      const parent = c.tree.node(`mlflow:${n.parent}`);
      const experimentId = parent?.kind === 'mlflow' && parent.node.kind === 'study' ? parent.node.experimentId : undefined;
      if (experimentId) return { experimentId, runId: n.runId };
    }
  }
  const study = c.findStudy(studyIdOf(c, arg) ?? '');
  return study?.tracking ? { experimentId: study.tracking.experimentId, runId: study.tracking.parentRunId } : undefined;
}

const HANDLERS: Record<CommandId, Handler> = {
  [COMMANDS.runTuningScript]: (c, arg) => runWith(c, arg, c.lastChoice() ? 'last' : 'pick'),
  [COMMANDS.runWithExecutor]: (c, arg) => runWith(c, arg, 'pick'),
  [COMMANDS.runOnLastExecutor]: (c, arg) => runWith(c, arg, 'last'),
  [COMMANDS.stopStudy]: async (c, arg) => {
    const study = await pickRunning(c, arg, 'stop');
    if (study) await c.connection.request({ type: 'stop', study: study.id }).catch((e: unknown) => void reportError(`Stop failed: ${errorText(e)}`));
  },
  [COMMANDS.cancelStudy]: async (c, arg) => {
    const study = await pickRunning(c, arg, 'cancel');
    if (study) await c.connection.request({ type: 'cancel', study: study.id }).catch((e: unknown) => void reportError(`Cancel failed: ${errorText(e)}`));
  },
  [COMMANDS.setStudyTimeout]: async (c, arg, value) => {
    const study = await pickRunning(c, arg, 'time out');
    if (!study) return;
    const elapsed = formatDuration(Date.now() - study.openedAt);
    const text =
      typeof value === 'string'
        ? value
        : await window.showInputBox({
            prompt: `Timeout for ${studyLabel(study)}, counted from its start (running ${elapsed}): seconds or a duration such as 10m or 1h30m; "none" removes it`,
            value: study.settings?.timeout ? String(study.settings.timeout) : '',
            validateInput: (v) => (v.trim().toLowerCase() === 'none' || parseDuration(v) !== undefined ? undefined : 'Give seconds (600), a duration (10m, 1h30m) or none'),
          });
    if (text === undefined) return;
    const seconds = text.trim().toLowerCase() === 'none' ? null : (parseDuration(text) ?? null);
    await c.connection.request({ type: 'setTimeout', study: study.id, seconds }).catch((e: unknown) => void reportError(`Setting the timeout failed: ${errorText(e)}`));
  },
  [COMMANDS.openCharts]: (c, arg) => {
    const id = studyIdOf(c, arg) ?? c.store.activeStudies()[0]?.id ?? c.store.studies()[0]?.id;
    if (!id || !c.findStudy(id)) {
      void window.showInformationMessage('No study to chart yet: run a tuning script first.');
      return;
    }
    c.panels.show(id);
  },
  [COMMANDS.openInMlflow]: async (c, arg) => {
    const target = mlflowTarget(c, arg);
    const base = c.tree.mlflowUri;
    if (!target || !base) {
      void window.showInformationMessage('This item has no MLflow run (yet).');
      return;
    }
    const route = target.runId ? `#/experiments/${target.experimentId}/runs/${target.runId}` : `#/experiments/${target.experimentId}`;
    let path: string;
    try {
      path = await c.tree.browserPath(route);
    } catch (error) {
      void window.showErrorMessage(`Could not open MLflow: ${errorText(error)}`);
      return;
    }
    const uri = await env.asExternalUri(vscode.Uri.parse(base));
    await env.openExternal(vscode.Uri.parse(`${uri.toString().replace(/\/+$/, '')}${path}`));
  },
  [COMMANDS.copyRunId]: async (c, arg) => {
    const node = arg as Partial<TreeNode> | undefined;
    let id: string | undefined;
    if (node?.kind === 'mlflow' && (node.node!.kind === 'study' || node.node!.kind === 'trial')) id = node.node!.runId;
    else {
      const study = c.findStudy(studyIdOf(c, arg) ?? '');
      id = study?.tracking?.parentRunId ?? study?.info.runId;
    }
    if (!id) return;
    await env.writeClipboard(id);
    void window.showInformationMessage(`Copied ${id}`);
  },
  [COMMANDS.showLogs]: async (c, arg) => {
    const node = arg as (Partial<TreeNode> & { tid?: number }) | undefined;
    const study = c.findStudy(studyIdOf(c, arg) ?? '');
    if (!study) return;
    const tid = node?.kind === 'trial' || typeof node?.tid === 'number' ? node.tid : node?.kind === 'mlflow' && node.node?.kind === 'trial' ? node.node.tid : undefined;
    const path = tid !== undefined ? c.trialLog(study, tid) : c.store.driverLogOf(study);
    const { existsSync } = await import('node:fs');
    if (!existsSync(path)) {
      void window.showInformationMessage(tid !== undefined ? `Trial ${tid} printed nothing.` : `The script of ${studyLabel(study)} printed nothing.`);
      return;
    }
    await c.openFile(path);
  },
  [COMMANDS.revealScript]: async (c, arg) => {
    const study = c.findStudy(studyIdOf(c, arg) ?? '');
    if (study) await c.openFile(study.info.callSite.file, study.info.callSite.line);
  },
  [COMMANDS.runStudyAgain]: async (c, arg) => {
    const study = c.findStudy(studyIdOf(c, arg) ?? '');
    if (!study) {
      void window.showInformationMessage('This study was not run from this workspace, so its script is not known here.');
      return undefined;
    }
    // The same script on the same executors, as the Testing view re-runs a test as it ran.
    const executors = study.info.executors.length > 0 ? [...study.info.executors] : (c.lastChoice() ?? (await pickExecutors(c)));
    if (!executors) return undefined;
    return c.run(vscode.Uri.file(study.info.script), executors);
  },
  [COMMANDS.selectInterpreter]: (c) => c.chooseInterpreter(),
  [COMMANDS.refreshRuns]: (c) => c.tree.refresh(),
  [COMMANDS.addSshHosts]: (c) => addSshHosts(c),
  [COMMANDS.showOutput]: () => showLog(),
  [COMMANDS.forgetSshPassphrases]: async (c) => {
    const count = await c.prompts.forgetAll();
    void window.showInformationMessage(count > 0 ? `Forgot ${count} SSH key passphrase${count === 1 ? '' : 's'} kept in the editor's secret storage.` : 'No SSH key passphrase is kept in the editor\'s secret storage.');
  },
  [COMMANDS.setMlflowToken]: async (c) => {
    const token = await window.showInputBox({ prompt: 'MLflow tracking token (kept in the editor\'s secret storage; empty removes it)', password: true });
    if (token === undefined) return;
    if (token === '') await c.context.secrets.delete('hyperoptRunner.mlflowToken');
    else await c.context.secrets.store('hyperoptRunner.mlflowToken', token);
    c.tree.resetTracking();
  },
  [COMMANDS.stopService]: async (c) => {
    if (!c.connection.serviceRecorded()) return;
    const running = c.store.activeStudies().length;
    if (running > 0) {
      const yes = 'Cancel and Stop';
      const choice = await window.showWarningMessage(`${running} stud${running === 1 ? 'y runs' : 'ies run'} in the background service; stopping it cancels them.`, yes);
      if (choice !== yes) return;
    }
    await c.connection.request({ type: 'shutdown' }).catch(() => undefined);
  },
  [COMMANDS.loadMore]: (c, ownerId) => c.tree.loadMore(typeof ownerId === 'string' ? ownerId : undefined),
  [COMMANDS.revealStudy]: (c, arg) => {
    const id = studyIdOf(c, arg);
    if (!id) return;
    c.panels.show(id);
    if (c.treeView.visible) void c.treeView.reveal(c.tree.studyRowFor(id), { select: true, focus: false }).then(undefined, () => undefined);
  },
};

export function registerCommands(controller: Controller): vscode.Disposable[] {
  return Object.entries(HANDLERS).map(([id, handler]) =>
    commands.registerCommand(id, (...args: never[]) => {
      try {
        const result = handler(controller, ...(args as unknown[]));
        if (result instanceof Promise) return result.catch((error: unknown) => void reportError(`${id}: ${errorText(error)}`));
        return result;
      } catch (error) {
        void reportError(`${id}: ${errorText(error)}`);
        return undefined;
      }
    }),
  );
}

