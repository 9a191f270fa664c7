import type { SyntaxNode } from '@lezer/common';
import { OTHER_ONLY, isHyperoptPath, pathValue } from './flow';
import type { Values } from './flow';

export interface ImportBinding {
  name: string;
  values: Values;
}

/**
 * The names an import statement binds and what they hold:
 * `import hyperopt.fmin` binds `hyperopt` to the package, `import hyperopt.fmin as m` binds `m`
 * to `hyperopt.fmin`, `from hyperopt import fmin as f` binds `f` to `hyperopt.fmin`, and
 * `from hyperopt import *` binds `fmin`. Relative imports bind OTHER.
 */
export function importBindings(node: SyntaxNode, text: string): ImportBinding[] {
  const tokens: SyntaxNode[] = [];
  for (let child = node.firstChild; child; child = child.nextSibling) tokens.push(child);
  const src = (n: SyntaxNode): string => text.slice(n.from, n.to);
  return tokens[0]?.name === 'from' ? fromImport(tokens, src) : plainImport(tokens, src);
}

function plainImport(tokens: SyntaxNode[], src: (n: SyntaxNode) => string): ImportBinding[] {
  const out: ImportBinding[] = [];
  let dotted: string[] = [];
  let alias: string | undefined;
  let expectAlias = false;
  const flush = (): void => {
    const [head] = dotted;
    if (head !== undefined) {
      if (alias !== undefined) out.push({ name: alias, values: pathValue(dotted.join('.')) });
      else out.push({ name: head, values: pathValue(head) });
    }
    dotted = [];
    alias = undefined;
    expectAlias = false;
  };
  for (const token of tokens) {
    switch (token.name) {
      case 'VariableName':
        if (expectAlias) alias = src(token);
        else dotted.push(src(token));
        break;
      case 'as':
        expectAlias = true;
        break;
      case ',':
        flush();
        break;
      default:
        break;
    }
  }
  flush();
  return out;
}

function fromImport(tokens: SyntaxNode[], src: (n: SyntaxNode) => string): ImportBinding[] {
  const importAt = tokens.findIndex((t) => t.name === 'import');
  if (importAt < 0) return [];
  const moduleTokens = tokens.slice(1, importAt);
  const relative = moduleTokens[0]?.name !== 'VariableName';
  const module = moduleTokens
    .filter((t) => t.name === 'VariableName')
    .map(src)
    .join('.');
  const fromHyperopt = !relative && isHyperoptPath(module);
  const names = tokens.slice(importAt + 1);

  if (names.some((t) => t.name === '*')) {
    // hyperopt has no __all__, so a star import brings its public names, fmin among them.
    if (fromHyperopt && (module === 'hyperopt' || module === 'hyperopt.fmin')) {
      return [{ name: 'fmin', values: pathValue(`${module}.fmin`) }];
    }
    return [];
  }

  const out: ImportBinding[] = [];
  let original: string | undefined;
  let expectAlias = false;
  for (const token of names) {
    if (token.name === 'VariableName') {
      const name = src(token);
      if (expectAlias && original !== undefined) {
        out.push({ name, values: fromHyperopt ? pathValue(`${module}.${original}`) : OTHER_ONLY });
        original = undefined;
        expectAlias = false;
      } else {
        if (original !== undefined) out.push(bindingFor(original, module, fromHyperopt));
        original = name;
      }
    } else if (token.name === 'as') {
      expectAlias = true;
    } else if (token.name === ',' || token.name === ')') {
      if (original !== undefined) out.push(bindingFor(original, module, fromHyperopt));
      original = undefined;
      expectAlias = false;
    }
  }
  if (original !== undefined) out.push(bindingFor(original, module, fromHyperopt));
  return out;
}

function bindingFor(name: string, module: string, fromHyperopt: boolean): ImportBinding {
  return { name, values: fromHyperopt ? pathValue(`${module}.${name}`) : OTHER_ONLY };
}
