import { runMochaSuite } from '../../harness/suite';

export function run(): Promise<void> {
  return runMochaSuite({ testsRoot: __dirname, timeoutMs: 60_000 });
}
