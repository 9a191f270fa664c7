/**
 * Chart colours from VS Code's theme variables (the `--vscode-*` custom properties VS Code sets on
 * the webview's document), re-read when the theme changes (body class or the variables).
 */
export type ThemeKind = 'light' | 'dark' | 'high-contrast' | 'high-contrast-light';

export interface Palette {
  kind: ThemeKind;
  foreground: string;
  muted: string;
  background: string;
  grid: string;
  border: string;
  ok: string;
  failed: string;
  cancelled: string;
  running: string;
  best: string;
  top: string;
  selected: string;
  font: string;
  monoFont: string;
}

function kindOf(body: HTMLElement): ThemeKind {
  const c = body.classList;
  if (c.contains('vscode-high-contrast-light')) return 'high-contrast-light';
  if (c.contains('vscode-high-contrast')) return 'high-contrast';
  if (c.contains('vscode-light')) return 'light';
  return 'dark';
}

export function readPalette(): Palette {
  const style = getComputedStyle(document.body);
  const kind = kindOf(document.body);
  const light = kind === 'light' || kind === 'high-contrast-light';
  const v = (name: string, fallback: string): string => style.getPropertyValue(name).trim() || fallback;
  const foreground = v('--vscode-foreground', v('--vscode-editor-foreground', light ? '#3b3b3b' : '#cccccc'));
  const hc = kind === 'high-contrast' || kind === 'high-contrast-light';
  return {
    kind,
    foreground,
    muted: v('--vscode-descriptionForeground', light ? '#717171' : '#9d9d9d'),
    background: v('--vscode-editor-background', light ? '#ffffff' : '#1f1f1f'),
    grid: hc ? withAlpha(v('--vscode-contrastBorder', foreground), 0.45) : v('--vscode-charts-lines', light ? 'rgba(0,0,0,0.15)' : 'rgba(255,255,255,0.12)'),
    border: v('--vscode-panel-border', v('--vscode-contrastBorder', light ? '#e5e5e5' : '#2b2b2b')),
    ok: v('--vscode-charts-blue', light ? '#1a85ff' : '#3794ff'),
    failed: v('--vscode-charts-red', light ? '#e51400' : '#f14c4c'),
    cancelled: v('--vscode-charts-orange', light ? '#d18616' : '#d18616'),
    running: v('--vscode-charts-yellow', light ? '#bf8803' : '#cca700'),
    best: v('--vscode-charts-green', light ? '#388a34' : '#89d185'),
    top: v('--vscode-charts-purple', light ? '#652d90' : '#b180d7'),
    selected: v('--vscode-focusBorder', light ? '#005fb8' : '#0078d4'),
    font: v('--vscode-font-family', 'system-ui, sans-serif'),
    monoFont: v('--vscode-editor-font-family', 'monospace'),
  };
}

/** A colour with an alpha, from any CSS colour the canvas understands. */
export function withAlpha(color: string, alpha: number): string {
  const hex = /^#([0-9a-f]{3,8})$/i.exec(color.trim());
  if (hex) {
    let digits = hex[1] as string;
    if (digits.length === 3 || digits.length === 4) digits = [...digits].map((d) => d + d).join('');
    const r = parseInt(digits.slice(0, 2), 16);
    const g = parseInt(digits.slice(2, 4), 16);
    const b = parseInt(digits.slice(4, 6), 16);
    const a = digits.length === 8 ? parseInt(digits.slice(6, 8), 16) / 255 : 1;
    return `rgba(${r}, ${g}, ${b}, ${(a * alpha).toFixed(3)})`;
  }
  const rgb = /^rgba?\(([^)]+)\)$/i.exec(color.trim());
  if (rgb) {
    const parts = (rgb[1] as string).split(/[\s,/]+/).filter(Boolean).map(Number);
    const a = parts.length >= 4 ? (parts[3] as number) : 1;
    return `rgba(${parts[0]}, ${parts[1]}, ${parts[2]}, ${(a * alpha).toFixed(3)})`;
  }
  return color;
}

/** Calls `onChange` when VS Code switches the theme (it rewrites the body class and the variables). */
export function watchTheme(onChange: () => void): void {
  const observer = new MutationObserver(() => onChange());
  observer.observe(document.body, { attributes: true, attributeFilter: ['class', 'data-vscode-theme-kind'] });
  observer.observe(document.documentElement, { attributes: true, attributeFilter: ['style', 'class'] });
}

const resolved = new Map<string, [number, number, number]>();
let probe: CanvasRenderingContext2D | null | undefined;

/** The red, green and blue of any CSS colour, as the canvas resolves it (cached). */
export function rgbOf(colour: string): [number, number, number] {
  const known = resolved.get(colour);
  if (known) return known;
  probe ??= document.createElement('canvas').getContext('2d');
  if (!probe) return [128, 128, 128];
  probe.fillStyle = '#000000';
  probe.fillStyle = colour;
  const text = probe.fillStyle;
  const hex = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(text);
  const parts = hex ? [parseInt(hex[1] as string, 16), parseInt(hex[2] as string, 16), parseInt(hex[3] as string, 16)] : (text.match(/[\d.]+/g) ?? []).map(Number);
  const value: [number, number, number] = [parts[0] ?? 128, parts[1] ?? 128, parts[2] ?? 128];
  if (resolved.size > 64) resolved.clear();
  resolved.set(colour, value);
  return value;
}
