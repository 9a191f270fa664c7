import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LineSplitter } from '../../core/src/protocol/ndjson';

function split(chunks: readonly string[]): { lines: string[]; rest: string; pendingLength: number } {
  const splitter = new LineSplitter();
  const lines: string[] = [];
  for (const chunk of chunks) splitter.push(chunk, (line) => lines.push(line));
  return { lines, rest: splitter.rest(), pendingLength: splitter.pendingLength };
}

test('lines split anywhere across chunks come out whole, in order, without the empty ones', () => {
  const text = '{"a":1}\n{"b":2}\n\n{"c":3}\n{"partial"';
  for (let size = 1; size <= text.length; size++) {
    const chunks: string[] = [];
    for (let i = 0; i < text.length; i += size) chunks.push(text.slice(i, i + size));
    const { lines, rest, pendingLength } = split(chunks);
    assert.deepEqual(lines, ['{"a":1}', '{"b":2}', '{"c":3}'], `chunks of ${size}`);
    assert.equal(rest, '{"partial"');
    assert.equal(pendingLength, rest.length);
  }
});

test('a 10 MB line in 64 KB chunks arrives once and whole; the next line starts clean', () => {
  const big = 'x'.repeat(10 * 1024 * 1024);
  const text = `${big}\nnext\n`;
  const chunks: string[] = [];
  for (let i = 0; i < text.length; i += 64 * 1024) chunks.push(text.slice(i, i + 64 * 1024));
  const { lines, rest, pendingLength } = split(chunks);
  assert.equal(lines.length, 2);
  assert.ok(lines[0] === big, `first line of ${lines[0]?.length} characters`);
  assert.equal(lines[1], 'next');
  assert.equal(rest, '');
  assert.equal(pendingLength, 0);
});

test('the pending length grows with an unfinished line and resets at its newline', () => {
  const splitter = new LineSplitter();
  const lines: string[] = [];
  splitter.push('abc', (l) => lines.push(l));
  splitter.push('def', (l) => lines.push(l));
  assert.equal(splitter.pendingLength, 6);
  splitter.push('g\nhi', (l) => lines.push(l));
  assert.deepEqual(lines, ['abcdefg']);
  assert.equal(splitter.pendingLength, 2);
  assert.equal(splitter.rest(), 'hi');
});
