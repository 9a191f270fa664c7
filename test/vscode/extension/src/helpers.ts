import { readdirSync, readFileSync } from 'node:fs';
import * as vscode from 'vscode';
import type { HyperoptRunnerApi } from '../../../../extension/src/extension';
import type { Controller } from '../../../../extension/src/controller';

export const EXTENSION_ID = 'hyperopt-runner.hyperopt-runner';

export async function api(): Promise<HyperoptRunnerApi> {
  const extension = vscode.extensions.getExtension<HyperoptRunnerApi>(EXTENSION_ID);
  if (!extension) throw new Error(`${EXTENSION_ID} is not loaded`);
  return extension.isActive ? extension.exports : extension.activate();
}

export async function controller(): Promise<Controller> {
  const c = (await api()).controller;
  if (!c) throw new Error('no workspace folder: the extension has no controller');
  return c;
}

export function folder(): string {
  const f = vscode.workspace.workspaceFolders?.[0];
  if (!f) throw new Error('no workspace folder');
  return f.uri.fsPath;
}

export async function until<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Processes whose command line or environment mentions `path` (scripts and workers of the workspace). */
export function processesMentioning(path: string, except: number[] = []): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || except.includes(Number(entry)) || Number(entry) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      const environ = readFileSync(`/proc/${entry}/environ`, 'utf8');
      // The background service itself, code-server and the extension host mention the folder too.
      if (/hyperopt_runner\.(launch|worker)/.test(cmdline) && (cmdline.includes(path) || environ.includes(path))) found.push(Number(entry));
    } catch {
      // gone
    }
  }
  return found;
}
