// One bundler for every target: the CLI, the extension host bundle and the webview bundle.
import { build } from 'esbuild';
import { existsSync } from 'node:fs';

const watch = process.argv.includes('--watch');
const common = { bundle: true, sourcemap: true, logLevel: 'warning', legalComments: 'none' };

const targets = [
  { entryPoints: ['cli/src/main.ts'], outfile: 'dist/cli.js', platform: 'node', target: 'node20', format: 'cjs' },
];
if (existsSync('extension/src/extension.ts')) {
  targets.push({
    entryPoints: ['extension/src/extension.ts'], outfile: 'dist/extension.js', platform: 'node', target: 'node20',
    format: 'cjs', external: ['vscode'],
  });
}
if (existsSync('webview/src/main.ts')) {
  targets.push({ entryPoints: ['webview/src/main.ts'], outfile: 'dist/webview.js', platform: 'browser', target: 'es2022', format: 'iife' });
}

await Promise.all(targets.map((t) => build({ ...common, ...t })));
if (watch) console.log('watch mode is not supported; rerun the build');
