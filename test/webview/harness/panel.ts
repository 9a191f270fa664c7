/**
 * The webview test harness: builds the webview bundle, serves it from 127.0.0.1 inside the page
 * `renderWebviewHtml` makes (with its Content-Security-Policy), and opens it in headless Chromium
 * (Debian's, driven by playwright-core).
 *
 * `FakeHost` stands in for VS Code's webview host: it injects `acquireVsCodeApi()` before the
 * page loads, receives what the webview posts (and validates it with `parseWebviewToHost`, as the
 * extension does), answers `ready` with an `init`, replies to control requests, and delivers host
 * messages as `message` events. The real host side (the extension's panel) is tested in the
 * editor suite under test/vscode.
 *
 * This file stays free of DOM types (the benchmark, type-checked with Node's libs, uses it too):
 * code that runs in the page is written against `globalThis` with the few members it needs.
 */
import { mkdtempSync, readFileSync, rmSync, mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { AddressInfo } from 'node:net';
import { build } from 'esbuild';
import { type Browser, type Page, chromium } from 'playwright-core';
import {
  type HostToWebview,
  type InitMessage,
  type WebviewToHost,
  parseWebviewToHost,
} from '../../../core/src/protocol/webview';
import { createNonce, renderWebviewHtml } from '../../../core/src/protocol/webviewHtml';
import { THEMES, type ThemeName } from './themes';

export const REPO_ROOT = resolve(__dirname, '../../..');
export const ARTIFACTS = join(REPO_ROOT, 'test-results/webview');
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

let bundleDir: string | undefined;

/** Bundles webview/src/main.ts as scripts/build.mjs does (browser IIFE, es2022, minified), once per process. */
export async function buildBundle(): Promise<string> {
  if (bundleDir) return bundleDir;
  const dir = mkdtempSync(join(tmpdir(), 'hr-webview-'));
  await build({
    entryPoints: [join(REPO_ROOT, 'webview/src/main.ts')],
    outfile: join(dir, 'webview.js'),
    bundle: true,
    sourcemap: true,
    legalComments: 'none',
    logLevel: 'warning',
    platform: 'browser',
    target: 'es2022',
    format: 'iife',
    minify: true,
  });
  bundleDir = dir;
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export interface Served {
  origin: string;
  /** The nonce of the page last served. */
  nonce: () => string;
  close(): Promise<void>;
}

/** Serves the panel page and the bundle; every page load gets a fresh nonce, as VS Code's does. */
export async function serve(dir: string): Promise<Served> {
  let origin = '';
  let nonce = '';
  const files: Record<string, string> = { '/webview.js': 'text/javascript', '/webview.css': 'text/css', '/webview.js.map': 'application/json', '/webview.css.map': 'application/json' };
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] as string;
    if (path === '/' || path === '/index.html') {
      nonce = createNonce();
      const html = renderWebviewHtml({ scriptUri: `${origin}/webview.js`, styleUri: `${origin}/webview.css`, cspSource: origin, nonce });
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end(html);
      return;
    }
    const type = files[path];
    if (path === '/favicon.ico') {
      res.writeHead(204).end();
      return;
    }
    if (!type) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': type, 'cache-control': 'no-store' });
    res.end(readFileSync(join(dir, path.slice(1))));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    origin,
    nonce: () => nonce,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

export async function launch(): Promise<Browser> {
  const home = mkdtempSync(join(tmpdir(), 'hr-chromium-'));
  process.once('exit', () => rmSync(home, { recursive: true, force: true }));
  // playwright-core starts Chromium with a fresh temporary profile (user-data-dir) per launch.
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    env: { ...process.env, HOME: home, XDG_CONFIG_HOME: join(home, '.config'), XDG_CACHE_HOME: join(home, '.cache') },
  });
}

export type Reply = { ok: boolean; error?: string };

