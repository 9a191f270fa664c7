import * as vscode from 'vscode';

export interface Greeting {
  message: string;
  /** SMOKE_MARKER from the extension host's environment (set by the harness). */
  marker: string | undefined;
  nodeVersion: string;
  remoteName: string | undefined;
  folders: string[];
}

export function activate(context: vscode.ExtensionContext): void {
  context.subscriptions.push(
    vscode.commands.registerCommand('hyperoptRunnerSmoke.hello', (name?: unknown) => {
      const message = `Hello ${typeof name === 'string' ? name : 'there'} from the smoke extension`;
      // Not awaited: the promise settles only when the user closes the notification.
      void vscode.window.showInformationMessage(message);
      const greeting: Greeting = {
        message,
        marker: process.env.SMOKE_MARKER,
        nodeVersion: process.versions.node,
        remoteName: vscode.env.remoteName,
        folders: (vscode.workspace.workspaceFolders ?? []).map((f) => f.uri.fsPath),
      };
      return greeting;
    }),
  );
}

export function deactivate(): void {}
