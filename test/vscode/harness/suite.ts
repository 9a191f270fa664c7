// Runs inside the extension host: the body of an extension's `out/test/index.js`, the module
// VS Code loads for `extensionTestsPath` (the @vscode/test-electron shape):
//
//   import { runMochaSuite } from '<repo>/test/vscode/harness/suite';
//   export function run(): Promise<void> {
//     return runMochaSuite({ testsRoot: __dirname });
//   }
//
// Bundle it into the test entry (esbuild) with `mocha` left external: it is resolved from the
// repository's node_modules when the suite runs.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import Mocha from 'mocha';
import { markConsole } from './console-mark';

export interface MochaSuiteOptions {
  /** Folder searched (recursively) for test files. */
  testsRoot: string;
  /** Which files are tests (default: names ending in `.test.js`). */
  pattern?: RegExp;
  /** Per-test timeout (ms, default 30 s: the first command in a fresh window can be slow). */
  timeoutMs?: number;
  /** Only tests whose full title matches. */
  grep?: string | RegExp;
}

export function findTestFiles(root: string, pattern: RegExp = /\.test\.js$/): string[] {
  const found: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.isFile() && pattern.test(entry.name)) found.push(path);
    }
  };
  walk(root);
  return found.sort();
}

/**
 * Runs the test files with mocha (bdd, spec reporter) and ends with a plain
 * `N passed, N failed` line (`, N skipped` when some were), which CI reads as the result.
 * Resolves when every test passed; rejects otherwise, which makes the extension host exit with 1.
 */
export function runMochaSuite(options: MochaSuiteOptions): Promise<void> {
  markConsole();
  // mocha's reporters keep the console.log they found when mocha loaded: give them the marked one.
  Mocha.reporters.Base.consoleLog = console.log;
  const mocha = new Mocha({ ui: 'bdd', reporter: 'spec', color: false, timeout: options.timeoutMs ?? 30_000 });
  if (options.grep !== undefined) mocha.grep(options.grep);
  const files = findTestFiles(options.testsRoot, options.pattern);
  if (files.length === 0) {
    console.log('0 passed, 0 failed');
    return Promise.reject(new Error(`no test files in ${options.testsRoot}`));
  }
  for (const file of files) mocha.addFile(file);

  return new Promise((resolve, reject) => {
    try {
      const runner = mocha.run((failures) => {
        const stats = runner.stats;
        const passed = stats?.passes ?? 0;
        const failed = stats?.failures ?? failures;
        const skipped = stats?.pending ?? 0;
        console.log(`${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ''}`);
        if (failures > 0) reject(new Error(`${failures} test(s) failed`));
        else resolve();
      });
    } catch (error) {
      // A test file that does not load (syntax error, missing module).
      console.error(error);
      console.log('0 passed, 1 failed');
      reject(error instanceof Error ? error : new Error(String(error)));
    }
  });
}
