/**
 * Where a script that exited with an error failed, read from the end of what its driver printed:
 * the launcher's `FILE:LINE: SyntaxError: message` line, a `FILE:LINE: message` usage line, or
 * the innermost frame of a Python traceback with its last line. Editors show it in the
 * notification and as a problem at that line.
 */

export interface ScriptFailure {
  /** As printed: absolute or relative to the script's working directory. */
  readonly file: string;
  /** 1-based. */
  readonly line: number;
  /** `SyntaxError: invalid syntax`, `ValueError: bad value`, ... */
  readonly message: string;
}

// Not a `[trial N] ...` line: a trial's output is no failure of the script.
const LOCATED = /^(?<file>[^\s[].*?\.pyw?):(?<line>\d+): (?<message>.+)$/;
const FRAME = /^\s*File "(?<file>.+)", line (?<line>\d+)/;
const EXCEPTION = /^(?<type>[A-Za-z_][\w.]*)(?::\s?(?<text>.*))?$/;

export function parseScriptFailure(output: string): ScriptFailure | undefined {
  const lines = output.split(/\r?\n/).map((l) => l.trimEnd()).filter((l) => l.length > 0);
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i]!;
    const located = LOCATED.exec(line);
    if (located?.groups) return { file: located.groups.file!, line: Number(located.groups.line), message: located.groups.message! };
    const frame = FRAME.exec(line);
    if (frame?.groups) {
      // The innermost frame is the last one; the exception follows it (after the source line and
      // a caret line).
      const after = lines.slice(i + 1).filter((l) => !/^\s/.test(l));
      const exception = after.map((l) => EXCEPTION.exec(l)).find((m) => m?.groups && /(Error|Exception|Exit|Interrupt|Warning)$/.test(m.groups.type!));
      if (!exception?.groups) return undefined;
      const { type, text } = exception.groups;
      return { ...userFrame(lines, i, frame.groups), message: text ? `${type}: ${text}` : type! };
    }
  }
  return undefined;
}

const LIBRARY = /[\\/](site-packages|dist-packages|lib[\\/]python\d[\d.]*)[\\/]/;

/** The innermost frame of the traceback ending at `last` in the user's code, not in an installed library. */
function userFrame(lines: readonly string[], last: number, innermost: Record<string, string>): { file: string; line: number } {
  for (let j = last; j >= 0 && !lines[j]!.startsWith('Traceback'); j--) {
    const groups = FRAME.exec(lines[j]!)?.groups;
    if (groups && !LIBRARY.test(groups.file!) && !groups.file!.startsWith('<')) return { file: groups.file!, line: Number(groups.line) };
  }
  return { file: innermost.file!, line: Number(innermost.line) };
}
