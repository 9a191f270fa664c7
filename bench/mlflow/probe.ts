/**
 * One cold reader of a study, in its own process (fresh client, fresh connections, fresh JIT):
 * walks the runs tree as the editor does (experiments, then studies, then the study's first
 * page of trials); `all` then loads the rest of the study with `loadAll`, `pages` with
 * `loadMore` one tree page at a time. Prints one JSON line.
 *
 * Usage: probe.ts URI EXPERIMENT_ID PARENT_RUN_ID PAGE_SIZE first|all|pages
 */
import { MlflowClient } from '../../core/src/mlflow/client';
import { RunsModel, type StudyNode } from '../../core/src/mlflow/runsModel';

async function main(): Promise<void> {
  const [uri, experimentId, parentRunId, pageSizeText, mode] = process.argv.slice(2) as [string, string, string, string, string];
  const model = new RunsModel(new MlflowClient({ trackingUri: uri }), { pageSize: Number(pageSizeText) });
  const t0 = performance.now();
  const experiments = await model.getChildren();
  const experiment = experiments.find((n) => n.kind === 'experiment' && n.experimentId === experimentId);
  if (!experiment) throw new Error(`experiment ${experimentId} is not listed`);
  const studies = await model.getChildren(experiment);
  const study = studies.find((n): n is StudyNode => n.kind === 'study' && n.runId === parentRunId);
  if (!study) throw new Error(`study ${parentRunId} is not listed`);
  const t1 = performance.now();
  const firstPage = await model.getChildren(study);
  const t2 = performance.now();
  let all = firstPage;
  if (mode === 'all') all = await model.loadAll(study);
  if (mode === 'pages') while (model.hasMore(study)) all = await model.loadMore(study);
  const t3 = performance.now();
  const tids = new Set(all.map((n) => (n.kind === 'trial' ? n.tid : undefined)));
  const refreshed = model.getNode(study.id);
  console.log(
    JSON.stringify({
      treeMs: t1 - t0,
      firstPageMs: t2 - t1,
      firstPageCount: firstPage.length,
      allMs: t3 - t1,
      allCount: all.length,
      distinctTids: tids.size,
      bestLoss: refreshed?.kind === 'study' ? refreshed.bestLoss : undefined,
    }),
  );
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
