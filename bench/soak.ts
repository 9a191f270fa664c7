/**
 * `npm run soak`: the chaos soak (bench/soakRun.ts) at full size, beside the same study without
 * chaos, on local:4 plus two loopback SSH hosts with 2 slots each. Writes the "Chaos soak" section
 * of docs/benchmarks.md. SOAK_TRIALS=N stops the study at N finished trials (default 2000).
 */
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { writeBenchmarkSection } from './report';
import { runSoak, type SoakOptions, type SoakReport } from './soakRun';
import { startSshFixture } from '../test/ssh/fixture';

const stopAt = Number(process.env.SOAK_TRIALS ?? 2000);
const FULL: SoakOptions = {
  stopAt,
  maxEvals: Math.ceil(stopAt * 1.25),
  durationScale: 1,
  chaos: true,
  seed: 20261203,
  workerKillEveryMs: [3000, 6000],
  maxWorkerKills: 60,
  hostDownMs: 8000,
};

async function main(): Promise<void> {
  const fx = await startSshFixture(2);
  let calm: SoakReport;
  let chaos: SoakReport;
  try {
    const log = (line: string): void => console.log(line);
    console.log(`soak without chaos: stop at ${stopAt} finished trials`);
    calm = await runSoak(fx, { ...FULL, chaos: false, log });
    console.log(JSON.stringify(calm));
    console.log(`soak with chaos (seed ${FULL.seed})`);
    chaos = await runSoak(fx, { ...FULL, log });
    console.log(JSON.stringify(chaos));
  } finally {
    await fx.stop();
  }
  const faults = Object.entries(chaos.faults)
    .map(([kind, n]) => `${kind} ${n}`)
    .join(', ');
  const held = chaos.lost === 0 && chaos.ranTwice === 0 && chaos.processesLeft.length === 0 && calm.lost === 0 && calm.processesLeft.length === 0;
  writeBenchmarkSection(join(__dirname, '..', 'docs', 'benchmarks.md'), 'Chaos soak', [
    `Measured ${new Date().toISOString().slice(0, 10)} on ${cpus().length} × ${cpus()[0]?.model.trim() ?? 'CPU'}, ${Math.round(totalmem() / 2 ** 30)} GB, with \`npm run soak\` (bench/soak.ts; its 60-second version is test/ssh/soak.test.ts in the test command).`,
    '',
    `One study of bench/scripts/soak_study.py (10 ms to 2 s objectives, about 3 % raising, 2 % printing 300 KB) run as the README runs a study — \`hyperopt-runner run\` in a fresh workspace, tracked by the workspace's own MLflow server — on \`--executor local:4 --executor ssh:h1,h2\` (two sshd on loopback, 2 slots each), stopped (Ctrl+C once) at ${stopAt} finished trials. With chaos, a driver with a fixed seed (${FULL.seed}) SIGKILLs a random worker every 3-6 s, drops each SSH host once for ${FULL.hostDownMs / 1000} s (its sshd, sessions and workers killed, its port refused), kills the tracking server twice, SIGKILLs the CLI once and runs \`hyperopt-runner resume\`. Afterwards \`hyperopt-runner sync\`, then the checks. Times are from the first command's start to the last command's exit.`,
    '',
    '| | without chaos | with chaos |',
    '|---|---|---|',
    `| trials finished (ok / failed) | ${calm.finished} (${calm.ok} / ${calm.failed}) | ${chaos.finished} (${chaos.ok} / ${chaos.failed}) |`,
    `| wall time | ${calm.wallS.toFixed(1)} s | ${chaos.wallS.toFixed(1)} s |`,
    `| trials finished per minute | ${calm.trialsPerMinute.toFixed(0)} | ${chaos.trialsPerMinute.toFixed(0)} |`,
    `| attempts re-queued (then finished) | ${calm.requeued} (${calm.requeuedThenFinished}) | ${chaos.requeued} (${chaos.requeuedThenFinished}) |`,
    `| attempts lost with the killed CLI (closed as cancelled) | ${calm.lostAttempts} | ${chaos.lostAttempts} |`,
    `| finished trials lost (missing from fmin's Trials or MLflow, or another loss there; goal 0) | ${calm.lost} | ${chaos.lost} |`,
    `| trials run again after finishing (goal 0) | ${calm.ranTwice} | ${chaos.ranTwice} |`,
    `| processes left on this machine and the hosts (goal 0) | ${calm.processesLeft.length} | ${chaos.processesLeft.length} |`,
    `| every run in MLflow (the parent ended), after the last command's exit | ${calm.runsWrittenAfterS.toFixed(0)} s | ${chaos.runsWrittenAfterS.toFixed(0)} s |`,
    `| peak memory of the run's processes (RSS sum, 1 s samples) | ${calm.peakRssMb.toFixed(0)} MB | ${chaos.peakRssMb.toFixed(0)} MB |`,
    '',
    'The study finishes about 35 trials a second, faster than the workspace\'s MLflow server (one worker) writes their runs, so most child runs are completed after the command by the workspace\'s server from the journal; the row above says how long that takes. A trial\'s run is created once however its writes fail: a create whose answer is lost is looked up before it is retried, and the later writing reuses a run the killed command made but did not journal.',
    '',
    `Faults injected: ${faults}. Exit codes: ${JSON.stringify(chaos.exitCodes)} (the run is the one SIGKILLed).`,
    '',
    held ? 'Every check held.' : `Checks that failed: ${[...chaos.lostDetails, ...chaos.processesLeft].slice(0, 10).join('; ')}`,
  ]);
  if (!held) process.exitCode = 1;
}

void main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
