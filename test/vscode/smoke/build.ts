// Builds the smoke extension into test/vscode/smoke/out/:
//   node --import tsx test/vscode/smoke/build.ts
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';

const root = __dirname;
const tests = readdirSync(join(root, 'src/test'))
  .filter((f) => f.endsWith('.test.ts'))
  .map((f) => join(root, 'src/test', f));

void build({
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
