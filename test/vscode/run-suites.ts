// Runs the editor tier: the command check, type checks of the extension and its suites, every
// extension suite in a real VS Code (code-server + headless Chromium) and the UI check, then
// prints one plain `N passed, N failed` line over all of them.
//   node --import tsx test/vscode/run-suites.ts
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';
import { readdirSync } from 'node:fs';
import { runExtensionTests } from './harness/run';
import { buildSuite } from './extension/build';
import { makeWorkspace, removeWorkspace } from './extension/workspace';

const ROOT = resolve(__dirname, '../..');
let passed = 0;
let failed = 0;
const timings: string[] = [];

function count(name: string, p: number, f: number, ms: number): void {
  passed += p;
  failed += f;
  timings.push(`${name}: ${p} passed, ${f} failed in ${(ms / 1000).toFixed(1)} s`);
}

function command(name: string, program: string, args: string[]): void {
  const t0 = Date.now();
  const result = spawnSync(program, args, { cwd: ROOT, stdio: 'inherit' });
  const ok = result.status === 0;
  if (!ok) console.log(`not ok - ${name}`);
  count(name, ok ? 1 : 0, ok ? 0 : 1, Date.now() - t0);
}

async function buildSmoke(): Promise<string> {
  const root = join(__dirname, 'smoke');
  const tests = readdirSync(join(root, 'src/test')).filter((f) => f.endsWith('.test.ts')).map((f) => join(root, 'src/test', f));
  await build({
    entryPoints: [join(root, 'src/extension.ts'), join(root, 'src/test/index.ts'), ...tests],
    outbase: join(root, 'src'),
    outdir: join(root, 'out'),
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    sourcemap: true,
    external: ['vscode', 'mocha'],
    logLevel: 'warning',
  });
  return join(root, 'out/test/index.js');
}

// `run-suites.ts [smoke|extension|ui|panel ...] [--grep TEXT]`: only the suites named (all by
// default); --grep runs only the extension suite's tests whose title contains TEXT.
const argv = process.argv.slice(2);
const grepAt = argv.indexOf('--grep');
const grep = grepAt >= 0 ? argv[grepAt + 1] : undefined;
const only = argv.filter((a, i) => a !== '--grep' && (grepAt < 0 || i !== grepAt + 1));

async function suite(name: string, run: () => Promise<{ passed: number; failed: number; exitCode: number }>, key: string): Promise<void> {
  if (only.length > 0 && !only.includes(key)) return;
  const t0 = Date.now();
  try {
    const result = await run();
    // A suite that died before its summary counts as one failure.
    const f = result.failed + (result.exitCode !== 0 && result.failed === 0 ? 1 : 0);
    count(name, result.passed, f, Date.now() - t0);
  } catch (error) {
    console.log(`not ok - ${name}: ${error instanceof Error ? error.message : String(error)}`);
    count(name, 0, 1, Date.now() - t0);
  }
}

async function main(): Promise<void> {
  const started = Date.now();
  command('bundles build', process.execPath, ['scripts/build.mjs']);
  command('declared and registered commands match', process.execPath, ['scripts/check-commands.mjs']);
  // The suites import the extension's entry, so this checks the extension's sources as well.
  command('the extension and its suites type-check', process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'test/vscode/extension/tsconfig.json', '--noEmit']);

  await suite('smoke suite', async () => {
    const tests = await buildSmoke();
    return runExtensionTests({ extensionPath: join(__dirname, 'smoke'), testsPath: tests, workspaceFolder: join(__dirname, 'smoke/workspace'), env: { SMOKE_MARKER: 'from-the-harness' }, name: 'smoke' });
  }, 'smoke');

  await suite('extension suite', async () => {
    const tests = await buildSuite();
    const workspace = makeWorkspace();
    try {
      // Only bounds a hang: the suite takes 1.5-3 min at load 8-16 (the MLflow test starts the embedded server).
      const env = grep !== undefined ? { HR_TEST_GREP: grep } : undefined;
      return await runExtensionTests({ extensionPath: ROOT, testsPath: tests, workspaceFolder: workspace, name: 'extension', timeoutMs: 600_000, env });
    } finally {
      await removeWorkspace(workspace);
    }
  }, 'extension');

  await suite('UI check', async () => {
    const t0 = Date.now();
    const result = spawnSync(process.execPath, ['--import', 'tsx', join(__dirname, 'extension/ui-check.ts')], { cwd: ROOT, encoding: 'utf8', timeout: 900_000 });
    process.stdout.write(result.stdout ?? '');
    process.stderr.write(result.stderr ?? '');
    const match = /^(\d+) passed, (\d+) failed$/m.exec(result.stdout ?? '');
    void t0;
    return { passed: Number(match?.[1] ?? 0), failed: Number(match?.[2] ?? 0), exitCode: result.status ?? 1 };
  }, 'ui');

  // The trials panel inside the editor: its charts and its Stop and Cancel (test/vscode/panel).
  await suite('panel check', async () => {
    const result = spawnSync(process.execPath, ['--import', 'tsx', join(__dirname, 'panel/panel-check.ts')], { cwd: ROOT, encoding: 'utf8', timeout: 420_000 });
    process.stdout.write(result.stdout ?? '');
    process.stderr.write(result.stderr ?? '');
    const match = /^(\d+) passed, (\d+) failed$/m.exec(result.stdout ?? '');
    return { passed: Number(match?.[1] ?? 0), failed: Number(match?.[2] ?? 0), exitCode: result.status ?? 1 };
  }, 'panel');

  console.log(`\n${timings.join('\n')}\neditor tier took ${((Date.now() - started) / 1000).toFixed(1)} s`);
  console.log(`${passed} passed, ${failed} failed`);
  process.exitCode = failed > 0 ? 1 : 0;
}

void main();
