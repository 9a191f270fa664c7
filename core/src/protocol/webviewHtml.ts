/**
 * The trials panel's HTML, with a strict Content-Security-Policy: nothing loads but the
 * extension's own bundled script (by nonce) and stylesheet (by the webview's resource origin).
 * Node-only (no DOM types): the extension host builds the page, the webview bundle never imports this.
 */
import { randomBytes } from 'node:crypto';

export interface WebviewHtmlOptions {
  /** `webview.asWebviewUri(dist/webview.js)` as a string. */
  scriptUri: string;
  /** `webview.asWebviewUri(dist/webview.css)` as a string. */
  styleUri: string;
  /** `webview.cspSource`. */
  cspSource: string;
  /** A fresh `createNonce()` per render. */
  nonce: string;
  /** The document title (a screen reader reads it). */
  title?: string;
}

/** 128 random bits, base64: a CSP nonce. */
export function createNonce(): string {
  return randomBytes(16).toString('base64');
}

const NONCE = /^[A-Za-z0-9+/=_-]{16,}$/;
/**
 * What VS Code gives as `webview.cspSource`: one resource origin on the desktop
 * (`https://file+.vscode-resource.vscode-cdn.net`), a list in VS Code for the web and code-server
 * (`'self' https://*.vscode-cdn.net`). Each item is an origin (no quotes, semicolons or commas)
 * or the keyword 'self'; nothing else ('unsafe-inline' and the like) is let through.
 */
const SOURCE_ITEM = /^(?:[^\s;'",]+|'self')$/;

function isCspSource(text: string): boolean {
  const items = text.trim().split(/ +/);
  return text.length <= 1_000 && !/[\t\n\r\f]/.test(text) && items.length <= 8 && items.every((item) => SOURCE_ITEM.test(item));
}

function escapeAttribute(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export function contentSecurityPolicy(cspSource: string, nonce: string): string {
  return [
    "default-src 'none'",
    `script-src 'nonce-${nonce}'`,
    `style-src ${cspSource} 'nonce-${nonce}'`,
    `img-src ${cspSource} data:`,
    `font-src ${cspSource}`,
  ].join('; ');
}

export function renderWebviewHtml(options: WebviewHtmlOptions): string {
  const { scriptUri, styleUri, cspSource, nonce } = options;
  if (!NONCE.test(nonce)) throw new Error('renderWebviewHtml: the nonce must be at least 16 base64 characters');
  if (!isCspSource(cspSource)) throw new Error(`renderWebviewHtml: not a CSP source: ${cspSource}`);
  const csp = contentSecurityPolicy(cspSource, nonce);
  const title = escapeAttribute(options.title ?? 'Hyperopt trials');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${escapeAttribute(csp)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
<link rel="stylesheet" href="${escapeAttribute(styleUri)}" nonce="${escapeAttribute(nonce)}">
</head>
<body>
<div id="app" aria-busy="true"><p class="loading">Loading trials…</p></div>
<script nonce="${escapeAttribute(nonce)}" src="${escapeAttribute(scriptUri)}"></script>
</body>
</html>
`;
}
