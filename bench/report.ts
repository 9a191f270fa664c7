/** Writes one "## <name>" section of docs/benchmarks.md, keeping the others as they are. */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

export function writeBenchmarkSection(path: string, name: string, body: string[]): void {
  const text = existsSync(path) ? readFileSync(path, 'utf8') : '# Benchmarks\n\nEach section is written by its benchmark command; figures are from one machine.\n';
  const heading = `## ${name}`;
  const section = `${heading}\n\n${body.join('\n').trimEnd()}\n`;
  const start = text.indexOf(`${heading}\n`);
  if (start === -1) {
    writeFileSync(path, `${text.trimEnd()}\n\n${section}`);
    return;
  }
  const next = text.indexOf('\n## ', start + heading.length);
  // One blank line between sections, whatever the body ends with.
  writeFileSync(path, text.slice(0, start) + section + (next === -1 ? '' : `\n${text.slice(next + 1)}`));
}
