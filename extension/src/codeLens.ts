/** CodeLens over every fmin call: "Run with executor..." / "Run on <last>", or the running study's controls. */
import * as vscode from 'vscode';
import { lensesFor } from './model/lenses';
import type { StudyStore } from './model/studyStore';
import type { ScanIndex } from './scanIndex';

export class FminCodeLensProvider implements vscode.CodeLensProvider {
  private readonly changeEmitter = new vscode.EventEmitter<void>();
  readonly onDidChangeCodeLenses = this.changeEmitter.event;

  constructor(
    private readonly index: ScanIndex,
    private readonly store: StudyStore,
    private readonly lastChoice: () => string | undefined,
  ) {}

  refresh(): void {
    this.changeEmitter.fire();
  }

  async provideCodeLenses(document: vscode.TextDocument): Promise<vscode.CodeLens[]> {
    const calls = await this.index.callsIn(document);
    const specs = lensesFor(document.uri.fsPath, calls, this.store.activeStudies(), this.lastChoice());
    return specs.map((spec) => {
      const range = new vscode.Range(spec.line, 0, spec.line, 0);
      return new vscode.CodeLens(range, { title: spec.title, tooltip: spec.tooltip, command: spec.command, arguments: spec.args });
    });
  }

  dispose(): void {
    this.changeEmitter.dispose();
  }
}
