// The host <-> webview protocol and the panel HTML, in Node: what the extension host accepts and
// rejects, and the page it serves.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  HostToWebview,
  WEBVIEW_PROTOCOL_VERSION,
  type WebviewToHost,
  decodeTrials,
  encodeTrials,
  parseHostToWebview,
  parseWebviewToHost,
  trialColumnsProblem,
} from '../../core/src/protocol/webview';
import { contentSecurityPolicy, createNonce, renderWebviewHtml } from '../../core/src/protocol/webviewHtml';
import { makeStudy, rowsOf, trialsMessage } from './fixtures/study';

const VALID: WebviewToHost[] = [
  { type: 'ready', protocol: WEBVIEW_PROTOCOL_VERSION },
  { type: 'control', id: 'a-1', request: { action: 'stop' } },
  { type: 'control', id: 'a-2', request: { action: 'cancel' } },
  { type: 'control', id: 'a-3', request: { action: 'setTimeout', seconds: 2700 } },
  { type: 'control', id: 'a-4', request: { action: 'setTimeout', seconds: null } },
  { type: 'control', id: 'a-5', request: { action: 'extendTimeout', seconds: 600 } },
  { type: 'control', id: 'a-6', request: { action: 'setParallelism', n: 3 } },
  { type: 'control', id: 'a-7', request: { action: 'setPolicy', lossThreshold: 0.05, noProgressTrials: 20 } },
  { type: 'control', id: 'a-8', request: { action: 'setPolicy', lossThreshold: null, noProgressTrials: null } },
  { type: 'selectTrial', tid: 12 },
  { type: 'selectTrial', tid: null },
  { type: 'openLogs', tid: 3 },
  { type: 'openRun', tid: 3 },
  { type: 'rejected', error: 'invalid "trials" message', messageType: 'trials' },
];

test('the host accepts every message the webview sends, unchanged', () => {
  for (const message of VALID) {
    const parsed = parseWebviewToHost(JSON.parse(JSON.stringify(message)));
    assert.ok(parsed.ok, JSON.stringify(message));
    assert.deepEqual(parsed.message, message);
  }
});

test('the host rejects unknown and invalid messages with a short reason', () => {
  const invalid: Array<[unknown, RegExp]> = [
    [null, /not an object/],
    ['ready', /not an object/],
    [[{ type: 'ready' }], /not an object/],
    [{ protocol: 1 }, /no message type/],
    [{ type: 'shutdown' }, /invalid "shutdown" message/],
    [{ type: 'ready' }, /protocol/],
    [{ type: 'control', request: { action: 'stop' } }, /id/],
    [{ type: 'control', id: '', request: { action: 'stop' } }, /id/],
    [{ type: 'control', id: 'x', request: { action: 'reboot' } }, /request/],
    [{ type: 'control', id: 'x', request: { action: 'setParallelism', n: 0 } }, /request\.n/],
    [{ type: 'control', id: 'x', request: { action: 'setParallelism', n: 2.5 } }, /request\.n/],
    [{ type: 'control', id: 'x', request: { action: 'setTimeout', seconds: -5 } }, /request\.seconds/],
    [{ type: 'control', id: 'x', request: { action: 'setTimeout' } }, /request\.seconds/],
    [{ type: 'control', id: 'x', request: { action: 'extendTimeout', seconds: null } }, /request\.seconds/],
    [{ type: 'control', id: 'x', request: { action: 'setPolicy', lossThreshold: 'low', noProgressTrials: null } }, /lossThreshold/],
    [{ type: 'openLogs', tid: -1 }, /tid/],
    [{ type: 'openRun', tid: '3' }, /tid/],
    [{ type: 'selectTrial', tid: 1.5 }, /tid/],
  ];
  for (const [raw, reason] of invalid) {
    const parsed = parseWebviewToHost(raw);
    assert.equal(parsed.ok, false, JSON.stringify(raw));
    if (!parsed.ok) {
      assert.match(parsed.error, reason, JSON.stringify(raw));
      assert.ok(parsed.error.length <= 1_100);
    }
  }
  // A huge bogus message does not end up in the log line.
  const big = parseWebviewToHost({ type: 'openLogs', tid: 'x'.repeat(100_000) });
  assert.equal(big.ok, false);
  if (!big.ok) assert.ok(big.error.length < 500);
});

