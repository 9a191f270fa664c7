import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync, utimesSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ScanCache, SCANNER_VERSION } from '../../core/src/scan/cache';
import { ScanPool } from '../../core/src/scan/pool';
import { scanFiles } from '../../core/src/scan/scan-files';

const FILES = 2000;

/** One of four kinds of file, so the workspace looks like a real one: most files have no fmin. */
function fileText(i: number): { text: string; calls: number } {
  const filler = Array.from({ length: 40 }, (_, k) => `def helper_${k}(x):\n    return x * ${k}  # fmin(x)\n`).join('');
  switch (i % 4) {
    case 0:
      return {
        text: `import hyperopt as hpo\nfrom hyperopt import fmin as search\n${filler}\nif __name__ == "__main__":\n    hpo.fmin(fn, space, max_evals=${i})\n    search(fn, space)\n`,
        calls: 2,
      };
    case 1:
      return { text: `from scipy.optimize import fmin\n${filler}\nfmin(f, 0)\ntext = "hyperopt.fmin(x)"\n`, calls: 0 };
    case 2:
      return { text: `import numpy as np\n${filler}\nprint(np.zeros(${i}))\n`, calls: 0 };
    default:
      return { text: `def tune():\n    from hyperopt.fmin import fmin\n    return fmin(fn, space)\n${filler}`, calls: 1 };
  }
}

describe('scanFiles', () => {
  let dir: string;
  let paths: string[];
  let pool: ScanPool;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'scan-files-'));
    paths = [];
    for (let i = 0; i < FILES; i++) {
      const sub = join(dir, `pkg${i % 20}`);
      mkdirSync(sub, { recursive: true });
      const path = join(sub, `module_${i}.py`);
      writeFileSync(path, fileText(i).text);
      paths.push(path);
    }
    pool = new ScanPool();
  });

  after(async () => {
    await pool.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('scans a 2,000-file workspace on worker threads', async (t) => {
    const started = performance.now();
    const result = await scanFiles(paths, { pool });
    const ms = performance.now() - started;
    t.diagnostic(`${FILES} files scanned on ${pool.threads} worker thread(s) in ${ms.toFixed(0)} ms`);

    assert.equal(result.files.length, FILES);
    assert.equal(result.parsed, FILES);
    assert.equal(result.cached, 0);
    assert.equal(result.failed, 0);
    result.files.forEach((file, i) => {
      assert.equal(file.path, paths[i], 'results keep the order of the paths');
      assert.equal(file.calls.length, fileText(i).calls, file.path);
    });
    const first = result.files[0]?.calls;
    assert.deepEqual(
      first?.map((c) => [c.callee, c.inMainGuard]),
      [
        ['hpo.fmin', true],
        ['search', true],
      ],
    );
  });

  it('answers unchanged files from the cache and reads changed ones again', async () => {
    const cache = new ScanCache();
    const first = await scanFiles(paths, { pool, cache });
    assert.equal(first.parsed, FILES);
    assert.equal(cache.size, FILES);

    const second = await scanFiles(paths, { pool, cache });
    assert.equal(second.parsed, 0);
    assert.equal(second.cached, FILES);
    assert.deepEqual(second.files, first.files);

    // New content (other size) in one file, a new mtime only in another.
    const edited = paths[2] as string;
    writeFileSync(edited, 'import hyperopt\nhyperopt.fmin(fn, space)\n');
    const touched = paths[4] as string;
    utimesSync(touched, new Date(), new Date(Date.now() + 5_000));
    const third = await scanFiles(paths, { pool, cache });
    assert.equal(third.parsed, 2);
    assert.equal(third.cached, FILES - 2);
    assert.deepEqual(
      third.files[2]?.calls.map((c) => c.callee),
      ['hyperopt.fmin'],
    );
    assert.equal(third.files[4]?.calls.length, 2);
  });

  it('reports files that cannot be read without failing the scan, and does not cache them', async () => {
    const cache = new ScanCache();
    const gone = join(dir, 'gone.py');
    writeFileSync(gone, 'from hyperopt import fmin\nfmin(f, s)\n');
    const some = [paths[0] as string, gone, join(dir, 'never-existed.py'), join(dir, 'pkg1')];
    await scanFiles(some, { pool, cache });
    unlinkSync(gone);
    const result = await scanFiles(some, { pool, cache });
    assert.equal(result.failed, 3);
    assert.equal(result.cached, 1);
    assert.match(result.files[1]?.error ?? '', /ENOENT/);
    assert.equal(result.files[3]?.error, 'not a regular file');
    assert.equal(cache.size, 1);
  });

  it('rejects at once when aborted before it starts, and while it runs; the pool stays usable', async () => {
    await assert.rejects(scanFiles(paths, { pool, signal: AbortSignal.abort() }), { name: 'AbortError' });

    const controller = new AbortController();
    const running = scanFiles(paths, { pool, signal: controller.signal, batchSize: 4 });
    setImmediate(() => controller.abort());
    await assert.rejects(running, { name: 'AbortError' });

    const again = await scanFiles(paths.slice(0, 8), { pool });
    assert.equal(again.parsed, 8);
  });

  it('starts and closes a pool of its own when none is given', async () => {
    const some = [paths[0], paths[1], paths[3]] as string[];
    const result = await scanFiles(some);
    assert.deepEqual(
      result.files.map((f) => f.calls.length),
      [2, 0, 1],
    );
  });
});

describe('ScanCache', () => {
  it('round-trips through JSON and drops data from another scanner version', () => {
    const cache = new ScanCache();
    const call = { line: 1, column: 0, endLine: 1, endColumn: 9, from: 10, to: 19, callee: 'fmin', inMainGuard: false };
    cache.set({ path: '/a.py', mtimeMs: 1, size: 2, calls: [call] });
    const restored = ScanCache.fromJSON(JSON.parse(JSON.stringify(cache)));
    assert.deepEqual(restored.get('/a.py', 1, 2), [call]);
    assert.equal(restored.get('/a.py', 1, 3), undefined);
    assert.equal(ScanCache.fromJSON({ ...cache.toJSON(), version: SCANNER_VERSION + 1 }).size, 0);
    assert.equal(ScanCache.fromJSON('garbage').size, 0);
  });

  it('retain() forgets paths that are gone from the workspace', () => {
    const cache = new ScanCache();
    cache.set({ path: '/a.py', mtimeMs: 1, size: 1, calls: [] });
    cache.set({ path: '/b.py', mtimeMs: 1, size: 1, calls: [] });
    cache.retain(['/b.py']);
    assert.equal(cache.size, 1);
    assert.deepEqual(cache.get('/b.py', 1, 1), []);
  });
});
