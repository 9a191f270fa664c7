/**
 * The trials webview under load, in headless Chromium (Debian's chromium, playwright-core), on
 * the page renderWebviewHtml makes, with the test harness's fake host in VS Code's place:
 *
 *  1. first full paint of a study of 10,000 trials: from the host posting `init` to the frame
 *     after the one that drew every view (median of several fresh pages);
 *  2. a live feed of 50 finished trials per second for 10 s on top of those 10,000 (one `trials`
 *     message per trial, a `state` every 200 ms, as the host relays engine events): frame
 *     intervals (p50/p95/max), long tasks, and how long a click on a table row takes to show
 *     the selection in the charts while the feed runs.
 *
 * Run: node --import tsx bench/webview.bench.ts [--runs N] [--no-write]
 * Writes the figures into the "Webview" section of docs/benchmarks.md (other sections are kept).
 */
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import type { InitMessage, TrialRow } from '../core/src/protocol/webview';
import { Harness, REPO_ROOT, buildBundle } from '../test/webview/harness/panel';
import { TrialSource, makeStudy, rowsOf, statusOf, trialsMessage } from '../test/webview/fixtures/study';

const TRIALS = 10_000;
const FEED_RATE = 50;
const FEED_SECONDS = 10;
const argv = process.argv.slice(2);
const RUNS = Number(argv[argv.indexOf('--runs') + 1]) || 5;
const WRITE = !argv.includes('--no-write');

function quantile(values: number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * (sorted.length - 1) + 0.5))] as number;
}

const ms = (v: number): string => `${v.toFixed(1)} ms`;

interface PaintRun {
  /** init posted -> the frame that drew the views on screen is on screen. */
  paint: number;
  /** init posted -> every view drawn (those off screen follow in later frames) and on screen. */
  complete: number;
  /** CPU time of all Chromium processes meanwhile. */
  cpu: number;
  /** Checking the `init` message (its envelope with zod, its trial columns by hand). */
  check: number;
  heapMB: number;
}

/** CPU time (ms) used so far by each process below `root` (Linux /proc; empty elsewhere). */
function cpuTimes(root: number): Map<number, number> {
  const parent = new Map<number, number>();
  const cpu = new Map<number, number>();
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return new Map();
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      parent.set(Number(entry), Number(fields[1]));
      cpu.set(Number(entry), ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS);
    } catch {
      // The process ended meanwhile.
    }
  }
  const out = new Map<number, number>();
  for (const [pid, time] of cpu) {
    let p = pid;
    while (p !== root && parent.has(p) && p > 1) p = parent.get(p) as number;
    if (p === root && pid !== root) out.set(pid, time);
  }
  return out;
}

const CLOCK_TICKS = 100;

function cpuSince(before: Map<number, number>): number {
  let total = 0;
  for (const [pid, time] of cpuTimes(process.pid)) total += time - (before.get(pid) ?? 0);
  return total;
}

/** A fixed piece of JavaScript, timed, so readers can compare this machine with theirs. */
function calibrate(): number {
  const runs: number[] = [];
  for (let r = 0; r < 5; r++) {
    const t0 = performance.now();
    const a = new Float64Array(1_000_000);
    let seed = 1;
    for (let i = 0; i < a.length; i++) {
      seed = (seed * 16807) % 2147483647;
      a[i] = seed;
    }
    a.sort();
    runs.push(performance.now() - t0);
  }
  return quantile(runs, 0.5);
}

