import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { scanSource } from '../../core/src/scan/scan-source';

/** The callees found, in order: the shortest way to state what a scan must see. */
function callees(source: string): string[] {
  return scanSource(source).map((c) => c.callee);
}

const lines = (...parts: string[]): string => `${parts.join('\n')}\n`;

describe('scanSource: import forms', () => {
  it('from hyperopt import fmin', () => {
    assert.deepEqual(callees(lines('from hyperopt import fmin, tpe', 'best = fmin(fn=f, space=s, algo=tpe.suggest)')), ['fmin']);
  });

  it('from hyperopt import fmin as f', () => {
    assert.deepEqual(callees(lines('from hyperopt import hp, fmin as f', 'f(fn, space)', 'fmin(fn, space)')), ['f']);
  });

  it('from hyperopt import (..., fmin as f) across lines', () => {
    assert.deepEqual(callees(lines('from hyperopt import (', '    tpe,', '    fmin as run_search,', ')', 'run_search(fn, space)')), [
      'run_search',
    ]);
  });

  it('import hyperopt', () => {
    assert.deepEqual(callees(lines('import hyperopt', 'hyperopt.fmin(fn, space)')), ['hyperopt.fmin']);
  });

  it('import hyperopt as hpo', () => {
    assert.deepEqual(callees(lines('import os, hyperopt as hpo', 'hpo.fmin(fn, space)', 'hyperopt.fmin(fn, space)')), ['hpo.fmin']);
  });

  it('from hyperopt.fmin import fmin', () => {
    assert.deepEqual(callees(lines('from hyperopt.fmin import fmin', 'fmin(fn, space)')), ['fmin']);
  });

  it('import hyperopt.fmin, then hyperopt.fmin.fmin and hyperopt.fmin', () => {
    assert.deepEqual(callees(lines('import hyperopt.fmin', 'hyperopt.fmin.fmin(fn, space)', 'hyperopt.fmin(fn, space)')), [
      'hyperopt.fmin.fmin',
      'hyperopt.fmin',
    ]);
  });

  it('import hyperopt.fmin as module', () => {
    assert.deepEqual(callees(lines('import hyperopt.fmin as hf', 'hf.fmin(fn, space)')), ['hf.fmin']);
  });

  it('from hyperopt import *', () => {
    assert.deepEqual(callees(lines('from hyperopt import *', 'fmin(fn, space)')), ['fmin']);
  });

  it('an alias made by assignment', () => {
    assert.deepEqual(callees(lines('import hyperopt as hp', 'search = hp.fmin', 'search(fn, space)')), ['search']);
  });

  it('an import inside a function applies to that function only', () => {
    const source = lines(
      'def tune():',
      '    from hyperopt import fmin',
      '    return fmin(fn, space)',
      '',
      'def other():',
      '    return fmin(fn, space)',
    );
    const calls = scanSource(source);
    assert.deepEqual(
      calls.map((c) => [c.callee, c.line]),
      [['fmin', 2]],
    );
  });

  it('import hyperopt as hpo inside a method', () => {
    const source = lines('class Tuner:', '    def run(self):', '        import hyperopt as hpo', '        return hpo.fmin(self.f, self.space)');
    assert.deepEqual(callees(source), ['hpo.fmin']);
  });

  it('a module-level import seen from a function defined before it', () => {
    const source = lines('def main():', '    fmin(fn, space)', '', 'from hyperopt import fmin', 'main()');
    assert.deepEqual(callees(source), ['fmin']);
  });

  it('an import kept on one branch of try/except ImportError', () => {
    const source = lines('try:', '    from hyperopt import fmin', 'except ImportError:', '    fmin = None', 'fmin(fn, space)');
    assert.deepEqual(callees(source), ['fmin']);
  });

  it('calls in default values, decorators, lambdas, f-strings, comprehensions and nested calls', () => {
    const source = lines(
      'from hyperopt import fmin',
      '@cache(fmin(a, b))',
      'def f(x=fmin(c, d)):',
      '    pass',
      'run(lambda: fmin(e, f))',
      'print(f"{fmin(g, h)}")',
      'results = [fmin(fn, s) for s in spaces]',
      'log(fmin(fmin(i, j), k))',
    );
    assert.equal(callees(source).length, 7);
  });
});

