/** The window API the extension uses, behind one module so that tests can replace it. */
import * as vscode from 'vscode';

export const window = {
  showInformationMessage: <T extends string>(message: string, ...items: T[]): Thenable<T | undefined> => vscode.window.showInformationMessage(message, ...items),
  showWarningMessage: <T extends string>(message: string, ...items: T[]): Thenable<T | undefined> => vscode.window.showWarningMessage(message, ...items),
  showErrorMessage: <T extends string>(message: string, ...items: T[]): Thenable<T | undefined> => vscode.window.showErrorMessage(message, ...items),
  showQuickPick: <T extends vscode.QuickPickItem>(items: readonly T[] | Thenable<readonly T[]>, options?: vscode.QuickPickOptions): Thenable<T | undefined> =>
    vscode.window.showQuickPick(items, options),
  showInputBox: (options: vscode.InputBoxOptions, token?: vscode.CancellationToken): Thenable<string | undefined> => vscode.window.showInputBox(options, token),
  showModalWarning: <T extends string>(message: string, detail: string, ...items: T[]): Thenable<T | undefined> => vscode.window.showWarningMessage(message, { modal: true, detail }, ...items),
  withProgress: <R>(options: vscode.ProgressOptions, task: (progress: vscode.Progress<{ message?: string; increment?: number }>, token: vscode.CancellationToken) => Thenable<R>): Thenable<R> =>
    vscode.window.withProgress(options, task),
  createStatusBarItem: (id: string, alignment: vscode.StatusBarAlignment, priority: number): vscode.StatusBarItem => vscode.window.createStatusBarItem(id, alignment, priority),
  createOutputChannel: (name: string): vscode.LogOutputChannel => vscode.window.createOutputChannel(name, { log: true }),
  createTreeView: <T>(id: string, options: vscode.TreeViewOptions<T>): vscode.TreeView<T> => vscode.window.createTreeView(id, options),
  createTerminal: (options: vscode.TerminalOptions): vscode.Terminal => vscode.window.createTerminal(options),
  createWebviewPanel: (viewType: string, title: string, column: vscode.ViewColumn | { viewColumn: vscode.ViewColumn; preserveFocus?: boolean }, options: vscode.WebviewPanelOptions & vscode.WebviewOptions): vscode.WebviewPanel =>
    vscode.window.createWebviewPanel(viewType, title, column, options),
  registerWebviewPanelSerializer: (viewType: string, serializer: vscode.WebviewPanelSerializer): vscode.Disposable => vscode.window.registerWebviewPanelSerializer(viewType, serializer),
  showTextDocument: (uri: vscode.Uri, options?: vscode.TextDocumentShowOptions): Thenable<vscode.TextEditor> => vscode.window.showTextDocument(uri, options),
  get tabGroups(): vscode.TabGroups {
    return vscode.window.tabGroups;
  },
  get activeTextEditor(): vscode.TextEditor | undefined {
    return vscode.window.activeTextEditor;
  },
};
