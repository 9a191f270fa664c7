/**
 * The interpreter that runs a tuning script: the one the Python extension has selected (through
 * its published API), else `hyperoptRunner.python`, else the workspace's `.venv`, else `python3`
 * (as the CLI chooses). Checks that hyperopt is installed there and offers to install it.
 */
import { existsSync } from 'node:fs';
import { delimiter, isAbsolute, join, relative } from 'node:path';
import * as vscode from 'vscode';
import { PythonExtension } from '@vscode/python-extension';
import { probeInterpreter, requireHyperopt } from '../../core/src/interpreter';
import { RunnerError } from '../../core/src/errors';
import { reportError, traceInfo, traceWarn } from './log';
import { window } from './host/window';

export interface Interpreter {
  path: string;
  source: 'python-extension' | 'setting' | 'venv' | 'path';
}

async function fromPythonExtension(resource: vscode.Uri): Promise<string | undefined> {
  if (!vscode.extensions.getExtension('ms-python.python')) return undefined;
  try {
    const api = await PythonExtension.api();
    const active = api.environments.getActiveEnvironmentPath(resource);
    const resolved = await api.environments.resolveEnvironment(active);
    return resolved?.executable.uri?.fsPath ?? active.path;
  } catch (error) {
    traceWarn(`the Python extension did not name an interpreter: ${String(error)}`);
    return undefined;
  }
}

function onPath(command: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && existsSync(join(dir, command))) return join(dir, command);
  }
  return undefined;
}

function workspaceVenv(workspace: string): string {
  return process.platform === 'win32' ? join(workspace, '.venv', 'Scripts', 'python.exe') : join(workspace, '.venv', 'bin', 'python');
}

function python3OnPath(): string | undefined {
  return onPath(process.platform === 'win32' ? 'python.exe' : 'python3');
}

export async function selectInterpreter(resource: vscode.Uri, workspace: string, setting: string | undefined): Promise<Interpreter> {
  const fromExtension = await fromPythonExtension(resource);
  if (fromExtension) return { path: fromExtension, source: 'python-extension' };
  if (setting) {
    if (!existsSync(setting)) throw new RunnerError('interpreter_not_found', { python: setting, setting: 'hyperoptRunner.python' });
    return { path: setting, source: 'setting' };
  }
  const venv = workspaceVenv(workspace);
  if (existsSync(venv)) return { path: venv, source: 'venv' };
  const python3 = python3OnPath();
  if (!python3) throw new RunnerError('interpreter_not_found', { python: 'python3', surface: 'editor' });
  return { path: python3, source: 'path' };
}

const checked = new Set<string>();

const CHOSEN_BY: Record<Interpreter['source'], string> = {
  'python-extension': "the interpreter selected in the Python extension",
  setting: 'the hyperoptRunner.python setting',
  venv: "the workspace's .venv",
  path: 'python3 on PATH',
};

const SELECT_INTERPRETER = 'Select Interpreter';
const OPEN_SETTINGS = 'Open Settings';

/** The editor's ways to choose another interpreter: the Python extension's picker when it is there, the setting. */
export function interpreterActions(): string[] {
  return vscode.extensions.getExtension('ms-python.python') ? [SELECT_INTERPRETER, OPEN_SETTINGS] : [OPEN_SETTINGS];
}

export function runInterpreterAction(choice: string | undefined): void {
  if (choice === SELECT_INTERPRETER) void vscode.commands.executeCommand('python.setInterpreter');
  else if (choice === OPEN_SETTINGS) void vscode.commands.executeCommand('workbench.action.openSettings', 'hyperoptRunner.python');
}

/**
 * True when hyperopt and cloudpickle are importable; otherwise says which interpreter was used and
 * why, and offers to install them or to choose another interpreter.
 */