async function firstPaint(harness: Harness, init: InitMessage): Promise<PaintRun> {
  const panel = await harness.open();
  try {
    await panel.host.next('ready', 0);
    // Hand the message to the page first, so the figure is the panel's work, not the test driver's.
    await panel.page.evaluate((m) => {
      (globalThis as unknown as { __init: unknown }).__init = m;
    }, init);
    const before = cpuTimes(process.pid);
    const run = (await panel.page.evaluate(`new Promise((resolve) => {
      const t0 = performance.now();
      // As VS Code delivers it: a structured clone through postMessage.
      window.postMessage(window.__init, '*');
      const poll = () => {
        const painted = performance.getEntriesByName('trials:painted')[0];
        const complete = performance.getEntriesByName('trials:complete')[0];
        if (!painted || !complete) return requestAnimationFrame(poll);
        const checked = performance.getEntriesByName('trials:init-checked')[0];
        resolve({
          check: checked ? checked.duration : NaN,
          paint: painted.startTime - t0,
          complete: complete.startTime - t0,
          heapMB: (performance.memory ? performance.memory.usedJSHeapSize : 0) / 1048576,
        });
      };
      requestAnimationFrame(poll);
    })`)) as Omit<PaintRun, 'cpu'>;
    return { ...run, cpu: cpuSince(before) };
  } finally {
    await panel.close();
  }
}

interface FeedResult {
  frames: number[];
  longTasks: number[];
  clicks: number[];
  delivered: number;
  shown: number;
  heapMB: number;
}

async function liveFeed(harness: Harness, init: InitMessage): Promise<FeedResult> {
  const panel = await harness.open({ init });
  try {
    const rows = rowsOf(init);
    const source = new TrialSource(1234, (rows[rows.length - 1]?.endedAt ?? init.status.startedAt) + 100);
    source.tid = rows.length;
    const count = FEED_RATE * FEED_SECONDS;
    const feed: TrialRow[] = [];
    for (let i = 0; i < count; i++) feed.push(source.next());
    const expectedPoints = [...rows, ...feed].filter((t) => t.state === 'done' && typeof t.loss === 'number').length;
    const all = [...rows, ...feed];
    const states = [];
    for (let s = 1; s <= FEED_SECONDS * 5; s++) {
      const upto = rows.length + Math.round((s / (FEED_SECONDS * 5)) * count);
      states.push({ type: 'state', status: statusOf(all.slice(0, upto), 'running', init.status.now + s * 200) });
    }
    await panel.page.evaluate(
      (data) => {
        (globalThis as unknown as { __feed: unknown }).__feed = data;
      },
      { messages: feed.map((t) => trialsMessage([t])), states },
    );
    return await panel.page.evaluate(`new Promise((resolve) => {
      const { messages, states } = window.__feed;
      const frames = [];
      const longTasks = [];
      const clicks = [];
      new PerformanceObserver((list) => { for (const e of list.getEntries()) longTasks.push(e.duration); }).observe({ type: 'longtask' });
      let last = performance.now();
      let running = true;
      const frame = (t) => { frames.push(t - last); last = t; if (running) requestAnimationFrame(frame); };
      requestAnimationFrame((t) => { last = t; requestAnimationFrame(frame); });
      let sent = 0;
      const start = performance.now();
      const interval = 1000 / ${FEED_RATE};
      const tick = () => {
        const due = Math.min(messages.length, Math.floor((performance.now() - start) / interval) + 1);
        while (sent < due) {
          window.postMessage(messages[sent], '*');
          sent++;
          if (sent % ${FEED_RATE / 5} === 0 && states[sent / ${FEED_RATE / 5} - 1]) window.postMessage(states[sent / ${FEED_RATE / 5} - 1], '*');
        }
        if (sent < messages.length) setTimeout(tick, interval / 2);
      };
      tick();
      // Once a second, click a row of the table and time until the charts show the selection.
      let clicked = 0;
      const click = () => {
        const rows = document.querySelectorAll('#trials vscode-table-row');
        const row = rows[clicked % rows.length];
        const tid = row && row.getAttribute('data-tid');
        if (tid && document.querySelector('[data-chart="history"]').getAttribute('data-selected-tid') === tid) {
          clicked++;
          return setTimeout(click, 200);
        }
        const t0 = performance.now();
        row.click();
        const wait = () => {
          if (document.querySelector('[data-chart="history"]').getAttribute('data-selected-tid') === tid) {
            // The frame that drew it is painted before the next rAF callback runs.
            requestAnimationFrame(() => clicks.push(performance.now() - t0));
          } else requestAnimationFrame(wait);
        };
        requestAnimationFrame(wait);
        clicked++;
        if (clicked < ${FEED_SECONDS}) setTimeout(click, 1000);
      };
      setTimeout(click, 500);
      setTimeout(() => {
        running = false;
        const done = () => {
          if (Number(document.body.getAttribute('data-trials')) < ${TRIALS + count}) return requestAnimationFrame(done);
          if (Number(document.querySelector('[data-chart="history"]').getAttribute('data-points')) < ${expectedPoints}) return requestAnimationFrame(done);
          resolve({
            frames, longTasks, clicks, delivered: sent,
            shown: Number(document.querySelector('[data-chart="history"]').getAttribute('data-points')),
            heapMB: (performance.memory ? performance.memory.usedJSHeapSize : 0) / 1048576,
          });
        };
        requestAnimationFrame(done);
      }, ${FEED_SECONDS * 1000 + 200});
    })`);
  } finally {
    await panel.close();
  }
}

