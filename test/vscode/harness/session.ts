import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { format } from 'node:util';
import { chromium } from 'playwright-core';
import type { Browser, Page } from 'playwright-core';
import { startCodeServer, stopAllCodeServers } from './code-server';
import type { CodeServer } from './code-server';
import { CONSOLE_MARK } from './console-mark';
import { findTools } from './tools';
import { Workbench } from './ui';

export interface SessionOptions {
  /** The folder the window opens. */
  workspaceFolder: string;
  /** An extension folder (with package.json) loaded in development mode. */
  extensionPath?: string;
  /** The extension's test entry (`out/test/index.js` exporting `run()`); the host exits when it is done. */
  testsPath?: string;
  /** Environment variables for the extension host. */
  env?: Record<string, string>;
  /**
   * Each line the extension host's console prints (mocha's output among them) as it arrives.
   * The workbench forwards logs only when `testsPath` is set: a UI-only session gets none.
   */
  onLog?: (line: string) => void;
  /** Each line of the workbench's own log (connections, built-in features, their errors). */
  onWorkbenchLog?: (line: string) => void;
  /** code-server's own output, for debugging the harness. */
  onServerOutput?: (line: string) => void;
  viewport?: { width: number; height: number };
  /** User settings over the harness's quiet defaults (see DEFAULT_SETTINGS). */
  settings?: Record<string, unknown>;
  /** Gives up opening (everything started so far is stopped) when this aborts. */
  signal?: AbortSignal;
}

export interface Session {
  codeServer: CodeServer;
  browser: Browser;
  page: Page;
  workbench: Workbench;
  /** The extension host's console so far (as marked by suite.ts). */
  log: string[];
  /** The workbench's own log lines so far. */
  workbenchLog: string[];
  /** Resolves with the extension host's exit code (after a test run, or when it dies). */
  exited: Promise<number>;
  /** Closes the browser and kills code-server's process group. Safe to call more than once. */
  close(): Promise<void>;
}

/** The same flags the notes on real VS Code tests give: headless, offline, no first-run noise. */
export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-breakpad',
];

/**
 * The open sessions, closed on Ctrl+C / SIGTERM / SIGHUP, after which the process exits (130 or
 * 143). The handlers stay installed once the first session has opened.
 */
const open = new Set<Session>();
let signalsHooked = false;

function hookSignals(): void {
  if (signalsHooked) return;
  signalsHooked = true;
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      process.stderr.write(`\n${signal}: stopping code-server and the browser\n`);
      void Promise.allSettled([...open].map((s) => s.close()))
        .then(() => stopAllCodeServers())
        .then(() => process.exit(signal === 'SIGINT' ? 130 : 143));
    });
  }
}

/** A remote URI for a path on this machine, as the workbench page must name it. */
function remoteUri(codeServer: CodeServer, path: string): string {
  return `vscode-remote://127.0.0.1:${codeServer.port}${resolve(path)}`;
}

/**
 * Opens a real VS Code (code-server) window in headless Chromium on `workspaceFolder`, with an
 * extension in development mode and, when `testsPath` is given, its test suite running in the
 * extension host. The caller drives the page through `workbench` and must `close()`.
 */
export async function openSession(options: SessionOptions): Promise<Session> {
  const tools = findTools();
  hookSignals();
  const folder = resolve(options.workspaceFolder);
  const { signal } = options;
  const codeServer = await startCodeServer({ folder, onOutput: options.onServerOutput, settings: options.settings, signal });
  let browser: Browser | undefined;
  try {
    // Chromium's crash-report settings and dconf cache would land in the home directory.
    const home = join(codeServer.dirs.root, 'chromium-home');
    mkdirSync(home, { recursive: true });
    browser = await chromium.launch({
      executablePath: tools.chromium,
      headless: true,
      args: CHROMIUM_FLAGS,
      env: { ...process.env, HOME: home, XDG_CONFIG_HOME: join(home, '.config'), XDG_CACHE_HOME: join(home, '.cache') },
    });
    signal?.throwIfAborted();
    const context = await browser.newContext({ viewport: options.viewport ?? { width: 1600, height: 1000 } });
    const page = await context.newPage();

    const log: string[] = [];
    let settleExit: (code: number) => void = () => undefined;
    const exited = new Promise<number>((r) => {
      settleExit = r;
    });
    const workbenchLog: string[] = [];
    await page.exposeFunction('codeAutomationLog', (type: string, args: unknown) => {
      const text = format(...(Array.isArray(args) ? args : [args]));
      const fromHost = text.startsWith(CONSOLE_MARK);
      const lines = (fromHost ? text.slice(CONSOLE_MARK.length) : text).split('\n');
      for (const line of lines) {
        const shown = type === 'error' || type === 'warn' ? `[${type}] ${line}` : line;
        if (fromHost) {
          log.push(shown);
          options.onLog?.(shown);
        } else {
          workbenchLog.push(`[${type}] ${line}`);
          options.onWorkbenchLog?.(`[workbench] [${type}] ${line}`);
        }
      }
    });
    await page.exposeFunction('codeAutomationExit', (code: number) => {
      settleExit(typeof code === 'number' ? code : 1);
    });

    const payload: [string, string][] = [];
    if (options.extensionPath) payload.push(['extensionDevelopmentPath', remoteUri(codeServer, options.extensionPath)]);
    if (options.testsPath) payload.push(['extensionTestsPath', remoteUri(codeServer, options.testsPath)]);
    if (options.env && Object.keys(options.env).length > 0) payload.push(['extensionEnvironment', JSON.stringify(options.env)]);
    const query = new URLSearchParams({ folder });
    if (payload.length > 0) query.set('payload', JSON.stringify(payload));
    await page.goto(`${codeServer.url}/?${query.toString()}`, { waitUntil: 'domcontentloaded', timeout: 60_000 });
    signal?.throwIfAborted();

    const launched = browser;
    let closing: Promise<void> | undefined;
    const session: Session = {
      codeServer,
      browser: launched,
      page,
      workbench: new Workbench(page),
      log,
      workbenchLog,
      exited,
      close: () => {
        closing ??= (async () => {
          open.delete(session);
          await launched.close().catch(() => undefined);
          await codeServer.stop();
        })();
        return closing;
      },
    };
    open.add(session);
    return session;
  } catch (error) {
    await browser?.close().catch(() => undefined);
    await codeServer.stop();
    throw error;
  }
}