test('the webview accepts the host messages and rejects malformed ones', () => {
  const init = makeStudy();
  assert.ok(parseHostToWebview(JSON.parse(JSON.stringify(init))).ok);
  assert.ok(parseHostToWebview(trialsMessage(rowsOf(init).slice(0, 3))).ok);
  assert.ok(parseHostToWebview({ type: 'state', status: init.status }).ok);
  assert.ok(parseHostToWebview({ type: 'importances', method: 'ped-anova', trials: 3, items: [{ param: 'x', importance: 1, score: 2 }] }).ok);
  assert.ok(parseHostToWebview({ type: 'select', tid: null }).ok);
  assert.ok(parseHostToWebview({ type: 'reply', id: 'a-1', ok: false, error: 'The study has ended.' }).ok);
  assert.equal(parseHostToWebview({ type: 'trials', trials: [{ tid: 1, state: 'exploded', params: {} }] }).ok, false);
  const bad = (change: (t: ReturnType<typeof trialsMessage>['trials']) => void): boolean => {
    const message = JSON.parse(JSON.stringify(trialsMessage(rowsOf(init).slice(0, 3)))) as ReturnType<typeof trialsMessage>;
    change(message.trials);
    return parseHostToWebview(message).ok;
  };
  assert.equal(bad(() => undefined), true);
  assert.equal(bad((t) => t.state.pop()), false, 'columns of different lengths');
  assert.equal(bad((t) => (t.state[1] = 'exploded' as never)), false);
  assert.equal(bad((t) => (t.tid[0] = -1)), false);
  assert.equal(bad((t) => (t.loss[0] = 'lots' as never)), false);
  assert.equal(bad((t) => (t.startedAt[0] = Number.NaN)), false, 'NaN does not survive JSON, but a structured clone would carry it');
  assert.equal(bad((t) => ((t.params.x as unknown[])[2] = { nested: true })), false);
  assert.equal(bad((t) => t.errors.push({ i: 3, type: 'E', message: 'm' })), false, 'an error for a trial that is not there');
  assert.equal(parseHostToWebview({ type: 'state', status: { ...init.status, counts: { total: -1 } } }).ok, false);
  assert.equal(parseHostToWebview({ type: 'importances', method: 'magic', trials: 1, items: [] }).ok, false);
  assert.equal(parseHostToWebview({ type: 'init', protocol: 1 }).ok, false);
  // Every message type the union knows is covered above.
  assert.deepEqual(
    HostToWebview.options.map((o) => o.shape.type.value).sort(),
    ['importances', 'init', 'reply', 'select', 'state', 'trials'],
  );
});

test('trials survive the column encoding unchanged', () => {
  const rows = rowsOf(makeStudy());
  rows[3] = { ...(rows[3] as (typeof rows)[number]), runId: 'run-3' };
  const back = decodeTrials(encodeTrials(rows));
  assert.deepEqual(back, rows);
  const parsed = parseHostToWebview(JSON.parse(JSON.stringify({ type: 'trials', trials: encodeTrials(rows) })));
  assert.ok(parsed.ok);
  assert.deepEqual(parsed.ok && parsed.message.type === 'trials' ? decodeTrials(parsed.message.trials) : undefined, rows);
});

