/**
 * The extension's activation cost, in a real VS Code (code-server + headless Chromium): for each
 * of ROUNDS fresh windows on a copy of samples/, the time `activate()` reports for itself and the
 * time from asking VS Code to activate the extension (loading dist/extension.js included) to its
 * API; plus the size of the bundle VS Code loads. Writes "## Extension activation" of
 * docs/benchmarks.md.
 *
 *   flock /tmp/hr-bench.lock node --import tsx bench/activation.bench.ts [--rounds N] [--no-write]
 */
import { execFileSync } from 'node:child_process';
import { statSync, readFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import { runExtensionTests } from '../test/vscode/harness/run';
import { buildActivationProbe } from '../test/vscode/extension/activation/build';
import { makeWorkspace, removeWorkspace } from '../test/vscode/extension/workspace';
import { writeBenchmarkSection } from './report';

const ROOT = resolve(__dirname, '..');

interface Sample {
  activationMs: number;
  loadAndActivateMs: number;
  wasActive: boolean;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { rounds: { type: 'string', default: '5' }, 'no-write': { type: 'boolean', default: false } } });
  const rounds = Number(values.rounds);
  execFileSync(process.execPath, ['scripts/build.mjs'], { cwd: ROOT, stdio: 'inherit' });
  const bundle = join(ROOT, 'dist', 'extension.js');
  const bytes = statSync(bundle).size;
  const gzipped = gzipSync(readFileSync(bundle)).length;
  const probe = await buildActivationProbe();

  const loadBefore = loadavg()[0]!;
  const samples: Sample[] = [];
  for (let i = 0; i < rounds; i++) {
    const workspace = makeWorkspace();
    try {
      const result = await runExtensionTests({ extensionPath: ROOT, testsPath: probe, workspaceFolder: workspace, name: 'activation', timeoutMs: 180_000, onLog: null });
      const line = result.log.find((l) => l.includes('ACTIVATION '));
      if (result.exitCode !== 0 || !line) throw new Error(`round ${i + 1}: the probe failed (exit ${result.exitCode}): ${result.log.slice(-5).join(' | ')}`);
      const sample = JSON.parse(line.slice(line.indexOf('ACTIVATION ') + 'ACTIVATION '.length)) as Sample;
      samples.push(sample);
      console.log(`round ${i + 1}: activate() ${sample.activationMs.toFixed(1)} ms, load + activate ${sample.loadAndActivateMs.toFixed(1)} ms${sample.wasActive ? ' (already active)' : ''}`);
    } finally {
      await removeWorkspace(workspace);
    }
  }
  const loadAfter = loadavg()[0]!;

  const fresh = samples.filter((s) => !s.wasActive);
  const activation = samples.map((s) => s.activationMs);
  const loadAndActivate = fresh.map((s) => s.loadAndActivateMs);
  const ms = (v: number): string => `${v.toFixed(1)} ms`;
  const range = (v: number[]): string => (v.length ? `${ms(median(v))} (${ms(Math.min(...v))}–${ms(Math.max(...v))})` : 'n/a');
  const body = [
    `Command: \`flock /tmp/hr-bench.lock node --import tsx bench/activation.bench.ts --rounds ${rounds}\`, ${new Date().toISOString().slice(0, 10)}.`,
    '',
    `Machine: ${availableParallelism()} CPUs (nproc), ${(totalmem() / 2 ** 30).toFixed(1)} GiB memory, ${cpus()[0]?.model.trim() ?? 'unknown CPU'}; code-server 4.139.1 (VS Code 1.139.1, extension host on Node 24). Load average ${loadBefore.toFixed(1)} before and ${loadAfter.toFixed(1)} after (a shared machine: other work ran meanwhile).`,
    '',
    `Each round opens a fresh window on a copy of samples/ and asks VS Code to activate the extension (median, then min–max over ${rounds} rounds):`,
    '',
    '| what | time |',
    '| --- | --- |',
    `| \`activate()\` from its first line to its return (the extension's own log line) | ${range(activation)} |`,
    `| asking VS Code to activate it until its API is returned (loading the bundle included) | ${range(loadAndActivate)} |`,
    '',
    `Bundle: \`dist/extension.js\` is ${(bytes / 1024).toFixed(0)} KiB (${(gzipped / 1024).toFixed(0)} KiB gzipped). Activation wires the parts and returns: the workspace scan, the journals and the service connection start after it.`,
  ];
  console.log(body.join('\n'));
  if (!values['no-write']) writeBenchmarkSection(join(ROOT, 'docs', 'benchmarks.md'), 'Extension activation', body);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
