/**
 * The extension's one LogOutputChannel, created first in `activate`, and the one place errors
 * become notifications: each carries a "View Logs" button, and the same message is not shown twice
 * in a session.
 */
import type * as vscode from 'vscode';
import { messageOf } from '../../core/src/errors';
import { window } from './host/window';

let channel: vscode.LogOutputChannel | undefined;
const shown = new Set<string>();
/** Messages shown to the user, newest last (the integration suite reads them). */
export const shownMessages: string[] = [];

export function createLog(): vscode.LogOutputChannel {
  channel ??= window.createOutputChannel('Hyperopt Runner');
  return channel;
}

export function traceInfo(message: string): void {
  channel?.info(message);
}

export function traceWarn(message: string): void {
  channel?.warn(message);
}

export function traceError(message: string, error?: unknown): void {
  channel?.error(error === undefined ? message : `${message}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
}

export function showLog(): void {
  channel?.show(true);
}

const VIEW_LOGS = 'View Logs';

/** An error notification with "View Logs" (and `actions`); once per distinct message. */
export async function reportError(message: string, ...actions: string[]): Promise<string | undefined> {
  traceError(message);
  const choice = await notifyOnce(message, () => window.showErrorMessage(message, ...actions, VIEW_LOGS));
  if (choice === VIEW_LOGS) showLog();
  return choice === VIEW_LOGS ? undefined : choice;
}

/** An information notification (a study's outcome, say), with `actions`; once per distinct message. */
export function reportInfo(message: string, ...actions: string[]): Promise<string | undefined> {
  traceInfo(message);
  return notifyOnce(message, () => window.showInformationMessage(message, ...actions));
}

export function reportWarning(message: string, ...actions: string[]): Promise<string | undefined> {
  traceWarn(message);
  return notifyOnce(message, () => window.showWarningMessage(message, ...actions));
}

/** Shows a notification unless the same one is still open; records it for the tests. */
async function notifyOnce(message: string, show: () => Thenable<string | undefined>): Promise<string | undefined> {
  if (shown.has(message)) return undefined;
  shown.add(message);
  shownMessages.push(message);
  try {
    return await show();
  } finally {
    shown.delete(message);
  }
}

export function errorText(error: unknown): string {
  return messageOf(error);
}