test('the hand-written check of the trial columns rejects what a schema would, and says where', () => {
  const init = makeStudy({ trials: 20 });
  type Columns = ReturnType<typeof trialsMessage>['trials'];
  const columns = (): Columns => JSON.parse(JSON.stringify(init.trials)) as Columns;
  assert.equal(trialColumnsProblem(columns()), undefined);
  assert.equal(trialColumnsProblem(encodeTrials([])), undefined, 'no trials at all');
  const withRun = columns();
  withRun.runIds.push({ i: 19, runId: 'r'.repeat(500) });
  assert.equal(trialColumnsProblem(withRun), undefined, 'a run id of the longest name');
  const nonFinite = columns();
  nonFinite.loss[0] = 'NaN';
  nonFinite.loss[1] = '-Infinity';
  nonFinite.params.x![0] = null;
  nonFinite.params.optimizer![1] = true;
  assert.equal(trialColumnsProblem(nonFinite), undefined, 'spelled-out losses, null and boolean parameter values');

  const cases: Array<[string, (c: Columns) => void, RegExp]> = [
    ['trials not an object', () => undefined, /expected trial columns/],
    ['a column missing', (c) => delete (c as Partial<Columns>).slot, /^slot: expected an array of slots$/],
    ['a column not an array', (c) => ((c as unknown as Record<string, unknown>).endedAt = { 0: 1 }), /^endedAt: expected an array of times$/],
    ['a fractional tid', (c) => (c.tid[4] = 4.5), /^tid: expected an array of trial ids \(entry 4 is not\)$/],
    ['a tid as text', (c) => ((c.tid as unknown[])[2] = '2'), /^tid: .*entry 2/],
    ['an unknown state', (c) => ((c.state as unknown[])[3] = 'paused'), /^state: expected an array of trial states \(entry 3/],
    ['an infinite loss as a number', (c) => (c.loss[5] = Infinity), /^loss: .*entry 5/],
    ['a loss in words', (c) => ((c.loss as unknown[])[6] = 'low'), /^loss: .*entry 6/],
    ['a status too long', (c) => (c.status[7] = 's'.repeat(501)), /^status: expected an array of statuses \(entry 7/],
    ['a slot that is a number', (c) => ((c.slot as unknown[])[8] = 3), /^slot: .*entry 8/],
    ['a negative start', (c) => (c.startedAt[9] = -1), /^startedAt: .*entry 9/],
    ['an end that is NaN', (c) => (c.endedAt[10] = Number.NaN), /^endedAt: .*entry 10/],
    ['a fractional attempt', (c) => (c.attempt[11] = 1.5), /^attempt: expected an array of attempts \(entry 11/],
    ['columns of different lengths', (c) => c.attempt.pop(), /^attempt: has 19 entries for 20 trials$/],
    ['parameters not a record', (c) => ((c as unknown as Record<string, unknown>).params = [1]), /^params: expected a record/],
    ['a parameter value that is an object', (c) => ((c.params.x as unknown[])[12] = { nested: true }), /^params\.x: expected an array of parameter values \(entry 12/],
    ['an infinite parameter value', (c) => (c.params.lr![13] = -Infinity), /^params\.lr: .*entry 13/],
    ['a parameter text too long', (c) => (c.params.optimizer![14] = 'o'.repeat(4_001)), /^params\.optimizer: .*entry 14/],
    ['a parameter column too short', (c) => c.params.layers!.pop(), /^params\.layers: has 19 entries for 20 trials$/],
    ['a parameter name too long', (c) => (c.params['p'.repeat(501)] = new Array(20).fill(1)), /^params: a parameter name is longer/],
    ['errors not an array', (c) => ((c as unknown as Record<string, unknown>).errors = {}), /^errors: expected an array$/],
    ['an error without its message', (c) => (c.errors as unknown[]).push({ i: 0, type: 'E' }), /^errors\.\d+: expected \{ i, type, message \}$/],
    ['an error message too long', (c) => c.errors.push({ i: 0, type: 'E', message: 'm'.repeat(4_001) }), /^errors\.\d+:/],
    ['an error for a trial that is not there', (c) => c.errors.push({ i: 20, type: 'E', message: 'm' }), /^errors: index out of range$/],
    ['a run id at a fractional index', (c) => c.runIds.push({ i: 0.5, runId: 'r' }), /^runIds\.0: expected \{ i, runId \}$/],
    ['a run id that is a number', (c) => (c.runIds as unknown[]).push({ i: 0, runId: 7 }), /^runIds\.0:/],
    ['a run id for a trial that is not there', (c) => c.runIds.push({ i: 99, runId: 'r' }), /^runIds: index out of range$/],
  ];
  for (const [what, change, reason] of cases) {
    let c: Columns | undefined = columns();
    if (what === 'trials not an object') c = undefined;
    else change(c);
    const problem = trialColumnsProblem(c);
    assert.ok(problem, what);
    assert.match(`${problem.path.join('.')}${problem.path.length > 0 ? ': ' : ''}${problem.message}`, reason, what);
    // The same rejection through the message parser, with the path under `trials`.
    const parsed = parseHostToWebview({ type: 'trials', trials: c });
    assert.equal(parsed.ok, false, what);
    if (!parsed.ok) assert.match(parsed.error, /^invalid "trials" message: trials/, what);
  }
  // A message of another type with such columns is refused the same way (`init` carries them too).
  const badInit = JSON.parse(JSON.stringify(init)) as typeof init;
  badInit.trials.tid[0] = -1;
  const parsed = parseHostToWebview(badInit);
  assert.equal(parsed.ok, false);
  if (!parsed.ok) assert.match(parsed.error, /trials\.tid: expected an array of trial ids \(entry 0 is not\)/);
});

test('the panel HTML has a strict CSP with a fresh nonce and only the extension’s own files', () => {
  const nonce = createNonce();
  assert.notEqual(nonce, createNonce());
  const cspSource = 'https://file+.vscode-resource.vscode-cdn.net';
  const html = renderWebviewHtml({ scriptUri: `${cspSource}/ext/dist/webview.js`, styleUri: `${cspSource}/ext/dist/webview.css`, cspSource, nonce });
  const csp = `default-src 'none'; script-src 'nonce-${nonce}'; style-src ${cspSource} 'nonce-${nonce}'; img-src ${cspSource} data:; font-src ${cspSource}`;
  assert.equal(contentSecurityPolicy(cspSource, nonce), csp);
  assert.ok(html.includes(`<meta http-equiv="Content-Security-Policy" content="${csp.replace(/'/g, "'")}">`));
  assert.match(html, new RegExp(`<script nonce="${nonce.replace(/[+/=]/g, '\\$&')}" src="${cspSource.replace(/[.+]/g, '\\$&')}/ext/dist/webview\\.js"></script>`));
  assert.equal((html.match(/<script/g) ?? []).length, 1, 'one script, the bundle');
  assert.doesNotMatch(html, /unsafe-inline|unsafe-eval|\*/);
  assert.doesNotMatch(html, /style="/, 'no inline style attributes');
});

test('the HTML builder escapes what it is given and refuses a weak nonce or a bad CSP source', () => {
  const html = renderWebviewHtml({ scriptUri: 'x" onload="alert(1)', styleUri: 's.css', cspSource: 'https://a.b', nonce: createNonce(), title: '<b>study</b>' });
  assert.ok(html.includes('x&quot; onload=&quot;alert(1)'));
  assert.ok(html.includes('&lt;b&gt;study&lt;/b&gt;'));
  assert.throws(() => renderWebviewHtml({ scriptUri: 'a', styleUri: 'b', cspSource: 'https://a.b', nonce: 'abc' }), /nonce/);
  assert.throws(() => renderWebviewHtml({ scriptUri: 'a', styleUri: 'b', cspSource: "https://a.b; script-src 'unsafe-inline'", nonce: createNonce() }), /CSP source/);
  assert.throws(() => renderWebviewHtml({ scriptUri: 'a', styleUri: 'b', cspSource: "'self' 'unsafe-inline'", nonce: createNonce() }), /CSP source/);
  assert.throws(() => renderWebviewHtml({ scriptUri: 'a', styleUri: 'b', cspSource: 'https://a.b\nscript-src *', nonce: createNonce() }), /CSP source/);
});

test('the panel HTML takes the CSP source VS Code for the web and code-server give (a list with \'self\')', () => {
  const nonce = createNonce();
  const cspSource = "'self' https://*.vscode-cdn.net";
  const html = renderWebviewHtml({ scriptUri: 'https://file+.vscode-resource.vscode-cdn.net/ext/dist/webview.js', styleUri: 'https://file+.vscode-resource.vscode-cdn.net/ext/dist/webview.css', cspSource, nonce });
  assert.equal(contentSecurityPolicy(cspSource, nonce), `default-src 'none'; script-src 'nonce-${nonce}'; style-src ${cspSource} 'nonce-${nonce}'; img-src ${cspSource} data:; font-src ${cspSource}`);
  assert.ok(html.includes(`content="default-src 'none'; script-src 'nonce-${nonce}'; style-src ${cspSource} `));
  assert.doesNotMatch(html, /unsafe-inline|unsafe-eval/);
});
