// Builds the activation probe into test/vscode/extension/activation/out/ (vscode and mocha external).
import { join } from 'node:path';
import { build } from 'esbuild';

export async function buildActivationProbe(): Promise<string> {
  await build({
    entryPoints: [join(__dirname, 'index.ts'), join(__dirname, 'activation.test.ts')],
    outbase: __dirname,
    outdir: join(__dirname, 'out'),
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    external: ['vscode', 'mocha'],
    logLevel: 'warning',
  });
  return join(__dirname, 'out', 'index.js');
}
