/** `hyperopt-runner runs`: experiments > studies > trials from the tracking server, as text or JSON. */
import { RunnerError } from '../../core/src/errors';
import { currentCliCommand } from '../../core/src/mlflow/serverLease';
import { TrackingSession } from '../../core/src/mlflow/tracking';
import { RunsModel, type RunsNode, type StudyNode, type TrialNode } from '../../core/src/mlflow/runsModel';
import { parseFlags, resolvePython } from './options';
import { formatDuration, formatLoss, printable } from './progress';

function allChildren(model: RunsModel, node?: RunsNode): Promise<RunsNode[]> {
  return model.loadAll(node);
}

function trialLine(t: TrialNode): string {
  const parts = [`  ${t.isBest ? '*' : ' '} ${t.label}`, t.status, `loss ${formatLoss(t.loss)}`];
  if (t.durationMs !== undefined) parts.push(formatDuration(t.durationMs));
  return parts.join('  ');
}

export type RunsTree = Array<{ experiment: RunsNode; studies: Array<{ study: StudyNode; trials: TrialNode[] }> }>;

/** The tree as `runs` prints it; names and statuses are the tracking server's, written by anyone, so they are escaped. */
export function runsText(tree: RunsTree): string {
  if (tree.length === 0) return 'no runs found\n';
  const lines: string[] = [];
  for (const { experiment, studies } of tree) {
    lines.push(experiment.label);
    for (const { study, trials } of studies) {
      lines.push(` ${study.label}  ${study.status}  ${trials.length} trials  best ${formatLoss(study.bestLoss)}${study.studyId ? `  (study ${study.studyId})` : ''}`);
      lines.push(...trials.map(trialLine));
    }
  }
  return lines.map((line) => printable(line) + '\n').join('');
}

export async function runsCommand(argv: string[], env: NodeJS.ProcessEnv, cwd: string): Promise<number> {
  const { values } = parseFlags(argv, [
    { name: 'experiment', takesValue: true },
    { name: 'study', takesValue: true },
    { name: 'json', takesValue: false },
    { name: 'tracking-uri', takesValue: true },
    { name: 'python', takesValue: true },
  ]);
  const notice = (text: string): void => void process.stderr.write(`hyperopt-runner: ${text}\n`);
  const tracking = await TrackingSession.start({
    python: resolvePython(values.get('python')?.[0], env, cwd),
    workspace: cwd,
    cliUri: values.get('tracking-uri')?.[0],
    env,
    cli: currentCliCommand(),
    notice,
  });
  try {
    await tracking.ready().catch(() => undefined);
    const client = tracking.client();
    if (!client) throw new RunnerError('invalid_option', { option: '--tracking-uri', value: '', reason: 'no tracking server could be reached' });
    const model = new RunsModel(client, { pageSize: 200 });
    const experimentName = values.get('experiment')?.[0];
    const studyId = values.get('study')?.[0];
    const tree: RunsTree = [];
    for (const experiment of await allChildren(model)) {
      if (experimentName && experiment.label !== experimentName) continue;
      const studies: Array<{ study: StudyNode; trials: TrialNode[] }> = [];
      for (const node of await allChildren(model, experiment)) {
        if (node.kind !== 'study') continue;
        if (studyId && node.studyId !== studyId && node.runId !== studyId) continue;
        const trials = (await allChildren(model, node)).filter((t): t is TrialNode => t.kind === 'trial');
        studies.push({ study: model.getNode(node.id) as StudyNode, trials });
      }
      if (studies.length > 0 || !studyId) tree.push({ experiment, studies });
    }
    if (values.has('json')) {
      process.stdout.write(JSON.stringify(tree, null, 2) + '\n');
      return 0;
    }
    process.stdout.write(runsText(tree));
    return 0;
  } finally {
    tracking.stop();
  }
}

