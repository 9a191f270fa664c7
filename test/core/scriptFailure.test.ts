// Where a failed script failed, read from what the real launcher prints (.venv's Python runs it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseScriptFailure } from '../../core/src/session/scriptFailure';

const PYTHON = join(__dirname, '..', '..', '.venv', 'bin', 'python');

function launch(source: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'hr-failure-'));
  try {
    const script = join(dir, 'study.py');
    writeFileSync(script, source);
    const result = spawnSync(PYTHON, ['-m', 'hyperopt_runner.launch', script], { encoding: 'utf8', env: { ...process.env, PYTHONPATH: join(__dirname, '..', '..', 'runtime', 'src') } });
    assert.notEqual(result.status, 0);
    return `${result.stdout}${result.stderr}`.replaceAll(dir, '/work');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('a syntax error: the file, its line and the message the launcher prints', () => {
  const output = launch('import os\nx = (1,\nprint(x)\n');
  assert.deepEqual(parseScriptFailure(output), { file: '/work/study.py', line: 2, message: "SyntaxError: '(' was never closed" });
});

test("an exception: the traceback's innermost frame and its last line", () => {
  const output = launch('print("before")\n\ndef f():\n    raise ValueError("bad value")\n\nf()\n');
  assert.deepEqual(parseScriptFailure(output), { file: '/work/study.py', line: 4, message: 'ValueError: bad value' });
});

test("trial output and the runner's notices are not taken for the script's failure", () => {
  assert.equal(parseScriptFailure('[trial 3] model.py:12: warning text\nhyperopt-runner: MLflow: the server went away\n'), undefined);
  assert.equal(parseScriptFailure('study 1: 3/3 done\n'), undefined);
  const output = '[trial 0] noise.py:1: x\nTraceback (most recent call last):\n  File "/w/a.py", line 9, in <module>\n    go()\nKeyError: \'k\'\n';
  assert.deepEqual(parseScriptFailure(output), { file: '/w/a.py', line: 9, message: "KeyError: 'k'" });
});

test('an exception raised inside an installed library points at the line of the script that called it', () => {
  const output = launch('import json\n\njson.loads("{")\n');
  assert.deepEqual(parseScriptFailure(output), { file: '/work/study.py', line: 3, message: 'json.decoder.JSONDecodeError: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)' });
});