describe('scanSource: decoys', () => {
  it('fmin( in strings, comments and docstrings', () => {
    const source = lines(
      '"""Module docstring: call fmin(fn, space) to tune."""',
      'import hyperopt',
      '# fmin(fn, space)',
      'def tune():',
      '    """fmin(fn, space) is called below, maybe."""',
      '    text = "fmin(fn, space)"',
      "    other = 'hyperopt.fmin(fn, space)'",
      "    raw = r'''fmin(fn, space)'''",
      '    return text  # hyperopt.fmin(x)',
    );
    assert.deepEqual(callees(source), []);
  });

  it('a local function named fmin', () => {
    const source = lines('import hyperopt', 'def fmin(f, x0):', '    return x0', 'fmin(loss, 0)');
    assert.deepEqual(callees(source), []);
  });

  it('a function of its own replaces the imported fmin from then on', () => {
    const source = lines('from hyperopt import fmin', 'fmin(a, b)', 'def fmin(f, x0):', '    return x0', 'fmin(c, d)');
    assert.deepEqual(
      scanSource(source).map((c) => c.line),
      [1],
    );
  });

  it('a parameter, loop variable or comprehension variable named fmin', () => {
    const source = lines(
      'from hyperopt import fmin as hfmin',
      'def run(fmin):',
      '    return fmin(1)',
      'for fmin in optimisers:',
      '    fmin(2)',
      'values = [fmin(3) for fmin in optimisers]',
      'handler = lambda fmin: fmin(4)',
    );
    assert.deepEqual(callees(source), []);
  });

  it('scipy.optimize.fmin, imported or called by attribute', () => {
    const source = lines(
      'import hyperopt',
      'import scipy.optimize',
      'from scipy.optimize import fmin',
      'from scipy import optimize as opt',
      'scipy.optimize.fmin(f, x0)',
      'fmin(f, x0)',
      'opt.fmin(f, x0)',
    );
    assert.deepEqual(callees(source), []);
  });

  it('scipy fmin imported after hyperopt fmin wins from that line on', () => {
    const source = lines('from hyperopt import fmin', 'fmin(fn, space)', 'from scipy.optimize import fmin', 'fmin(f, x0)');
    assert.deepEqual(
      scanSource(source).map((c) => c.line),
      [1],
    );
  });

  it('attribute calls on other objects', () => {
    const source = lines(
      'from hyperopt import fmin',
      'import hyperopt',
      'self.fmin(fn, space)',
      'optimizer.fmin(fn, space)',
      'trials.fmin(fn, space)',
      'models[0].fmin(fn, space)',
      'get().fmin(fn, space)',
      'hyperopt.tpe.suggest(1)',
    );
    assert.deepEqual(callees(source), []);
  });

  it('a relative import and a module that is not hyperopt', () => {
    const source = lines('from . import fmin', 'from .hyperopt import fmin as f2', 'from hyperopt_extras import fmin as f3', 'import hyperoptx', 'fmin(1)', 'f2(2)', 'f3(3)', 'hyperoptx.fmin(4)');
    assert.deepEqual(callees(source), []);
  });

  it('a method of a class named fmin does not shadow the module-level name', () => {
    const source = lines(
      'from hyperopt import fmin',
      'class Search:',
      '    def fmin(self):',
      '        return fmin(fn, space)',
    );
    assert.deepEqual(callees(source), ['fmin']);
  });

  it('no hyperopt import at all', () => {
    assert.deepEqual(callees(lines('def fmin(): pass', 'fmin()')), []);
  });
});

