/**
 * A script that exited with an error shows where, as a problem at that line (Problems view, a
 * squiggle in the editor) until the file is edited or run again.
 */
import { open } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import * as vscode from 'vscode';
import { parseScriptFailure, type ScriptFailure } from '../../core/src/session/scriptFailure';
import { workspace } from './host/workspace';

/** What is read of the driver's log: its end, where Python prints the failure. */
const TAIL_BYTES = 64 * 1024;

async function logTail(path: string): Promise<string> {
  const file = await open(path, 'r');
  try {
    const { size } = await file.stat();
    const length = Math.min(size, TAIL_BYTES);
    const buffer = Buffer.alloc(length);
    await file.read(buffer, 0, length, size - length);
    return buffer.toString('utf8');
  } finally {
    await file.close();
  }
}

export class ScriptFailures implements vscode.Disposable {
  private readonly problems = vscode.languages.createDiagnosticCollection('hyperopt-runner');
  private readonly onEdit: vscode.Disposable;

  constructor() {
    this.onEdit = workspace.onDidChangeTextDocument((e) => {
      if (e.contentChanges.length > 0) this.problems.delete(e.document.uri);
    });
  }

  /** Reads where the run's script failed from its log; records it as a problem and returns it. */
  async record(run: { driverLog: string; cwd: string }): Promise<(ScriptFailure & { uri: vscode.Uri }) | undefined> {
    let failure: ScriptFailure | undefined;
    try {
      failure = parseScriptFailure(await logTail(run.driverLog));
    } catch {
      return undefined; // No log (the run never started its script): nothing to point at.
    }
    if (!failure) return undefined;
    const uri = vscode.Uri.file(isAbsolute(failure.file) ? failure.file : resolve(run.cwd, failure.file));
    const line = Math.max(0, failure.line - 1);
    const problem = new vscode.Diagnostic(new vscode.Range(line, 0, line, Number.MAX_SAFE_INTEGER), failure.message, vscode.DiagnosticSeverity.Error);
    problem.source = 'Hyperopt Runner';
    this.problems.set(uri, [problem]);
    return { ...failure, uri };
  }

  /** A new run of the script: its last failure no longer stands. */
  clear(script: vscode.Uri): void {
    this.problems.delete(script);
  }

  dispose(): void {
    this.onEdit.dispose();
    this.problems.dispose();
  }
}