export async function ensureHyperopt(interpreter: Interpreter | { path: string; source?: undefined }): Promise<boolean> {
  const python = interpreter.path;
  if (checked.has(python)) return true;
  try {
    requireHyperopt(await probeInterpreter(python));
    checked.add(python);
    return true;
  } catch (error) {
    const chosen = interpreter.source ? ` (the interpreter is ${CHOSEN_BY[interpreter.source]})` : '';
    const message = `${error instanceof Error ? error.message : String(error)}${chosen}`;
    const install = 'Install hyperopt';
    const missing = error instanceof RunnerError && error.code === 'hyperopt_missing';
    // Not awaited: the run is refused now; the offer stays until the user answers it.
    void reportError(message, ...(missing ? [install] : []), ...interpreterActions()).then((choice) => {
      if (choice !== install) return runInterpreterAction(choice);
      const terminal = window.createTerminal({ name: 'Install hyperopt' });
      terminal.show();
      // Terminals take text, not an argument vector: the interpreter path is quoted for POSIX shells.
      terminal.sendText(`${shellQuote(python)} -m pip install hyperopt cloudpickle`);
      traceInfo(`installing hyperopt into ${python} in a terminal`);
    });
    return false;
  }
}

function shellQuote(text: string): string {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}

const SOURCE_NOTE: Record<Interpreter['source'], string> = { 'python-extension': ' (selected in Python)', setting: ' (setting)', venv: '', path: ' (PATH)' };

/** The interpreter in a few words, for the Runs view's title: `.venv/bin/python`, else its path, and what chose it. */
export function interpreterLabel(interpreter: Interpreter, workspace: string): string {
  const path = relative(workspace, interpreter.path);
  const shown = path && !path.startsWith('..') && !isAbsolute(path) ? path : interpreter.path;
  return `Python: ${shown}${SOURCE_NOTE[interpreter.source]}`;
}

/** Calls `listener` when the Python extension's selected interpreter changes (nothing without the extension). */
export async function onPythonExtensionChange(listener: () => void): Promise<vscode.Disposable | undefined> {
  if (!vscode.extensions.getExtension('ms-python.python')) return undefined;
  try {
    const api = await PythonExtension.api();
    return api.environments.onDidChangeActiveEnvironmentPath(() => listener());
  } catch (error) {
    traceWarn(`the Python extension's interpreter changes are not followed: ${String(error)}`);
    return undefined;
  }
}

/**
 * Lets the user choose the interpreter: the Python extension's picker when it is there (it
 * decides first), else a pick among the workspace's `.venv`, python3 on PATH and a typed path,
 * written to the hyperoptRunner.python setting of the workspace.
 */
export async function chooseInterpreter(workspace: string, setting: string | undefined): Promise<void> {
  if (vscode.extensions.getExtension('ms-python.python')) {
    await vscode.commands.executeCommand('python.setInterpreter');
    return;
  }
  const venv = workspaceVenv(workspace);
  const python3 = python3OnPath();
  type Item = vscode.QuickPickItem & { value: string | null | undefined };
  const items: Item[] = [];
  if (existsSync(venv)) items.push({ label: relative(workspace, venv), description: "the workspace's .venv", value: venv });
  if (python3) items.push({ label: python3, description: 'python3 on PATH', value: python3 });
  items.push({ label: '$(folder-opened) Enter interpreter path...', value: undefined });
  if (setting) items.push({ label: '$(discard) Clear the hyperoptRunner.python setting', description: "the workspace's .venv, else python3 on PATH", value: null });
  const picked = await window.showQuickPick(items, { placeHolder: setting ? `Interpreter for tuning scripts (now ${setting})` : 'Interpreter for tuning scripts' });
  if (!picked) return;
  let value = picked.value;
  if (value === undefined) {
    value = await window.showInputBox({
      prompt: 'Path of the Python interpreter that runs tuning scripts',
      value: setting ?? '',
      validateInput: (v) => (existsSync(v.trim()) ? undefined : 'No file at this path'),
    });
    if (value === undefined) return;
    value = value.trim();
  }
  await vscode.workspace.getConfiguration('hyperoptRunner', vscode.Uri.file(workspace)).update('python', value ?? undefined, vscode.ConfigurationTarget.Workspace);
}
