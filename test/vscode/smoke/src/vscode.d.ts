// The few parts of the VS Code API the smoke extension uses, so it needs no @types/vscode.
declare module 'vscode' {
  export interface Disposable {
    dispose(): unknown;
  }
  export interface ExtensionContext {
    readonly subscriptions: Disposable[];
  }
  export interface Uri {
    readonly fsPath: string;
  }
  export interface WorkspaceFolder {
    readonly uri: Uri;
    readonly name: string;
  }
  export enum UIKind {
    Desktop = 1,
    Web = 2,
  }
  export interface Extension<T> {
    readonly id: string;
    readonly isActive: boolean;
    activate(): PromiseLike<T>;
  }
  export namespace extensions {
    function getExtension<T = unknown>(extensionId: string): Extension<T> | undefined;
  }
  export namespace commands {
    function registerCommand(command: string, callback: (...args: unknown[]) => unknown): Disposable;
    function executeCommand<T = unknown>(command: string, ...rest: unknown[]): PromiseLike<T>;
    function getCommands(filterInternal?: boolean): PromiseLike<string[]>;
  }
  export namespace window {
    function showInformationMessage(message: string): PromiseLike<string | undefined>;
  }
  export namespace env {
    const remoteName: string | undefined;
    const uiKind: UIKind;
  }
  export namespace workspace {
    const workspaceFolders: readonly WorkspaceFolder[] | undefined;
  }
}