function machine(chromium: string): string {
  const cpu = cpus()[0]?.model.trim() ?? 'unknown CPU';
  return `${availableParallelism()} CPUs (nproc), ${(totalmem() / 2 ** 30).toFixed(1)} GiB memory, ${cpu}; Node ${process.version}, Chromium ${chromium} headless (--disable-gpu)`;
}

function writeSection(markdown: string): void {
  const path = join(REPO_ROOT, 'docs/benchmarks.md');
  const heading = '## Webview';
  let text = existsSync(path) ? readFileSync(path, 'utf8') : '# Benchmarks\n\nFigures from the benchmark scripts in bench/, one section per area, each with the machine and the command.\n';
  const start = text.indexOf(`\n${heading}\n`);
  if (start >= 0) {
    const next = text.indexOf('\n## ', start + heading.length + 1);
    text = text.slice(0, start + 1) + markdown + (next >= 0 ? text.slice(next) : '');
  } else {
    text = `${text.trimEnd()}\n\n${markdown}`;
  }
  writeFileSync(path, text.endsWith('\n') ? text : `${text}\n`);
}

async function main(): Promise<void> {
  const dir = await buildBundle();
  const bundleKB = statSync(join(dir, 'webview.js')).size / 1024;
  const init = makeStudy({ trials: TRIALS, seed: 42 });
  const loadBefore = loadavg()[0] as number;
  const reference = calibrate();
  const harness = await Harness.start();
  try {
    const chromium = harness.browser.version();
    await firstPaint(harness, makeStudy({ trials: 200 })); // warm the browser's caches once
    const paints: PaintRun[] = [];
    for (let i = 0; i < RUNS; i++) paints.push(await firstPaint(harness, init));
    const feed = await liveFeed(harness, init);
    const loadAfter = loadavg()[0] as number;

    const paint = paints.map((p) => p.paint);
    const complete = paints.map((p) => p.complete);
    const frames = feed.frames;
    const jank = frames.filter((f) => f > 50).length;
    const met = (value: number, target: number): string => (value <= target ? 'met' : 'not met');
    const lines = [
      `## Webview`,
      '',
      `Command: \`node --import tsx bench/webview.bench.ts\` (${RUNS} fresh pages for the first paint, then one live feed).`,
      '',
      `Machine: ${machine(chromium)}. Load average ${loadBefore.toFixed(1)} before the run and ${loadAfter.toFixed(1)} after (a shared machine: other work ran meanwhile). Reference: filling and sorting a Float64Array of 10^6 numbers takes ${ms(reference)} in Node here (median of 5).`,
      '',
      `The panel page is the one \`renderWebviewHtml\` builds (strict CSP), served from 127.0.0.1 with the webview bundle (${bundleKB.toFixed(0)} KB, minified, as scripts/build.mjs makes it), in a 1280x900 viewport; a fake host in VS Code's place posts the messages with \`window.postMessage\` (a structured clone, as VS Code delivers them). Times run from posting \`init\` to the start of the next animation frame after the drawing (the drawn frame is then on screen).`,
      '',
      `| figure | value | target |`,
      `| --- | --- | --- |`,
      `| first paint of ${TRIALS.toLocaleString('en')} trials: every view on screen drawn (header, controls, loss chart, importances, slices), median | ${ms(quantile(paint, 0.5))} | <= 200 ms (${met(quantile(paint, 0.5), 200)}) |`,
      `| same, all views drawn (parallel coordinates, timeline and table off screen follow), median | ${ms(quantile(complete, 0.5))} | |`,
      `| fastest / slowest of ${RUNS}, on screen | ${ms(Math.min(...paint))} / ${ms(Math.max(...paint))} | |`,
      `| of which checking the \`init\` message (zod for the envelope, one plain pass over the ${TRIALS.toLocaleString('en')} trials' columns), median | ${ms(quantile(paints.map((p) => p.check), 0.5))} | |`,
      `| CPU time of Chromium's processes for one such first paint, median | ${ms(quantile(paints.map((p) => p.cpu), 0.5))} | |`,
      `| JS heap after the first paint, median | ${quantile(paints.map((p) => p.heapMB), 0.5).toFixed(1)} MB | |`,
      `| live feed: trials delivered / new points in the charts | ${feed.delivered} in ${FEED_SECONDS} s / ${feed.shown - rowsOf(init).filter((t) => t.state === 'done').length} (the others failed or were cancelled) | ${FEED_RATE}/s |`,
      `| live feed: frame interval p50 / p95 / max (${frames.length} frames) | ${ms(quantile(frames, 0.5))} / ${ms(quantile(frames, 0.95))} / ${ms(Math.max(...frames))} | |`,
      `| live feed: frames over 50 ms | ${jank} (${((jank / Math.max(1, frames.length)) * 100).toFixed(1)}%) | |`,
      `| live feed: long tasks (> 50 ms) | ${feed.longTasks.length}${feed.longTasks.length ? `, longest ${ms(Math.max(...feed.longTasks))}` : ''} | |`,
      `| live feed: click on a table row -> selection painted in the charts, p50 / max (${feed.clicks.length} clicks) | ${ms(quantile(feed.clicks, 0.5))} / ${ms(Math.max(...feed.clicks))} | |`,
      `| JS heap after the feed (${(TRIALS + feed.delivered).toLocaleString('en')} trials) | ${feed.heapMB.toFixed(1)} MB | |`,
      '',
      'How the panel keeps up: trials travel column by column and are checked in one plain pass over the trials (zod checks only the small envelope around them, and is imported as a namespace so the bundle keeps only the parts of it in use); they live in typed-array columns (about 40 bytes a trial plus 8 per hyperparameter), filled one column at a time; messages are queued and applied once per animation frame; the first frame draws the views on screen and the others start in the frame after the paint (the paint mark is taken at the very start of that frame, before any of its work); the table shows one page of rows; the scatter charts hand uPlot only the corners of their points (its scales come out the same, without sorting 10,000 points by x or a pass over them per chart) and stamp the dots into a pixel buffer themselves (integer maths on the pixels a dot covers, in the opacity of the buffer); uPlot draws a chart inside the render of its view, and the loss chart built when the page opens takes the trials of a new study as new data; the best-so-far line is drawn from its corners only; the parallel coordinates become a density image above 1,500 lines (drawn over several frames while trials stream in), and timeline bars that touch are merged; views that only follow the live data redraw at most ten times a second and no more often than every six times their own drawing cost, while a click redraws in the next frame. Headless Chromium here draws with the CPU only (no GPU).',
      '',
    ];
    const markdown = lines.join('\n');
    console.log(markdown);
    if (WRITE) writeSection(markdown);
  } finally {
    await harness.close();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
