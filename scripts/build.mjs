// One bundler for every target: the CLI, the extension host bundle and the webview bundle.
import { build } from 'esbuild';
import { existsSync } from 'node:fs';

const watch = process.argv.includes('--watch');
const common = { bundle: true, sourcemap: true, logLevel: 'warning', legalComments: 'none' };
// ssh2's optional native addons stay out of the bundle: ssh2 falls back to pure JavaScript,
// which also keeps one VSIX working on every platform and extension host.
const nativeAddons = ['*.node'];

const targets = [
  { entryPoints: ['cli/src/main.ts'], outfile: 'dist/cli.js', platform: 'node', target: 'node20', format: 'cjs', external: nativeAddons },
];
// The workspace scan runs in piscina worker threads: its worker file and piscina's own thread
// starter must sit next to the bundle that starts the pool.
targets.push({
  entryPoints: {
    'scan-worker': 'core/src/scan/worker.ts',
    'analysis-worker': 'core/src/analysis/worker.ts',
    worker: 'node_modules/piscina/dist/worker.js',
  },
  outdir: 'dist', platform: 'node', target: 'node20', format: 'cjs', external: ['@napi-rs/nice'],
});
if (existsSync('extension/src/extension.ts')) {
  targets.push({
    entryPoints: ['extension/src/extension.ts'], outfile: 'dist/extension.js', platform: 'node', target: 'node20',
    format: 'cjs', external: ['vscode', ...nativeAddons],
  });
}
if (existsSync('webview/src/main.ts')) {
  // Minified: the panel's page parses and compiles less before it can say ready (sourcemap kept).
  targets.push({ entryPoints: ['webview/src/main.ts'], outfile: 'dist/webview.js', platform: 'browser', target: 'es2022', format: 'iife', minify: true });
}

await Promise.all(targets.map((t) => build({ ...common, ...t })));
if (watch) console.log('watch mode is not supported; rerun the build');
