/** Command and environment APIs the extension uses, behind one module so that tests can replace it. */
import * as vscode from 'vscode';

export const commands = {
  registerCommand: (id: string, handler: (...args: never[]) => unknown): vscode.Disposable => vscode.commands.registerCommand(id, handler as (...args: unknown[]) => unknown),
  executeCommand: <T = unknown>(id: string, ...args: unknown[]): Thenable<T> => vscode.commands.executeCommand<T>(id, ...args),
  setContext: (key: string, value: unknown): Thenable<unknown> => vscode.commands.executeCommand('setContext', key, value),
};

export const env = {
  openExternal: (uri: vscode.Uri): Thenable<boolean> => vscode.env.openExternal(uri),
  asExternalUri: (uri: vscode.Uri): Thenable<vscode.Uri> => vscode.env.asExternalUri(uri),
  writeClipboard: (text: string): Thenable<void> => vscode.env.clipboard.writeText(text),
};