describe('scanSource: positions and the main guard', () => {
  it('reports zero-based start and end of the whole call, and the callee text', () => {
    const source = lines('import hyperopt as hpo', '', 'best = hpo.fmin(', '    fn=objective,', '    space=space,', ')');
    const [call, ...rest] = scanSource(source);
    assert.equal(rest.length, 0);
    assert.deepEqual(call, {
      line: 2,
      column: 7,
      endLine: 5,
      endColumn: 1,
      from: source.indexOf('hpo.fmin('),
      to: source.lastIndexOf(')') + 1,
      callee: 'hpo.fmin',
      inMainGuard: false,
    });
  });

  it('columns count UTF-16 code units', () => {
    const source = lines('from hyperopt import fmin', 'x = "é🎉"; fmin(fn, space)');
    const [call] = scanSource(source);
    assert.equal(call?.column, 'x = "é🎉"; '.length);
  });

  it('marks calls inside if __name__ == "__main__": (either quote, either order, at any depth)', () => {
    const source = lines(
      'from hyperopt import fmin',
      'fmin(a, b)',
      'if __name__ == "__main__":',
      '    for i in range(3):',
      '        fmin(c, d)',
      "if '__main__' == __name__:",
      '    fmin(e, f)',
      'else:',
      '    fmin(g, h)',
      'if __name__ != "__main__":',
      '    fmin(i, j)',
      'if x:',
      '    pass',
      'elif __name__ == "__main__":',
      '    fmin(k, l)',
    );
    assert.deepEqual(
      scanSource(source).map((c) => [c.line, c.inMainGuard]),
      [
        [1, false],
        [4, true],
        [6, true],
        [8, false],
        [10, false],
        [14, true],
      ],
    );
  });

  it('a call in a function defined in the main guard counts as in it', () => {
    const source = lines('import hyperopt', 'if __name__ == "__main__":', '    def go():', '        hyperopt.fmin(fn, space)', '    go()');
    assert.deepEqual(
      scanSource(source).map((c) => c.inMainGuard),
      [true],
    );
  });
});

describe('scanSource: broken input', () => {
  it('a syntax error does not throw and the rest of the file is still scanned', () => {
    const source = lines(
      'from hyperopt import fmin',
      'fmin(a, b)',
      'def broken(:',
      '    fmin(c, d)',
      'print "python 2"',
      'x = [1, 2',
      'fmin(e, f)',
    );
    // The unclosed `[` swallows the last line, as it does for Python itself.
    assert.deepEqual(
      scanSource(source).map((c) => c.line),
      [1, 3],
    );
  });

  it('statements that do not parse are skipped and the calls around them found', () => {
    const source = lines('from hyperopt import fmin', 'x = = 1', 'fmin(a, b)', 'def f(', 'if True', '    fmin(c, d)', 'class :', 'fmin(e, f)');
    assert.deepEqual(
      scanSource(source).map((c) => c.line),
      [2, 5, 7],
    );
  });

  it('an unterminated string or call', () => {
    assert.doesNotThrow(() => scanSource('from hyperopt import fmin\nfmin(fn, "abc\n'));
    assert.doesNotThrow(() => scanSource('import hyperopt\nhyperopt.fmin(\n'));
    assert.deepEqual(callees('from hyperopt import fmin\nfmin(fn, space\n'), ['fmin']);
  });

  it('binary junk, empty text and very deep nesting', () => {
    assert.deepEqual(scanSource(''), []);
    assert.doesNotThrow(() => scanSource(`import hyperopt\n${'\u0000\uffff'.repeat(1000)}`));
    const deep = `from hyperopt import fmin\nfmin(${'('.repeat(5000)}1${')'.repeat(5000)})\n`;
    assert.doesNotThrow(() => scanSource(deep));
    const deeper = `from hyperopt import fmin\nfmin(${'['.repeat(50000)}1${']'.repeat(50000)})\n`;
    assert.doesNotThrow(() => scanSource(deeper));
  });
});