/** The fake `acquireVsCodeApi`, installed before any page script runs; state lives in sessionStorage so a reload keeps it. */
function fakeApiScript(arg: { theme: { bodyClass: string; kind: string; vars: Record<string, string> } | null }): void {
  type Doc = {
    readyState: string;
    addEventListener(t: string, f: () => void): void;
    body: { className: string; setAttribute(n: string, v: string): void };
    documentElement: { style: { setProperty(n: string, v: string): void } };
  };
  const g = globalThis as unknown as {
    acquireVsCodeApi?: () => unknown;
    __fakeHostPost(message: unknown): void;
    __postedToHost: unknown[];
    sessionStorage: { getItem(k: string): string | null; setItem(k: string, v: string): void };
    document: Doc;
  };
  const key = '__fakeVsCodeState';
  let acquired = false;
  g.__postedToHost = [];
  g.acquireVsCodeApi = () => {
    if (acquired) throw new Error('An instance of the VS Code API has already been acquired');
    acquired = true;
    return Object.freeze({
      postMessage(message: unknown) {
        const copy = JSON.parse(JSON.stringify(message)) as unknown;
        g.__postedToHost.push(copy);
        g.__fakeHostPost(copy);
      },
      getState() {
        const text = g.sessionStorage.getItem(key);
        return text === null ? undefined : (JSON.parse(text) as unknown);
      },
      setState(state: unknown) {
        g.sessionStorage.setItem(key, JSON.stringify(state));
        return state;
      },
    });
  };
  const theme = arg.theme;
  if (theme) {
    // VS Code sets the theme on the webview's document once it has loaded.
    g.document.addEventListener('DOMContentLoaded', () => {
      g.document.body.className = theme.bodyClass;
      g.document.body.setAttribute('data-vscode-theme-kind', theme.kind);
      for (const [name, value] of Object.entries(theme.vars)) g.document.documentElement.style.setProperty(name, value);
    });
  }
}

export interface PanelOptions {
  init?: InitMessage;
  theme?: ThemeName;
  viewport?: { width: number; height: number };
  /** How the host answers control requests; default `{ ok: true }`. */
  reply?: (message: Extract<WebviewToHost, { type: 'control' }>) => Reply | undefined;
}

/**
 * Stands in for VS Code's webview host (see the file comment). Records every message the webview
 * posts: `received` holds those that parse, `invalid` those the real host would reject and log.
 */
export class FakeHost {
  readonly received: WebviewToHost[] = [];
  readonly invalid: Array<{ raw: unknown; error: string }> = [];
  readonly log: string[] = [];
  private waiters: Array<() => void> = [];

  constructor(
    readonly page: Page,
    public init: InitMessage | undefined,
    public reply: PanelOptions['reply'],
  ) {}

  onPost(raw: unknown): void {
    const parsed = parseWebviewToHost(raw);
    if (!parsed.ok) {
      this.invalid.push({ raw, error: parsed.error });
      this.log.push(`rejected a message from the webview: ${parsed.error}`);
    } else {
      const message = parsed.message;
      this.received.push(message);
      if (message.type === 'ready' && this.init) void this.send(this.init);
      if (message.type === 'control') {
        const answer = this.reply ? this.reply(message) : { ok: true };
        if (answer) void this.send({ type: 'reply', id: message.id, ...answer });
      }
      if (message.type === 'rejected') this.log.push(`the webview dropped a message: ${message.error}`);
    }
    for (const wake of this.waiters.splice(0)) wake();
  }

  /** Delivers a message to the webview as VS Code does: a `message` event on its window. */
  async send(message: HostToWebview | unknown): Promise<void> {
    await this.page.evaluate((data) => {
      const g = globalThis as unknown as { dispatchEvent(e: unknown): boolean; MessageEvent: new (type: string, init: { data: unknown }) => unknown };
      g.dispatchEvent(new g.MessageEvent('message', { data }));
    }, message);
  }

