/**
 * Comparing a host's Python and packages with the driver's. The objective is cloudpickled by
 * the driver and unpickled by the workers: a different Python minor version (code objects) or
 * cloudpickle major version breaks that, so those are errors; other differences are warnings.
 */

export type Level = 'ok' | 'warning' | 'error';

export interface VersionFinding {
  readonly name: string;
  readonly remote: string | null;
  readonly local: string | null;
  readonly level: Level;
  readonly note?: string;
}

function parts(version: string): number[] {
  return version.split(/[.+-]/).map((p) => Number.parseInt(p, 10) || 0);
}

function older(version: string, than: readonly number[]): boolean {
  const v = parts(version);
  for (let i = 0; i < than.length; i++) {
    if ((v[i] ?? 0) !== than[i]) return (v[i] ?? 0) < than[i]!;
  }
  return false;
}

function same(a: string, b: string, depth: number): boolean {
  const pa = parts(a);
  const pb = parts(b);
  for (let i = 0; i < depth; i++) if ((pa[i] ?? 0) !== (pb[i] ?? 0)) return false;
  return true;
}

export interface Versions {
  readonly python: string;
  readonly packages: Readonly<Record<string, string | null | undefined>>;
}

/** One finding per item: python, hyperopt, cloudpickle, numpy, mlflow. */
export function compareVersions(remote: Versions, local: Versions | undefined): VersionFinding[] {
  const findings: VersionFinding[] = [];
  const localPython = local?.python ?? null;
  if (localPython && !same(remote.python, localPython, 2)) {
    findings.push({ name: 'python', remote: remote.python, local: localPython, level: 'error', note: 'a different minor version cannot load code the driver pickled' });
  } else {
    findings.push({ name: 'python', remote: remote.python, local: localPython, level: older(remote.python, [3, 10]) ? 'error' : 'ok', ...(older(remote.python, [3, 10]) ? { note: 'Python 3.10 or newer is needed' } : {}) });
  }
  const mlflowLocal = local ? (local.packages.mlflow ?? local.packages['mlflow-skinny'] ?? null) : null;
  for (const name of ['hyperopt', 'cloudpickle', 'numpy', 'mlflow'] as const) {
    const r = (name === 'mlflow' ? (remote.packages.mlflow ?? remote.packages['mlflow-skinny']) : remote.packages[name]) ?? null;
    const l = local ? (name === 'mlflow' ? mlflowLocal : (local.packages[name] ?? null)) : null;
    let level: Level = 'ok';
    let note: string | undefined;
    if (r === null) {
      if (name === 'hyperopt' || name === 'cloudpickle') {
        level = 'error';
        note = 'not installed';
      } else if (name === 'mlflow') {
        if (l !== null) {
          level = 'warning';
          note = "not installed: the trials' runs are still logged, but an objective's own mlflow calls fail on this host";
        }
      } else {
        level = 'warning';
        note = 'not installed';
      }
    } else if (name === 'hyperopt' && older(r, [0, 2, 7])) {
      level = 'error';
      note = 'hyperopt 0.2.7 or newer is needed';
    } else if (l !== null && r !== l) {
      if (name === 'cloudpickle' && !same(r, l, 1)) {
        level = 'error';
        note = 'a different major version cannot load what the driver pickled';
      } else {
        level = 'warning';
        note = 'differs from the driver';
      }
    }
    findings.push({ name, remote: r, local: l, level, ...(note ? { note } : {}) });
  }
  return findings;
}
