/**
 * What a Python name may be bound to at a point of the program, as far as the scan cares.
 *
 * A value is a dotted path rooted at `hyperopt` (a module, a submodule or a function such as
 * `hyperopt.fmin`) or OTHER (anything else: a local function, a parameter, scipy's fmin...). A
 * name maps to the set of values it may hold on the paths that reach that point, so
 * `try: from hyperopt import fmin / except ImportError: fmin = None` keeps both.
 */
export const OTHER = '';

export type Values = ReadonlySet<string>;
export type State = Map<string, Values>;

export const NOTHING: Values = new Set<string>();
export const OTHER_ONLY: Values = new Set<string>([OTHER]);

export function isHyperoptPath(path: string): boolean {
  return path === 'hyperopt' || path.startsWith('hyperopt.');
}

/** A value for a dotted module path: kept when rooted at hyperopt, OTHER otherwise. */
export function pathValue(path: string): Values {
  return isHyperoptPath(path) ? new Set([path]) : OTHER_ONLY;
}

export function union(a: Values, b: Values): Values {
  if (a === b || b.size === 0) return a;
  if (a.size === 0) return b;
  let grows = false;
  for (const v of b) {
    if (!a.has(v)) {
      grows = true;
      break;
    }
  }
  if (!grows) return a;
  const out = new Set(a);
  for (const v of b) out.add(v);
  return out;
}

/** The state after control flow joins: each name may hold anything it held on any path. */
export function join(states: readonly State[]): State {
  const [first, ...rest] = states;
  const out: State = new Map(first);
  for (const state of rest) {
    for (const [name, values] of state) {
      const seen = out.get(name);
      out.set(name, seen ? union(seen, values) : values);
    }
  }
  return out;
}

export type ScopeKind = 'module' | 'function' | 'class' | 'comprehension';

/**
 * A Python scope. `state` is replaced (never mutated in place by branches) while the scope's
 * code is walked; once the walk is over it holds the bindings at the end of the scope, which is
 * what a function defined there sees when it is called later.
 */
export class Scope {
  state: State = new Map();

  constructor(
    readonly kind: ScopeKind,
    readonly parent: Scope | null,
  ) {}

  bind(name: string, values: Values): void {
    this.state.set(name, values);
  }

  /** Own bindings first, then the enclosing scopes; class bodies are never visible from inside. */
  lookup(name: string): Values {
    const own = this.state.get(name);
    if (own) return own;
    for (let scope = this.parent; scope; scope = scope.parent) {
      if (scope.kind === 'class') continue;
      const found = scope.state.get(name);
      if (found) return found;
    }
    return NOTHING;
  }
}
