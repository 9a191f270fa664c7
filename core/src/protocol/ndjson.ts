/** Newline-delimited JSON framing shared by every channel. */
import type { z } from 'zod';

/**
 * Splits a byte stream into lines; tolerant of chunks that end mid-line. Only the new chunk is
 * searched for newlines, so a line of many chunks (a 10 MB result arrives in ~160 of them) costs
 * its length once rather than once per chunk.
 */
export class LineSplitter {
  private pending: string[] = [];
  private pendingChars = 0;

  push(chunk: string, onLine: (line: string) => void): void {
    let start = 0;
    let nl = chunk.indexOf('\n');
    while (nl !== -1) {
      const tail = chunk.slice(start, nl);
      const line = this.pending.length > 0 ? this.pending.join('') + tail : tail;
      this.pending = [];
      this.pendingChars = 0;
      if (line.length > 0) onLine(line);
      start = nl + 1;
      nl = chunk.indexOf('\n', start);
    }
    if (start < chunk.length) {
      this.pending.push(start === 0 ? chunk : chunk.slice(start));
      this.pendingChars += chunk.length - start;
    }
  }

  /** The length of rest(), without joining it (checked on every chunk against a size bound). */
  get pendingLength(): number {
    return this.pendingChars;
  }

  /** Whatever arrived after the last newline (an incomplete final record). */
  rest(): string {
    return this.pending.join('');
  }
}

export function encodeMessage(message: object): string {
  return JSON.stringify(message) + '\n';
}

export type DecodeResult<T> = { ok: true; message: T } | { ok: false; error: string };

/** Parses and validates one line against a channel's message union. */
export function decodeMessage<T>(line: string, schema: z.ZodType<T>): DecodeResult<T> {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    return { ok: false, error: `not JSON: ${line.slice(0, 80)}` };
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue ? issue.path.join('.') || '(message)' : '(message)';
    return { ok: false, error: `invalid message at ${where}: ${issue?.message ?? 'unknown'}` };
  }
  return { ok: true, message: parsed.data };
}
