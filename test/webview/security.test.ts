// The panel's Content-Security-Policy in headless Chromium, on the page renderWebviewHtml makes
// (the fake host stands in for VS Code's webview host; the real one is tested in the editor suite).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Harness, type Panel } from './harness/panel';
import { makeStudy } from './fixtures/study';

let harness: Harness;
before(async () => {
  harness = await Harness.start();
});
after(async () => {
  await harness?.close();
});

interface Violation {
  directive: string;
  blocked: string;
}

describe('content security policy', () => {
  let panel: Panel;
  before(async () => {
    panel = await harness.open({ init: makeStudy() });
    await panel.page.evaluate(`document.addEventListener('securitypolicyviolation', (e) => {
      window.__violations.push({ directive: e.effectiveDirective, blocked: e.blockedURI });
    })`);
  });
  after(async () => {
    await panel?.close();
  });

  // Page code is given as strings: the test runner's transpiler would otherwise add helpers the page lacks.
  async function collectViolations(attack: string): Promise<Violation[]> {
    await panel.page.evaluate('window.__violations = []');
    // The attack runs as page code would (evaluate itself is not subject to the page's CSP).
    await panel.page.evaluate(attack);
    await panel.page.waitForTimeout(300);
    return (await panel.page.evaluate('window.__violations')) as Violation[];
  }

  test('drawing the whole study caused no violation', async () => {
    // The panel has rendered; a violation during load would have been logged by Chromium.
    assert.ok(!panel.console.some((line) => /Content Security Policy/i.test(line)), panel.console.join('\n'));
  });

  test('an injected inline script is blocked', async () => {
    const violations = await collectViolations(`{
      const s = document.createElement('script');
      s.textContent = 'window.__pwned = true';
      document.body.append(s);
    }`);
    assert.deepEqual(violations.map((v) => v.directive), ['script-src-elem']);
    assert.equal(violations[0]?.blocked, 'inline');
    assert.equal(await panel.page.evaluate('window.__pwned'), undefined);
  });

  test('an inline event handler and a script from elsewhere are blocked', async () => {
    const violations = await collectViolations(`{
      const img = document.createElement('img');
      img.setAttribute('onerror', 'window.__pwned = true');
      img.src = 'data:image/png;base64,broken';
      document.body.append(img);
      const s = document.createElement('script');
      s.src = 'http://127.0.0.2:9/evil.js';
      document.body.append(s);
    }`);
    const directives = violations.map((v) => v.directive).sort();
    assert.ok(directives.includes('script-src-attr'), JSON.stringify(violations));
    assert.ok(directives.includes('script-src-elem'), JSON.stringify(violations));
    assert.equal(await panel.page.evaluate('window.__pwned'), undefined);
  });

  test('inline styles from markup and stylesheets from elsewhere are blocked', async () => {
    const violations = await collectViolations(`{
      const div = document.createElement('div');
      div.innerHTML = '<p style="color: red">x</p>';
      document.body.append(div);
      const link = document.createElement('link');
      link.rel = 'stylesheet';
      link.href = 'http://127.0.0.2:9/evil.css';
      document.head.append(link);
    }`);
    const directives = violations.map((v) => v.directive).sort();
    assert.deepEqual(directives, ['style-src-attr', 'style-src-elem']);
  });

  test('the page loaded nothing but its own files, even under attack', () => {
    const origin = harness.served.origin;
    const own = panel.loaded.filter((url) => !url.startsWith('data:'));
    assert.deepEqual(own.map((url) => url.slice(origin.length)).sort(), ['/', '/webview.css', '/webview.js']);
  });
});
