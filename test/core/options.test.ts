import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseExecutorSpec } from '../../core/src/executorSpec';
import { RunnerError } from '../../core/src/errors';
import { parseRunOptions, resolvePython } from '../../cli/src/options';
import { tempDir } from './helpers/tempDir';

function fails(fn: () => unknown, code: string, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof RunnerError, String(e));
    assert.equal(e.code, code);
    assert.match(e.message, pattern);
    assert.ok(!e.message.includes('\n'), 'one line');
    return true;
  });
}

test('executor specs: local with and without a count, ssh host lists', () => {
  assert.deepEqual(parseExecutorSpec('local:8'), { kind: 'local', workers: 8, label: 'local:8' });
  assert.equal(parseExecutorSpec('local').kind, 'local');
  assert.deepEqual(parseExecutorSpec('ssh:gpu1, gpu2'), { kind: 'ssh', hosts: ['gpu1', 'gpu2'], label: 'ssh:gpu1,gpu2' });
});

test('invalid executor values name the value and the accepted forms', () => {
  const forms = /; use local\[:N\] \(N workers\) or ssh:HOST\[,HOST\.\.\.\]$/;
  const cases: Array<[string, RegExp]> = [
    ['local:0', /^invalid --executor value 'local:0': the number of workers must be a whole number from 1 to 1024/],
    ['local:abc', /^invalid --executor value 'local:abc': the number of workers must be a whole number/],
    ['local:four', /'local:four': the number of workers/],
    ['local:-2', /'local:-2': the number of workers/],
    ['local:1.5', /'local:1.5': the number of workers/],
    ['local:1025', /'local:1025': the number of workers/],
    ['k8s:x', /'k8s:x': unknown executor kind 'k8s'/],
    ['ssh:', /^invalid --executor value 'ssh:': name at least one host/],
    ['ssh: , ', /'ssh: , ': name at least one host/],
  ];
  for (const [value, pattern] of cases) {
    fails(() => parseExecutorSpec(value), 'invalid_executor', pattern);
    fails(() => parseExecutorSpec(value), 'invalid_executor', forms);
  }
});

test('run options: a missing script, a non-Python file and bad numbers are refused', () => {
  const dir = tempDir('hr-opts-');
  writeFileSync(join(dir, 'notes.txt'), 'hello\n');
  writeFileSync(join(dir, 'ok.py'), 'print(1)\n');
  const env = { PATH: process.env.PATH };
  fails(() => parseRunOptions(['missing.py'], env, dir), 'script_not_found', /script not found: missing\.py/);
  fails(() => parseRunOptions(['notes.txt'], env, dir), 'script_not_python', /not a Python script/);
  fails(() => parseRunOptions(['ok.py', '--timeout', '-3'], env, dir), 'invalid_option', /--timeout '-3'/);
  fails(() => parseRunOptions(['ok.py', '--executor', 'local:x'], env, dir), 'invalid_executor', /local:x/);
  fails(() => parseRunOptions(['ok.py', '--bogus'], env, dir), 'invalid_option', /unknown option/);
  const options = parseRunOptions(['ok.py', '--executor', 'local:3', '--timeout', '60', '--', '--lr', '0.1'], env, dir);
  assert.deepEqual(options.scriptArgs, ['--lr', '0.1']);
  assert.equal(options.timeout, 60);
  assert.equal(options.executors[0]?.label, 'local:3');
});

test('run options: a script whose name starts with dashes, and the fix when it reads as an option', () => {
  const dir = tempDir('hr-dash-');
  for (const name of ['-study.py', '--study.py']) writeFileSync(join(dir, name), 'print(1)\n');
  const env = { PATH: process.env.PATH };
  const single = parseRunOptions(['-study.py', '--executor', 'local:1'], env, dir);
  assert.equal(single.script, join(dir, '-study.py'));
  const after = parseRunOptions(['--executor', 'local:1', '--', '--study.py', '--lr', '0.1'], env, dir);
  assert.equal(after.script, join(dir, '--study.py'));
  assert.deepEqual(after.scriptArgs, ['--lr', '0.1']);
  assert.equal(parseRunOptions(['./--study.py'], env, dir).script, join(dir, '--study.py'));
  fails(() => parseRunOptions(['--study.py'], env, dir), 'invalid_option', /^invalid --study\.py '': unknown option; a script whose name starts with dashes runs as \.\/--study\.py or after --$/);
  fails(() => parseRunOptions(['--executor', 'local:1', '--'], env, dir), 'invalid_option', /name the script to run/);
});

test('interpreter: --python wins, then HYPEROPT_RUNNER_PYTHON, then .venv, then python3', () => {
  const dir = tempDir('hr-py-');
  fails(() => resolvePython('/no/such/python', {}, dir), 'interpreter_not_found', /\/no\/such\/python.*--python/);
  fails(() => resolvePython(undefined, { HYPEROPT_RUNNER_PYTHON: 'no-such-python-xyz', PATH: '/usr/bin' }, dir), 'interpreter_not_found', /no-such-python-xyz/);
  assert.match(resolvePython(undefined, { PATH: process.env.PATH }, dir), /python3$/);
});
