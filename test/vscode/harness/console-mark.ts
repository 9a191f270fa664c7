import { format } from 'node:util';

/**
 * The workbench page receives the extension host's console and the workbench's own log through
 * the same channel (`codeAutomationLog`), with nothing to tell them apart. suite.ts makes every
 * console line of the extension host start with this invisible character; the harness strips it
 * and streams those lines, and keeps the workbench's own lines aside.
 */
export const CONSOLE_MARK = '\u2063';

const METHODS = ['log', 'info', 'warn', 'error', 'debug'] as const;
let marked = false;

/**
 * Marks console output in this process (the extension host), from now on. VS Code's extension
 * host makes `console.log` and friends non-configurable (they forward to the workbench), so the
 * global `console` object is replaced by one that marks each line and hands it to VS Code's.
 * Code that kept a reference to a console method before this call is not marked. Idempotent.
 */
export function markConsole(): void {
  if (marked) return;
  marked = true;
  const host = globalThis.console;
  const marking = Object.create(host) as Console;
  for (const method of METHODS) {
    // defineProperty, not assignment: assigning would call the no-op setter `marking` inherits.
    // Formatted here: the line crosses to the page as one string, exactly as Node prints it.
    Object.defineProperty(marking, method, {
      value: (...args: unknown[]) => host[method](`${CONSOLE_MARK}%s`, format(...args)),
      writable: true,
      configurable: true,
    });
  }
  globalThis.console = marking;
}
