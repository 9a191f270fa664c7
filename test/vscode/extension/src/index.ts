import { runMochaSuite } from '../../harness/suite';

export function run(): Promise<void> {
  // HR_TEST_GREP (run-suites.ts --grep): only the tests whose title contains it.
  const grep = process.env.HR_TEST_GREP;
  return runMochaSuite({ testsRoot: __dirname, timeoutMs: 90_000, ...(grep ? { grep } : {}) });
}
