import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { build } from 'esbuild';

const ROOT = resolve(__dirname, '../..');

/**
 * The scan must work from an esbuild bundle, as it runs in the extension and the CLI: three
 * entries side by side, the code that starts the pool, the scan worker (`scan-worker.js`) and
 * piscina's thread bootstrap (`worker.js`, which piscina looks for beside its own code).
 * A bundle of the extension or the CLI needs the same two extra entries in its folder.
 */
describe('scan from an esbuild bundle', () => {
  const dir = mkdtempSync(join(tmpdir(), 'scan-bundle-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('finds the worker beside the bundle and scans with plain node', async () => {
    const entry = join(dir, 'main.ts');
    writeFileSync(
      entry,
      [
        `import { scanFiles } from ${JSON.stringify(join(ROOT, 'core/src/scan/scan-files'))};`,
        'void scanFiles(process.argv.slice(2)).then((result) => {',
        '  console.log(JSON.stringify(result.files.map((file) => file.calls.map((call) => call.callee))));',
        '});',
      ].join('\n'),
    );
    const result = await build({
      entryPoints: {
        main: entry,
        'scan-worker': join(ROOT, 'core/src/scan/worker.ts'),
        worker: join(ROOT, 'node_modules/piscina/dist/worker.js'),
      },
      outdir: join(dir, 'dist'),
      bundle: true,
      platform: 'node',
      target: 'node20',
      format: 'cjs',
      // piscina loads this optional native module only for `niceIncrement`, and survives its absence.
      external: ['@napi-rs/nice'],
      logLevel: 'silent',
    });
    assert.deepEqual(result.errors, []);
    assert.ok(existsSync(join(dir, 'dist/scan-worker.js')));

    const py = join(dir, 'tune.py');
    writeFileSync(py, 'import hyperopt as hpo\nif __name__ == "__main__":\n    hpo.fmin(fn, space)\n');
    // process.execPath without --import tsx: only the bundle runs.
    const out = execFileSync(process.execPath, [join(dir, 'dist/main.js'), py], { encoding: 'utf8', timeout: 60_000 });
    assert.deepEqual(JSON.parse(out), [['hpo.fmin']]);
  });
});
