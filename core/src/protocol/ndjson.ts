/** Newline-delimited JSON framing shared by every channel. */
import type { z } from 'zod';

/** Splits a byte stream into lines; tolerant of chunks that end mid-line. */
export class LineSplitter {
  private pending = '';

  push(chunk: string, onLine: (line: string) => void): void {
    let text = this.pending + chunk;
    let nl = text.indexOf('\n');
    while (nl !== -1) {
      const line = text.slice(0, nl);
      if (line.length > 0) onLine(line);
      text = text.slice(nl + 1);
      nl = text.indexOf('\n');
    }
    this.pending = text;
  }

  /** Whatever arrived after the last newline (an incomplete final record). */
  rest(): string {
    return this.pending;
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
