/**
 * One call of hyperopt's `fmin` found in Python source.
 *
 * Positions are zero-based, like VS Code's `Position`: `line` counts lines from 0 and `column`
 * counts UTF-16 code units from the start of the line (JavaScript string indices). `from`/`to`
 * are offsets into the scanned text. The range covers the whole call, callee to closing
 * parenthesis.
 */
export interface FminCall {
  line: number;
  column: number;
  endLine: number;
  endColumn: number;
  from: number;
  to: number;
  /** The callee as written, for example `fmin`, `hpo.fmin` or `hyperopt.fmin.fmin`. */
  callee: string;
  /** True when the call sits (at any depth) in the body of `if __name__ == "__main__":`. */
  inMainGuard: boolean;
}

/** The scan of one file on disk. */
export interface FileScan {
  path: string;
  /** Modification time and size the file had when it was read; the cache key. */
  mtimeMs: number;
  size: number;
  calls: FminCall[];
  /** Set when the file could not be read (it vanished, is a directory, no permission...). */
  error?: string;
}
