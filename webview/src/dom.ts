/** Small DOM helpers: elements are built with properties and children, never from HTML strings. */

type Attrs = Record<string, string | number | boolean | undefined>;

/** Creates an element; `attrs` become attributes (false and undefined are left out). */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Array<Node | string>): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    el.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children) el.append(child);
  return el;
}

/** Sets text only when it changed (cheap updates every frame). */
export function setText(el: Element, text: string): void {
  if (el.textContent !== text) el.textContent = text;
}

export function setAttr(el: Element, name: string, value: string | number | boolean | undefined | null): void {
  if (value === undefined || value === null || value === false) {
    if (el.hasAttribute(name)) el.removeAttribute(name);
    return;
  }
  const text = value === true ? '' : String(value);
  if (el.getAttribute(name) !== text) el.setAttribute(name, text);
}

/** The device pixel ratio, for crisp canvases. */
export function pixelRatio(): number {
  return Math.max(1, window.devicePixelRatio || 1);
}

/** Sizes a canvas to its CSS box times the pixel ratio; returns the CSS size. */
export function fitCanvas(canvas: HTMLCanvasElement, width: number, height: number): { width: number; height: number } {
  const ratio = pixelRatio();
  const w = Math.max(1, Math.round(width * ratio));
  const hgt = Math.max(1, Math.round(height * ratio));
  if (canvas.width !== w) canvas.width = w;
  if (canvas.height !== hgt) canvas.height = hgt;
  canvas.style.width = `${width}px`;
  canvas.style.height = `${height}px`;
  return { width, height };
}
