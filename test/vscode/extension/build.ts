// Builds the integration suite into test/vscode/extension/out/ (bundled; vscode and mocha external).
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';

export async function buildSuite(): Promise<string> {
  const root = __dirname;
  const tests = readdirSync(join(root, 'src'))
    .filter((f) => f.endsWith('.test.ts'))
    .map((f) => join(root, 'src', f));
  await build({
    entryPoints: [join(root, 'src/index.ts'), ...tests],
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
  return join(root, 'out', 'index.js');
}
