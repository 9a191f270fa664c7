/** The workspace API the extension uses, behind one module so that tests can replace it. */
import * as vscode from 'vscode';

export const workspace = {
  get folders(): readonly vscode.WorkspaceFolder[] {
    return vscode.workspace.workspaceFolders ?? [];
  },
  getWorkspaceFolder: (uri: vscode.Uri): vscode.WorkspaceFolder | undefined => vscode.workspace.getWorkspaceFolder(uri),
  getConfiguration: (section: string, scope?: vscode.ConfigurationScope): vscode.WorkspaceConfiguration => vscode.workspace.getConfiguration(section, scope),
  onDidChangeConfiguration: (listener: (e: vscode.ConfigurationChangeEvent) => unknown): vscode.Disposable => vscode.workspace.onDidChangeConfiguration(listener),
  onDidSaveTextDocument: (listener: (d: vscode.TextDocument) => unknown): vscode.Disposable => vscode.workspace.onDidSaveTextDocument(listener),
  onDidChangeTextDocument: (listener: (e: vscode.TextDocumentChangeEvent) => unknown): vscode.Disposable => vscode.workspace.onDidChangeTextDocument(listener),
  findFiles: (include: vscode.GlobPattern, exclude?: vscode.GlobPattern | null, maxResults?: number, token?: vscode.CancellationToken): Thenable<vscode.Uri[]> =>
    vscode.workspace.findFiles(include, exclude, maxResults, token),
  createFileSystemWatcher: (pattern: vscode.GlobPattern): vscode.FileSystemWatcher => vscode.workspace.createFileSystemWatcher(pattern),
  openTextDocument: (uri: vscode.Uri): Thenable<vscode.TextDocument> => vscode.workspace.openTextDocument(uri),
  get textDocuments(): readonly vscode.TextDocument[] {
    return vscode.workspace.textDocuments;
  },
};
