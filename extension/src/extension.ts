/**
 * Hyperopt Runner for VS Code. Activation is lazy (Python files, the Runs view, the commands,
 * a workspace whose background service runs) and cheap: it wires the parts and returns; the
 * workspace scan, the journals and the service connection come after.
 */
import type * as vscode from 'vscode';
import { registerCommands } from './commands';
import { COMMANDS } from './commandIds';
import { Controller } from './controller';
import { commands } from './host/commands';
import { window } from './host/window';
import { workspace } from './host/workspace';
import { createLog, shownMessages, traceInfo } from './log';

/** What the extension exports: used by the integration suite. */
export interface HyperoptRunnerApi {
  controller: Controller | undefined;
  /** Milliseconds `activate` took. */
  activationMs: number;
  /** Error and warning messages shown so far. */
  shownMessages: readonly string[];
}

export function activate(context: vscode.ExtensionContext): HyperoptRunnerApi {
  const started = performance.now();
  context.subscriptions.push(createLog());
  const folder = workspace.folders.find((f) => f.uri.scheme === 'file');
  let controller: Controller | undefined;
  if (folder) {
    controller = new Controller(context, folder.uri.fsPath);
    context.subscriptions.push(controller, ...registerCommands(controller));
    controller.start();
  } else {
    // Without a folder there is nowhere to keep studies: every command says so.
    for (const id of Object.values(COMMANDS)) {
      context.subscriptions.push(commands.registerCommand(id, () => void window.showInformationMessage('Open a folder to run Hyperopt tuning scripts.')));
    }
  }
  const activationMs = performance.now() - started;
  traceInfo(`activated in ${activationMs.toFixed(1)} ms${folder ? ` for ${folder.uri.fsPath}` : ' (no folder open)'}`);
  return { controller, activationMs, shownMessages };
}

export function deactivate(): void {
  // The background service keeps running studies; it ends itself once idle.
}
