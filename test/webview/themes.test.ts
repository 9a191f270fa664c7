// The panel in VS Code's light, dark and high-contrast themes, in headless Chromium (the fake host
// stands in for VS Code's webview host, which sets the theme the same way; the real one is tested
// in the editor suite). Screenshots go to test-results/webview/ for people to look at.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { computeImportances } from '../../core/src/analysis/importance';
import { Harness, type Panel, applyTheme, artifactPath } from './harness/panel';
import { THEMES, type ThemeName } from './harness/themes';
import { makeStudy, rowsOf } from './fixtures/study';

let harness: Harness;
before(async () => {
  harness = await Harness.start();
});
after(async () => {
  await harness?.close();
});

const init = makeStudy();
const imp = computeImportances({
  space: init.study.space,
  trials: rowsOf(init).filter((t) => t.state === 'done' && typeof t.loss === 'number').map((t) => ({ params: t.params, loss: t.loss as number })),
});

/** Layout problems a person would see: sideways scrolling, panels without size, overlapping panels. */
async function layoutProblems(panel: Panel): Promise<string[]> {
  return panel.page.evaluate(() => {
    const problems: string[] = [];
    const doc = document.documentElement;
    if (doc.scrollWidth > doc.clientWidth + 1) problems.push(`the page scrolls sideways: ${doc.scrollWidth} > ${doc.clientWidth}`);
    const boxes = [...document.querySelectorAll<HTMLElement>('.panel, .group, .sticky')].map((el) => ({ id: el.id || el.className, r: el.getBoundingClientRect() }));
    for (const b of boxes) {
      if (b.r.width < 100 || b.r.height < 40) problems.push(`${b.id} is ${b.r.width}x${b.r.height}`);
      if (b.r.right > doc.clientWidth + 1) problems.push(`${b.id} sticks out on the right`);
    }
    const panels = boxes.filter((b) => b.id.startsWith('panel') || /^[a-z]+$/.test(b.id));
    for (let i = 0; i < panels.length; i++) {
      for (let j = i + 1; j < panels.length; j++) {
        const a = (panels[i] as (typeof panels)[number]).r;
        const c = (panels[j] as (typeof panels)[number]).r;
        const overlap = Math.min(a.right, c.right) - Math.max(a.left, c.left) > 1 && Math.min(a.bottom, c.bottom) - Math.max(a.top, c.top) > 1;
        if (overlap) problems.push(`${panels[i]?.id} overlaps ${panels[j]?.id}`);
      }
    }
    for (const canvas of document.querySelectorAll('canvas')) {
      if (canvas.width === 0 || canvas.height === 0) problems.push('an empty canvas');
    }
    for (const cell of document.querySelectorAll<HTMLElement>('.stat, .selection-actions vscode-button, .controls vscode-button')) {
      const r = cell.getBoundingClientRect();
      if (r.width > 0 && cell.scrollWidth > r.width + 2) problems.push(`clipped text: ${cell.textContent}`);
    }
    return problems;
  });
}

/** The colour of the first vertical axis of the parallel coordinates, read from the canvas. */
async function axisColour(panel: Panel): Promise<[number, number, number]> {
  return panel.page.evaluate(() => {
    const canvas = document.querySelector<HTMLCanvasElement>('.pc-base');
    const ctx = canvas?.getContext('2d');
    if (!canvas || !ctx) return [0, 0, 0] as [number, number, number];
    const ratio = canvas.width / canvas.getBoundingClientRect().width;
    const d = ctx.getImageData(Math.floor(44 * ratio), Math.floor(45 * ratio), 1, 1).data;
    return [d[0] ?? 0, d[1] ?? 0, d[2] ?? 0] as [number, number, number];
  });
}

function hex(colour: string): [number, number, number] {
  const m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})/i.exec(colour);
  assert.ok(m, colour);
  return [parseInt(m[1] as string, 16), parseInt(m[2] as string, 16), parseInt(m[3] as string, 16)];
}

function close(a: [number, number, number], b: [number, number, number]): boolean {
  return a.every((v, i) => Math.abs(v - (b[i] as number)) <= 40);
}

for (const name of Object.keys(THEMES) as ThemeName[]) {
  describe(`${name} theme`, () => {
    let panel: Panel;
    before(async () => {
      panel = await harness.open({ init, theme: name, viewport: { width: 1280, height: 900 } });
      await panel.host.send({ type: 'importances', method: imp.method, trials: imp.trials, items: imp.items, note: imp.note });
      await panel.host.send({ type: 'select', tid: 109 });
      await panel.page.waitForSelector('[data-chart="importances"][data-bars="4"]');
      await panel.page.waitForSelector('.selection[data-tid="109"]');
    });
    after(async () => {
      await panel?.close();
    });

    test('colours come from the theme', async () => {
      const { vars, bodyClass } = THEMES[name];
      assert.equal(await panel.page.evaluate(() => document.body.className), bodyClass);
      const [bg, fg] = await panel.page.evaluate(() => [getComputedStyle(document.body).backgroundColor, getComputedStyle(document.body).color]);
      const rgb = (c: string): [number, number, number] => (c.match(/\d+/g) ?? []).slice(0, 3).map(Number) as [number, number, number];
      assert.deepEqual(rgb(bg ?? ''), hex(vars['--vscode-editor-background'] as string));
      assert.deepEqual(rgb(fg ?? ''), hex(vars['--vscode-foreground'] as string));
      const axis = await axisColour(panel);
      assert.ok(close(axis, hex(vars['--vscode-foreground'] as string)), `the chart axis is drawn in the theme's foreground: ${axis}`);
    });

    test('the layout holds (wide and narrow), screenshots saved', async () => {
      await panel.page.evaluate(() => window.scrollTo(0, 0));
      await panel.page.waitForTimeout(200);
      assert.deepEqual(await layoutProblems(panel), []);
      await panel.page.screenshot({ path: artifactPath(`panel-${name}.png`), fullPage: true });
      await panel.page.setViewportSize({ width: 640, height: 900 });
      await panel.page.waitForTimeout(400);
      assert.deepEqual(await layoutProblems(panel), []);
      await panel.page.screenshot({ path: artifactPath(`panel-${name}-narrow.png`), fullPage: true });
      await panel.page.setViewportSize({ width: 1280, height: 900 });
    });

    test('the focused control shows a focus ring in the theme’s focus colour', async () => {
      await panel.page.focus('[data-chart="history"]');
      const outline = await panel.page.evaluate(() => getComputedStyle(document.activeElement as Element).outlineColor);
      const want = hex(THEMES[name].vars['--vscode-focusBorder'] as string);
      assert.deepEqual((outline.match(/\d+/g) ?? []).slice(0, 3).map(Number), want);
    });

    test('nothing went wrong in the page', () => {
      assert.deepEqual(panel.pageErrors, []);
    });
  });
}

test('switching the theme while the panel is open redraws the charts in the new colours', async () => {
  const panel = await harness.open({ init, theme: 'dark' });
  try {
    assert.ok(close(await axisColour(panel), hex(THEMES.dark.vars['--vscode-foreground'] as string)));
    await applyTheme(panel.page, 'light');
    await panel.page.waitForFunction(() => document.body.classList.contains('vscode-light'));
    await panel.page.waitForTimeout(200);
    assert.ok(close(await axisColour(panel), hex(THEMES.light.vars['--vscode-foreground'] as string)));
  } finally {
    await panel.close();
  }
});