  messages<K extends WebviewToHost['type']>(type: K): Array<Extract<WebviewToHost, { type: K }>> {
    return this.received.filter((m): m is Extract<WebviewToHost, { type: K }> => m.type === type);
  }

  /** Waits until `predicate` holds over what the webview has posted. */
  async waitFor<T>(predicate: () => T | undefined | false, timeoutMs = 10_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = predicate();
      if (value) return value;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for the webview; received: ${JSON.stringify(this.received.map((m) => m.type))}`);
      await new Promise<void>((r) => {
        const timer = setTimeout(r, Math.min(left, 200));
        this.waiters.push(() => {
          clearTimeout(timer);
          r();
        });
      });
    }
  }

  /** Waits for the next message of a type after the `after`-th one. */
  async next<K extends WebviewToHost['type']>(type: K, after = this.messages(type).length): Promise<Extract<WebviewToHost, { type: K }>> {
    return this.waitFor(() => this.messages(type)[after]);
  }
}

export interface Panel {
  page: Page;
  host: FakeHost;
  pageErrors: string[];
  console: string[];
  /** URLs the page loaded (requests that completed), from the first navigation on. */
  loaded: string[];
  close(): Promise<void>;
}

/** One browser and server per test file; `open` gives a fresh page with its own fake host. */
export class Harness {
  private constructor(
    readonly browser: Browser,
    readonly served: Served,
  ) {}

  static async start(): Promise<Harness> {
    const dir = await buildBundle();
    const served = await serve(dir);
    try {
      return new Harness(await launch(), served);
    } catch (error) {
      await served.close();
      throw error;
    }
  }

  async open(options: PanelOptions = {}): Promise<Panel> {
    const context = await this.browser.newContext({ viewport: options.viewport ?? { width: 1280, height: 900 } });
    const page = await context.newPage();
    const host = new FakeHost(page, options.init, options.reply);
    const pageErrors: string[] = [];
    const consoleLines: string[] = [];
    page.on('pageerror', (error) => pageErrors.push(String(error)));
    page.on('console', (msg) => consoleLines.push(`[${msg.type()}] ${msg.text()}`));
    const loaded: string[] = [];
    page.on('requestfinished', (request) => loaded.push(request.url()));
    await page.exposeFunction('__fakeHostPost', (raw: unknown) => host.onPost(raw));
    const theme = options.theme ? THEMES[options.theme] : null;
    await page.addInitScript(fakeApiScript, { theme });
    await page.goto(`${this.served.origin}/`);
    if (options.init) await page.waitForSelector(`body[data-complete="${options.init.trials.tid.length}"]`, { timeout: 15_000 });
    return { page, host, pageErrors, console: consoleLines, loaded, close: () => context.close() };
  }

  async close(): Promise<void> {
    await this.browser.close();
    await this.served.close();
  }
}

/** Switches the page to a theme the way VS Code does (body class, theme kind, variables). */
export async function applyTheme(page: Page, name: ThemeName): Promise<void> {
  const theme = THEMES[name];
  await page.evaluate((t) => {
    const g = globalThis as unknown as {
      document: { body: { className: string; setAttribute(n: string, v: string): void }; documentElement: { style: { setProperty(n: string, v: string): void } } };
    };
    for (const [n, v] of Object.entries(t.vars)) g.document.documentElement.style.setProperty(n, v);
    g.document.body.className = t.bodyClass;
    g.document.body.setAttribute('data-vscode-theme-kind', t.kind);
  }, theme);
}

export function artifactPath(name: string): string {
  mkdirSync(ARTIFACTS, { recursive: true });
  return join(ARTIFACTS, name);
}

/** Waits for the webview's frame loop to go idle (every view drawn). */
export async function settled(page: Page): Promise<void> {
  await page.evaluate(
    () =>
      new Promise<void>((resolve) => {
        const g = globalThis as unknown as { requestAnimationFrame(f: () => void): number };
        g.requestAnimationFrame(() => g.requestAnimationFrame(() => resolve()));
      }),
  );
}
